// The zip import page: check the consent tick and the zip's size before sending, so that a large
// zip is never uploaded only to be refused, and a chosen file is never lost to a missing tick
// (a browser cannot keep a chosen file when the server shows the form again). The server checks
// everything again; this only saves HR a wasted upload.
(function () {
  "use strict";

  var checks = document.getElementById("import-checks");
  var form = document.getElementById("bulkimport_form");
  if (!checks || !form) {
    return;
  }
  var consent = form.querySelector("#id_consent");
  var archive = form.querySelector("#id_archive");
  var button = document.getElementById("import-button");

  function row(field) {
    return field.closest(".form-row") || field.parentNode;
  }

  function clearProblem(field) {
    var shown = row(field).querySelector("[data-client-check]");
    if (shown) {
      shown.remove();
    }
  }

  function showProblem(field, message) {
    clearProblem(field);
    var list = document.createElement("ul");
    list.className = "errorlist";
    list.setAttribute("data-client-check", "");
    list.setAttribute("role", "alert");
    var item = document.createElement("li");
    item.textContent = message;
    list.appendChild(item);
    row(field).insertBefore(list, row(field).firstChild);
  }

  function tooLarge() {
    var limit = Number(checks.dataset.archiveLimit);
    return archive.files.length > 0 && limit > 0 && archive.files[0].size > limit;
  }

  consent.addEventListener("change", function () {
    if (consent.checked) {
      clearProblem(consent);
    }
  });
  archive.addEventListener("change", function () {
    if (tooLarge()) {
      showProblem(archive, checks.dataset.archiveLimitMessage);
    } else {
      clearProblem(archive);
    }
  });

  form.addEventListener("submit", function (event) {
    var refused = false;
    if (!consent.checked) {
      showProblem(consent, checks.dataset.consentMissingMessage);
      refused = true;
    }
    if (tooLarge()) {
      showProblem(archive, checks.dataset.archiveLimitMessage);
      refused = true;
    }
    if (refused) {
      event.preventDefault();
      (consent.checked ? archive : consent).focus();
      return;
    }
    // A large zip takes a while to send: say so, and do not let a second click send it twice
    // (after this event: a button disabled now would be left out of what the form sends).
    setTimeout(function () {
      button.disabled = true;
      button.value = "Uploading the zip\u2026";
    }, 0);
  });
})();
