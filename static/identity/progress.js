// Employee page: while photos are being checked, ask for their statuses every few seconds and
// reload the page once none is pending, so that the results (or reasons) show.
'use strict';

const progressConfig = JSON.parse(document.getElementById('enrollment-progress-config').textContent);
const pendingCount = document.getElementById('enrollment-pending');
const waitingNote = document.getElementById('enrollment-waiting');

function showStatuses(statuses) {
  if (statuses.pending === 0) {
    window.location.reload();
    return;
  }
  pendingCount.textContent = statuses.pending;
  waitingNote.hidden = !statuses.waiting_for_worker;
  window.setTimeout(poll, progressConfig.pollMilliseconds);
}

function poll() {
  fetch(progressConfig.statusUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then((response) => {
      if (!response.ok) {
        throw new Error('status ' + response.status);
      }
      return response.json();
    })
    .then(showStatuses)
    .catch(() => {
      // The server restarting, or the session ended: try again later rather than stop for good.
      window.setTimeout(poll, progressConfig.pollMilliseconds * 3);
    });
}

if (progressConfig.pending > 0) {
  window.setTimeout(poll, progressConfig.pollMilliseconds);
}
