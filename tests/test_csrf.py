"""CSRF on every form and fetch: a page's form posts the token, the check-in page's script sends it
with each check, and an API call made with a login session but without the token is refused. API
calls with a token in the Authorization header need none (no other site can make a browser send it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from identity import tasks, verification
from identity.api import authentication
from identity.models import VerificationAttempt
from tests.identity.api_actors import actors, jpeg, upload  # noqa: F401 (actors: a fixture)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VERIFY_URL = reverse("api-verify")


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", lambda frames: pytest.fail("a worker was asked"))


def browser(actors, role: str):
    """A logged-in browser, checked for CSRF as a real one is (the test client skips it otherwise)."""
    client = actors.page_client(role)
    client.handler.enforce_csrf_checks = True
    return client


def test_every_form_that_posts_carries_the_csrf_token():
    forms = 0
    for template in (PROJECT_ROOT / "templates").rglob("*.html"):
        for form in re.findall(r"<form[^>]*>.*?</form>", template.read_text(), flags=re.DOTALL | re.IGNORECASE):
            if re.search(r"method=[\"']?post", form, flags=re.IGNORECASE):
                forms += 1
                assert "{% csrf_token %}" in form, f"{template}: a form posts without the CSRF token"
    assert forms >= 5  # log in, log out, and the admin's own forms of ours


def test_the_verify_script_sends_the_token_from_the_cookie_the_page_sets(actors):
    script = (PROJECT_ROOT / "static" / "identity" / "verify.js").read_text()
    assert "'X-CSRFToken': csrfToken()" in script
    page = browser(actors, "employee").get(reverse("check-in"))
    assert page.status_code == 200
    assert page.cookies["csrftoken"].value


def test_a_session_call_with_the_token_gets_through(actors):
    client = browser(actors, "employee")
    token = client.get(reverse("check-in")).cookies["csrftoken"].value

    response = client.post(VERIFY_URL, {"image": []}, format="multipart", HTTP_X_CSRFTOKEN=token)

    # Past the CSRF check, into the verify flow: refused there for the missing frames, and audited.
    assert response.status_code == 400
    assert response.json()["detail"] == verification.NO_FRAMES


@pytest.mark.parametrize("token", [None, "a-token-this-site-never-gave"])
def test_a_session_call_without_the_right_token_is_refused_and_nothing_is_stored(actors, token):
    client = browser(actors, "employee")
    client.get(reverse("check-in"))  # the cookie is there; the header is missing or wrong
    headers = {"HTTP_X_CSRFTOKEN": token} if token else {}

    response = client.post(VERIFY_URL, {"image": [upload(jpeg())]}, format="multipart", **headers)

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert detail.startswith("This request uses your login session but carries no valid CSRF token (")
    assert detail.endswith(authentication.CSRF_REFUSED.split("}")[1])
    assert not VerificationAttempt.objects.exists()


def test_a_token_in_the_authorization_header_needs_no_csrf_token(actors):
    client = actors.client("employee")
    client.handler.enforce_csrf_checks = True

    response = client.post(VERIFY_URL, {"image": []}, format="multipart")

    assert response.status_code == 400
    assert response.json()["detail"] == verification.NO_FRAMES


def test_the_login_form_is_refused_without_the_token(client, django_user_model, db):
    client.handler.enforce_csrf_checks = True
    django_user_model.objects.create_user("erin", password="a long enough password")

    response = client.post(reverse("login"), {"username": "erin", "password": "a long enough password"})

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
