"""API throttling per kiosk token or user: past its rate a caller gets 429 with Retry-After and plain
words, while every other kiosk and user goes on as before. Verify has its own rate
(FRID_API_VERIFY_RATE), the rest share FRID_API_RATE."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from identity import tasks
from identity.models import Kiosk, VerificationAttempt
from tests.identity.api_actors import actors, token_client, upload  # noqa: F401 (actors: a fixture)

VERIFY_URL = reverse("api-verify")
ATTEMPTS_URL = reverse("api-attempts")
SCHEMA_URL = reverse("api-schema")


@pytest.fixture(autouse=True)
def fresh_counts():
    """The counts live in the default cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", lambda frames: pytest.fail("a worker was asked"))


def verify(client):
    # No frames: refused at once (400), so each request is cheap and audited.
    return client.post(VERIFY_URL, {"image": []}, format="multipart")


def test_a_kiosk_past_the_verify_rate_gets_429_with_plain_words(actors, settings):
    settings.FRID_API_VERIFY_RATE = "3/minute"
    client = actors.client("kiosk")

    answers = [verify(client) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [400, 400, 400, 429]
    throttled = answers[-1]
    assert throttled.json()["detail"].startswith("Too many requests from this kiosk: at most 3 per minute. Wait ")
    assert throttled.json()["detail"].endswith(" seconds and try again.")
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # Throttled requests are not audited: a flood must not fill the append-only audit.
    assert VerificationAttempt.objects.count() == 3


def test_another_kiosk_is_not_affected(actors, settings):
    settings.FRID_API_VERIFY_RATE = "2/minute"
    other = Kiosk(name="Side door")
    other_token = other.new_token()
    other.save()
    first = actors.client("kiosk")
    for _ in range(3):
        verify(first)

    assert verify(first).status_code == 429
    assert verify(token_client(other_token)).status_code == 400  # refused for its frames, not throttled


def test_a_user_is_counted_once_for_their_token_and_their_session(actors, settings):
    settings.FRID_API_RATE = "2/minute"
    by_token = actors.client("auditor")
    by_session = actors.page_client("auditor")

    assert by_token.get(ATTEMPTS_URL).status_code == 200
    assert by_session.get(ATTEMPTS_URL).status_code == 200
    refused = by_token.get(ATTEMPTS_URL)

    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many requests from this account: at most 2 per minute.")
    assert actors.client("hr").get(ATTEMPTS_URL).status_code == 200  # another user


def test_verify_and_the_rest_of_the_api_are_counted_apart(actors, settings):
    settings.FRID_API_VERIFY_RATE = "1/minute"
    settings.FRID_API_RATE = "100/minute"
    hr = actors.client("hr")
    verify(hr)

    assert verify(hr).status_code == 429
    assert hr.get(ATTEMPTS_URL).status_code == 200


def test_callers_without_credentials_are_counted_by_address(actors, settings):
    # Only where no credentials are needed (the schema): elsewhere they are refused (401) first.
    settings.FRID_API_RATE = "1/minute"
    anonymous = actors.client("anonymous")

    assert anonymous.get(SCHEMA_URL, HTTP_ACCEPT="application/json").status_code == 200
    refused = anonymous.get(SCHEMA_URL, HTTP_ACCEPT="application/json")

    assert refused.status_code == 429
    assert "from this address" in refused.json()["detail"]
    assert actors.client("hr").get(SCHEMA_URL, HTTP_ACCEPT="application/json").status_code == 200
