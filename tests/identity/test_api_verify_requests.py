"""POST /api/v1/verify/: requests refused before any worker is asked.

Who may verify: a kiosk (1:N, the face alone), an employee as themself (1:1), HR as anyone (1:1).
Every request that gets as far as the verify flow is audited: a bad one is answered with a clear
4xx and leaves exactly one VerificationAttempt with the decision "refused", and nothing else (no
event, no template, no captured frame). Requests that reach a verify worker are tested with a
real worker in test_verify_task.py and the page tests.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from identity import tasks, verification
from identity.models import AttemptCapture, Kiosk, VerificationAttempt
from tests.identity.api_actors import actors, counts, jpeg, token_client, upload  # noqa: F401 (actors: a fixture)

VERIFY_URL = reverse("api-verify")
Decision = VerificationAttempt.Decision


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Every request here must be refused before the frames go to a verify worker."""

    def contacted(frames):
        pytest.fail("the frames were sent to a verify worker; the request should have been refused first")

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", contacted)


def post(client, frames: list[bytes] | None = None, **fields):
    data = {"image": [upload(frame, f"frame{index}.jpg") for index, frame in enumerate(frames or [])], **fields}
    return client.post(VERIFY_URL, data, format="multipart", REMOTE_ADDR="10.0.0.7")


def assert_refused_once(response, status: int, message: str, before: dict) -> VerificationAttempt:
    """A clear 4xx, one refused attempt saying why, and nothing else changed."""
    assert response.status_code == status, response.content
    after = counts()
    assert after == {**before, "attempts": before["attempts"] + 1}
    attempt = VerificationAttempt.objects.get()
    assert attempt.decision == Decision.REFUSED
    assert attempt.http_status == status
    assert attempt.reason == message
    assert response.json() == {"detail": message, "decision": "refused", "attempt_id": attempt.pk}
    assert not AttemptCapture.objects.exists()
    return attempt


def test_it_refuses_a_request_without_frames(actors):
    before = counts()
    response = post(actors.client("kiosk"), [])
    attempt = assert_refused_once(response, 400, verification.NO_FRAMES, before)
    assert (attempt.mode, attempt.kiosk_id, attempt.frames) == ("kiosk", actors.kiosk.pk, 0)


def test_it_refuses_six_frames(actors):
    before = counts()
    response = post(actors.client("kiosk"), [jpeg()] * 6)
    attempt = assert_refused_once(response, 400, verification.TOO_MANY_FRAMES.format(count=6), before)
    assert attempt.frames == 6


def test_it_refuses_a_frame_that_is_not_an_image(actors):
    before = counts()
    response = post(actors.client("employee"), [jpeg(), b"%PDF-1.7 not a photo"])
    attempt = assert_refused_once(response, 415, verification.NOT_AN_IMAGE.format(index=2), before)
    assert (attempt.mode, attempt.user_id) == ("personal", actors.employee_user.pk)


def test_it_refuses_a_disabled_kiosk_and_keeps_when_it_was_last_seen(actors):
    Kiosk.objects.filter(pk=actors.kiosk.pk).update(is_active=False)
    before = counts()
    response = post(actors.client("kiosk"), [jpeg()])
    attempt = assert_refused_once(response, 403, verification.KIOSK_DISABLED, before)
    assert attempt.kiosk_id == actors.kiosk.pk
    assert Kiosk.objects.get(pk=actors.kiosk.pk).last_seen_at is None


def test_it_refuses_an_unknown_employee_number(actors):
    before = counts()
    response = post(actors.client("hr"), [jpeg()], employee_number="E404")
    assert_refused_once(response, 404, verification.UNKNOWN_EMPLOYEE.format(number="E404"), before)


def test_it_refuses_a_malformed_direction(actors):
    before = counts()
    response = post(actors.client("employee"), [jpeg()], direction="sideways")
    assert_refused_once(response, 400, verification.BAD_DIRECTION.format(value="sideways"), before)


def test_it_refuses_a_kiosk_that_claims_an_employee(actors):
    # A kiosk identifies by the face alone (1:N); a claimed number is for personal check-in.
    before = counts()
    response = post(actors.client("kiosk"), [jpeg()], employee_number="E1")
    assert_refused_once(response, 400, verification.KIOSK_CLAIM, before)


def test_an_employee_may_verify_only_as_themself(actors):
    before = counts()
    response = post(actors.client("employee"), [jpeg()], employee_number=actors.colleague.employee_number)
    attempt = assert_refused_once(response, 403, verification.NOT_YOUR_NUMBER.format(number="E1"), before)
    assert attempt.claimed_employee_id is None


def test_the_attempt_records_who_asked_and_from_where(actors):
    post(actors.client("employee"), [jpeg()], direction="north")
    attempt = VerificationAttempt.objects.get()
    assert attempt.client_address == "10.0.0.7"
    assert attempt.user_id == actors.employee_user.pk
    assert attempt.kiosk_id is None
    assert attempt.latency_ms is not None


def test_a_kiosk_request_marks_the_kiosk_as_seen(actors):
    post(actors.client("kiosk"), [])
    assert Kiosk.objects.get(pk=actors.kiosk.pk).last_seen_at is not None


def test_it_answers_busy_when_no_worker_answers(actors, monkeypatch):
    def no_answer(frames):
        raise tasks.VerificationBusy()

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", no_answer)
    Kiosk.objects.filter(pk=actors.kiosk.pk).update(liveness_required=False)  # a plain burst (test_liveness.py)
    response = post(actors.client("kiosk"), [jpeg()] * 3)
    assert response.status_code == 503
    attempt = VerificationAttempt.objects.get()
    assert response.json() == {"detail": verification.BUSY, "decision": "busy", "attempt_id": attempt.pk}
    assert AttemptCapture.objects.filter(attempt=attempt).count() == 3


def test_it_hands_the_frames_claim_and_direction_to_the_verify_flow(actors, monkeypatch):
    checks = []

    def verify(check):
        checks.append(check)
        return verification.refuse(check, verification.Refusal("stop here"))

    monkeypatch.setattr(tasks, "verify", verify)
    frames = [jpeg(colour="red"), jpeg(colour="blue")]
    post(actors.client("hr"), frames, employee_number="E1", direction="out")
    post(actors.client("kiosk"), frames[:1])
    personal, kiosk = checks
    assert (personal.mode, personal.frames, personal.user, personal.kiosk) == ("personal", frames, actors.hr, None)
    assert (personal.employee_number, personal.direction, personal.client_address) == ("E1", "out", "10.0.0.7")
    assert (kiosk.mode, kiosk.frames, kiosk.user, kiosk.kiosk) == ("kiosk", frames[:1], None, actors.kiosk)
    assert (kiosk.employee_number, kiosk.direction) == ("", "")


@pytest.mark.parametrize("role", ["auditor", "anonymous"])
def test_it_refuses_those_who_may_not_verify_before_any_attempt(actors, role):
    # Not a verification attempt at all: an auditor (no employee record) or nobody. 401 asks for a token.
    response = post(actors.client(role), [jpeg()])
    assert response.status_code == {"auditor": 403, "anonymous": 401}[role]
    assert not VerificationAttempt.objects.exists()


def test_it_refuses_an_unknown_kiosk_token(actors):
    response = post(token_client("kiosk_not-a-real-token"), [jpeg()])
    assert response.status_code == 401
    assert "Unknown kiosk token" in response.json()["detail"]
    assert not VerificationAttempt.objects.exists()
