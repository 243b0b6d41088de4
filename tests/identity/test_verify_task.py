"""identity.tasks.verify end to end: a real verify worker (a Celery subprocess on this run's Redis
and the test database) embeds real LFW frames; the web side decides and audits.

Who may see what is tested with the API (test_api_*); here: what the decision is, what is recorded.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy
import pytest
from PIL import Image

from identity import tasks, verification
from identity.models import AttemptCapture, AttendanceEvent, FaceTemplate, Kiosk, VerificationAttempt
from tests.identity.real_faces import enroll, people_with_two_photos, verify_worker  # noqa: F401 (a fixture)
from training import engine

Decision = VerificationAttempt.Decision
KIOSK = VerificationAttempt.Mode.KIOSK
PERSONAL = VerificationAttempt.Mode.PERSONAL


@pytest.fixture(scope="module")
def people(faces_dir: Path) -> list[tuple[Path, Path]]:
    """Three LFW people, each with an enrollment photo and another photo of them to verify with."""
    return people_with_two_photos(faces_dir, 3)


def grey_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(numpy.full((480, 640, 3), 128, dtype=numpy.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def kiosk(db) -> Kiosk:
    # Still photos, as these tests send: liveness is tested in test_liveness.py.
    kiosk = Kiosk(name="Front door", liveness_required=False)
    kiosk.new_token()
    kiosk.save()
    return kiosk


@pytest.mark.slow
def test_at_a_kiosk_an_enrolled_employee_is_checked_in_once_and_a_stranger_is_not_recognised(
    verify_worker, kiosk, people
):
    (ann_enrolled, ann_probe), (bob_enrolled, _), (_, stranger) = people
    ann = enroll("E1", ann_enrolled)
    enroll("E2", bob_enrolled)

    first = tasks.verify(verification.Check(KIOSK, [ann_probe.read_bytes()] * 3, kiosk=kiosk, client_address="10.0.0.7"))
    again = tasks.verify(verification.Check(KIOSK, [ann_probe.read_bytes()], kiosk=kiosk))
    unknown = tasks.verify(verification.Check(KIOSK, [stranger.read_bytes()], kiosk=kiosk))

    assert first.as_json()["decision"] == "verified", first.attempt.reason
    assert first.as_json()["employee"] == {"employee_number": "E1", "name": ann.name}
    assert first.as_json()["direction"] == "in"
    attempt = first.attempt
    assert attempt.matched_employee == ann and attempt.nearest_employee == ann
    assert attempt.distance <= attempt.threshold
    assert attempt.margin == attempt.model_version.open_set_margin > 0
    assert attempt.second_distance - attempt.distance >= attempt.margin
    assert (attempt.frames, attempt.client_address, attempt.kiosk) == (3, "10.0.0.7", kiosk)
    assert len(attempt.quality) == 3 and attempt.quality[0]["faces"] == 1
    assert AttemptCapture.objects.filter(attempt=attempt).count() == 3
    # The same check again within minutes: audited and verified, but no second check-in.
    assert again.attempt.decision == Decision.VERIFIED and again.event is None
    assert list(AttendanceEvent.objects.values_list("employee", "direction")) == [(ann.pk, "in")]
    assert unknown.attempt.decision == Decision.NOT_RECOGNISED
    assert unknown.as_json()["employee"] is None
    assert unknown.attempt.matched_employee is None and unknown.attempt.nearest_employee is not None
    assert VerificationAttempt.objects.count() == 3


@pytest.mark.slow
def test_unusable_frames_are_rejected_with_what_to_do(verify_worker, kiosk, people):
    (ann_enrolled, ann_probe), (bob_enrolled, bob_probe), _ = people
    enroll("E1", ann_enrolled)
    enroll("E2", bob_enrolled)

    no_face = tasks.verify(verification.Check(KIOSK, [ann_probe.read_bytes(), grey_jpeg()], kiosk=kiosk))
    two_people = tasks.verify(verification.Check(KIOSK, [ann_probe.read_bytes(), bob_probe.read_bytes()], kiosk=kiosk))
    broken = tasks.verify(verification.Check(KIOSK, [ann_probe.read_bytes()[:300]], kiosk=kiosk))

    assert (no_face.attempt.decision, no_face.attempt.reason) == (Decision.REJECTED, engine.NO_LIVE_FACE_REASON)
    assert (two_people.attempt.decision, two_people.attempt.reason) == (Decision.REJECTED, verification.DIFFERENT_PEOPLE)
    # A frame cut off on the way is refused before any worker is asked (identity.images.inspect_image).
    assert (broken.attempt.decision, broken.attempt.http_status) == (Decision.REFUSED, 400)
    assert broken.attempt.reason == verification.DAMAGED_FRAME.format(index=1)
    assert no_face.as_json()["employee"] is None
    assert not AttendanceEvent.objects.exists()


@pytest.mark.slow
def test_on_a_personal_device_only_the_claimed_employees_face_is_verified(
    verify_worker, people, django_user_model, settings
):
    settings.FRID_LIVENESS_FOR_CHECK_IN = False  # still photos: liveness is tested in test_liveness.py
    (ann_enrolled, ann_probe), (bob_enrolled, bob_probe), _ = people
    ann = enroll("E1", ann_enrolled)
    enroll("E2", bob_enrolled)
    ann.user = django_user_model.objects.create_user("ann")
    ann.save()

    own = tasks.verify(verification.Check(PERSONAL, [ann_probe.read_bytes()], user=ann.user, direction="out"))
    other = tasks.verify(verification.Check(PERSONAL, [bob_probe.read_bytes()], user=ann.user))

    assert own.attempt.decision == Decision.VERIFIED
    assert (own.event.employee, own.event.direction) == (ann, "out")
    assert other.attempt.decision == Decision.NOT_RECOGNISED
    assert other.attempt.reason == verification.NOT_THE_CLAIMED.format(name=ann.name)
    assert other.attempt.claimed_employee == ann
    assert AttendanceEvent.objects.count() == 1


@pytest.mark.slow
def test_the_verify_worker_takes_no_enrollment_work(verify_worker, kiosk, people):
    (ann_enrolled, ann_probe), _, _ = people
    ann = enroll("E1", ann_enrolled)
    waiting = tasks.add_photo(ann, ann_probe.read_bytes(), ann_probe.name)  # queued on "embeddings"

    answer = tasks.verify(verification.Check(KIOSK, [ann_probe.read_bytes()], kiosk=kiosk))

    # The verify worker answered, so it was consuming all along, and left the upload alone.
    assert answer.attempt.decision == Decision.VERIFIED
    assert FaceTemplate.objects.get(pk=waiting.pk).status == FaceTemplate.Status.PENDING
    assert verify_worker.broker.client().llen("embeddings") == 1


def test_without_a_verify_worker_the_check_is_audited_as_busy(empty_broker, transactional_db, settings, kiosk):
    # No worker consumes "verify" here: the wait ends at the timeout whatever the machine's speed.
    settings.FRID_VERIFY_TIMEOUT_SECONDS = 0.5
    outcome = tasks.verify(verification.Check(KIOSK, [grey_jpeg()], kiosk=kiosk))

    assert outcome.http_status == 503
    assert outcome.as_json()["detail"] == verification.BUSY
    assert outcome.attempt.decision == Decision.BUSY
    assert AttemptCapture.objects.filter(attempt=outcome.attempt).count() == 1


def test_when_the_broker_is_down_the_check_is_audited_as_busy(empty_broker, transactional_db, settings, kiosk):
    empty_broker.stop()
    try:
        outcome = tasks.verify(verification.Check(KIOSK, [grey_jpeg()], kiosk=kiosk))
    finally:
        empty_broker.start()

    assert outcome.http_status == 503
    assert outcome.attempt.decision == Decision.BUSY


def test_when_the_broker_stops_while_a_check_waits_the_check_is_audited_as_busy(
    empty_broker, transactional_db, settings, kiosk, monkeypatch
):
    # The check is sent, then the broker (here also the result backend) goes before any answer:
    # waiting for the result and dropping it afterwards both fail on the connection.
    settings.FRID_VERIFY_TIMEOUT_SECONDS = 2
    send = tasks.embed_frames.apply_async

    def send_then_stop_the_broker(*args, **kwargs):
        result = send(*args, **kwargs)
        empty_broker.stop()
        return result

    monkeypatch.setattr(tasks.embed_frames, "apply_async", send_then_stop_the_broker)
    try:
        outcome = tasks.verify(verification.Check(KIOSK, [grey_jpeg()], kiosk=kiosk))
    finally:
        empty_broker.start()

    assert outcome.http_status == 503
    assert outcome.attempt.decision == Decision.BUSY
