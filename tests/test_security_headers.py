"""Security headers on every kind of response: a page, the API, the admin, a static file.

What each one says: no sniffing a file's type (X-Content-Type-Options), no page address leaves for
another site (Referrer-Policy), no other site may frame a page (X-Frame-Options, frame-ancestors) or
reach its window (Cross-Origin-Opener-Policy), and the Content-Security-Policy lets a page load only
this site's own files, and run only its own scripts (or the one inline script with the request's
nonce); behind TLS, Strict-Transport-Security.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from tests.identity.browser import browser_allowed  # noqa: F401 (a fixture)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def policy_of(response) -> dict[str, list[str]]:
    directives = (part.split() for part in response["Content-Security-Policy"].split(";") if part.strip())
    return {name: values for name, *values in directives}


@pytest.fixture
def staff_client(client, db):
    client.force_login(User.objects.create_superuser("root", password=None))
    return client


@pytest.mark.parametrize("where", ["home page", "login page", "API", "admin", "static file", "API docs"])
def test_every_response_carries_the_security_headers(client, staff_client, where, db):
    response = {
        "home page": lambda: client.get(reverse("home")),
        "login page": lambda: client.get(reverse("login")),
        "API": lambda: client.get(reverse("api-attempts")),  # 401 or 403: headers on refusals too
        "admin": lambda: staff_client.get(reverse("admin:identity_employee_changelist")),
        "static file": lambda: client.get("/static/identity/verify.js"),
        "API docs": lambda: client.get(reverse("api-docs")),
    }[where]()

    assert response.status_code < 500
    for header, value in EXPECTED.items():
        # WhiteNoise answers before the X-Frame-Options middleware: a script is never framed anyway.
        if not (where == "static file" and header == "X-Frame-Options"):
            assert response[header] == value, header
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'" and policy["script-src"][1].startswith("'nonce-")
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert "camera=(self)" in response["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response  # plain HTTP: HSTS means nothing here


def test_each_response_gets_a_nonce_of_its_own(client, db):
    first, second = (policy_of(client.get(reverse("login")))["script-src"][1] for _ in range(2))
    assert first != second


def test_the_one_inline_script_carries_the_responses_nonce(staff_client):
    from identity.models import BulkImport

    bulk = BulkImport.objects.create(archive="imports/x.zip", status=BulkImport.Status.RUNNING, total_photos=2)
    response = staff_client.get(reverse("admin:identity_bulkimport_change", args=[bulk.pk]))

    nonce = policy_of(response)["script-src"][1].removeprefix("'nonce-").removesuffix("'")
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.content.decode())
    inline = [attributes for attributes in inline if "application/json" not in attributes]
    assert inline == [f' nonce="{nonce}"']


def test_no_template_has_an_inline_script_without_the_nonce():
    # json_script's data blocks are not run, so the policy lets them be.
    for template in (PROJECT_ROOT / "templates").rglob("*.html"):
        for attributes in re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", template.read_text()):
            assert "csp_nonce" in attributes, f"{template}: an inline script the policy blocks"
        assert not re.search(r"\son[a-z]+=", template.read_text()), f"{template}: an inline event handler"


def test_behind_tls_browsers_are_told_to_keep_to_https(client, settings, db):
    settings.SECURE_HSTS_SECONDS = 365 * 24 * 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    response = client.get(reverse("login"), secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


# --- In a real browser: the pages work under the policy -------------------------------------------


def test_the_pages_work_under_the_policy_in_a_real_browser(live_server, browser_allowed, tmp_path, db):
    from identity.models import BulkImport
    from tests.identity.browser import camera_browser, write_y4m

    User.objects.create_superuser("root", password="a-long-password-1")
    bulk = BulkImport.objects.create(archive="imports/x.zip", status=BulkImport.Status.RUNNING, total_photos=2)
    violations = []
    with camera_browser(write_y4m(tmp_path / "grey.y4m", None, frames=2), live_server.url) as page:
        page.on("console", lambda message: violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.goto("/api/docs/")
        page.wait_for_selector(".swagger-ui .info .title")  # Swagger UI ran: its script and styles loaded
        operations = page.locator(".opblock").count()
        page.goto("/kiosk/")
        page.wait_for_selector("#kiosk-setup")  # shown by verify.js: the script ran
        page.goto(reverse("admin:login"))
        page.fill("#id_username", "root")
        page.fill("#id_password", "a-long-password-1")
        page.click("input[type=submit]")
        page.wait_for_url(live_server.url + reverse("admin:index"))
        with page.expect_response(lambda response: "/progress/" in response.url):  # the nonce's inline script
            page.goto(reverse("admin:identity_bulkimport_change", args=[bulk.pk]))

    assert operations >= 8
    assert violations == []
