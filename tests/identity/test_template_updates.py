"""Automatic templates from verified kiosk captures (identity.template_updates): the policy, the
web side's cheap check, the worker's part on real LFW faces, and one check end to end through a
real verify worker and a real embeddings worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as utc
from pathlib import Path

import numpy
import pytest
from django.utils import timezone
from PIL import Image

from identity import tasks, template_updates, verification
from identity.models import Employee, FaceTemplate, Kiosk, VerificationAttempt
from identity.template_updates import due, should_keep, templates_to_replace
from tests.identity.real_faces import PATIENT_TIMEOUT_SECONDS, enroll, people_with_two_photos, verify_worker  # noqa: F401

CAPTURE, PHOTO = FaceTemplate.Source.CAPTURE, FaceTemplate.Source.PHOTO
KIOSK = VerificationAttempt.Mode.KIOSK
VERIFIED = VerificationAttempt.Decision.VERIFIED
START = datetime(2026, 12, 1, 8, 0, tzinfo=utc.utc)
# A probe this near its enrollment photo is far inside any threshold FRID uses minus the margin.
CLOSE_ENOUGH = 0.36


@dataclass
class Stored:
    """A template as the policy sees it."""

    name: str
    source: str
    created_at: datetime


def aged(name: str, source: str, days: int) -> Stored:
    return Stored(name, source, START + timedelta(days=days))


# --- The policy ---------------------------------------------------------------------------------


def test_a_capture_far_inside_the_threshold_is_kept():
    assert should_keep(0.30, threshold=0.50, margin=0.10)
    assert should_keep(0.40, threshold=0.50, margin=0.10)  # exactly at threshold - margin


def test_a_capture_near_the_threshold_is_not_kept():
    assert not should_keep(0.45, threshold=0.50, margin=0.10)
    assert not should_keep(0.50, threshold=0.50, margin=0.10)
    assert not should_keep(None, threshold=0.50, margin=0.10)


def test_below_the_cap_nothing_is_replaced():
    templates = [aged("hr", PHOTO, 0), aged("a", CAPTURE, 1), aged("b", CAPTURE, 2)]
    assert templates_to_replace(templates, cap=3) == []


def test_at_the_cap_the_oldest_automatic_template_is_replaced_first():
    templates = [aged("c", CAPTURE, 3), aged("a", CAPTURE, 1), aged("hr", PHOTO, 0), aged("b", CAPTURE, 2)]
    assert [template.name for template in templates_to_replace(templates, cap=3)] == ["a"]
    # A cap lowered since: the oldest ones go until the new one fits.
    assert [template.name for template in templates_to_replace(templates, cap=2)] == ["a", "b"]


def test_hr_photos_are_never_replaced():
    photos = [aged(f"hr{day}", PHOTO, day) for day in range(4)]
    assert templates_to_replace(photos, cap=1) == []
    assert [t.name for t in templates_to_replace(photos + [aged("a", CAPTURE, 9)], cap=1)] == ["a"]


def test_a_new_automatic_template_waits_for_the_minimum_interval():
    assert due(None, START, min_hours=20)
    assert not due(START, START + timedelta(hours=19), min_hours=20)
    assert due(START, START + timedelta(hours=20), min_hours=20)


# --- The web side's check -----------------------------------------------------------------------


def attempt(**fields) -> VerificationAttempt:
    values = {"mode": KIOSK, "decision": VERIFIED, "distance": 0.30, "threshold": 0.50, **fields}
    return VerificationAttempt.objects.create(**values)


@pytest.fixture
def agreed(db, django_user_model) -> Employee:
    employee = Employee.objects.create(employee_number="A1", name="Ann Agreed")
    employee.record_training_consent(django_user_model.objects.create_user("hr"))
    return employee


def test_a_verified_kiosk_check_far_inside_the_threshold_of_an_employee_who_agreed_is_worth_keeping(agreed, settings):
    settings.FRID_AUTO_TEMPLATE_MARGIN = 0.10
    assert template_updates.worth_keeping(attempt(distance=0.39), agreed)
    assert not template_updates.worth_keeping(attempt(distance=0.41), agreed)


def test_an_employee_who_did_not_agree_is_never_worth_keeping(db):
    employee = Employee.objects.create(employee_number="B1", name="Bob Unasked")
    assert not template_updates.worth_keeping(attempt(matched_employee=employee), employee)


def test_only_verified_kiosk_checks_are_worth_keeping(agreed, settings):
    assert not template_updates.worth_keeping(attempt(mode=VerificationAttempt.Mode.PERSONAL), agreed)
    assert not template_updates.worth_keeping(attempt(decision=VerificationAttempt.Decision.NOT_RECOGNISED), agreed)
    settings.FRID_AUTO_TEMPLATES_PER_PERSON = 0  # the feature turned off
    assert not template_updates.worth_keeping(attempt(), agreed)


def test_a_check_soon_after_the_last_automatic_template_is_not_worth_keeping(agreed, settings):
    settings.FRID_AUTO_TEMPLATE_MIN_HOURS = 20
    recent = FaceTemplate.objects.create(employee=agreed, source=CAPTURE)
    assert not template_updates.worth_keeping(attempt(), agreed)
    FaceTemplate.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(hours=21))
    assert template_updates.worth_keeping(attempt(), agreed)


# --- The worker's part, on real faces -----------------------------------------------------------


@pytest.fixture(scope="module")
def close_pairs(faces_dir: Path, _imported_base_model) -> list[tuple[Path, Path]]:
    """Two LFW people, each an enrollment photo and another photo of them that a kiosk sees far
    inside the threshold (measured with the live engine, as the verify worker sees them)."""
    engine = _imported_base_model.engine(live=True)
    found = []
    for enrolled, probe in people_with_two_photos(faces_dir, 12):
        first, second = engine.analyse_photos([enrolled.read_bytes(), probe.read_bytes()])
        if first.embedding is not None and second.embedding is not None:
            if numpy.linalg.norm(first.embedding - second.embedding) <= CLOSE_ENOUGH:
                found.append((enrolled, probe))
                if len(found) == 2:
                    return found
    pytest.fail(f"Fewer than two LFW people among the first 12 have two photos within {CLOSE_ENOUGH}.")


@pytest.fixture(scope="module")
def close_pair(close_pairs) -> tuple[Path, Path]:
    return close_pairs[0]


@pytest.fixture
def kiosk(db) -> Kiosk:
    kiosk = Kiosk(name="Front door", liveness_required=False)  # still photos, as these tests send
    kiosk.new_token()
    kiosk.save()
    return kiosk


def verified_here(version, kiosk, photo: Path) -> verification.Outcome:
    """A kiosk check decided in this process on frames analysed as the verify worker does."""
    frames = [photo.read_bytes()] * 2
    analysed = version.engine(live=True).analyse_photos(frames)
    results = [verification.FrameResult.from_json(analysis.as_json()) for analysis in analysed]
    outcome = verification.decide(verification.Check(KIOSK, frames, kiosk=kiosk), None, results, version.pk)
    assert outcome.attempt.decision == VERIFIED, outcome.attempt.reason
    return outcome


def enroll_both(close_pairs, user) -> tuple[Employee, Employee]:
    """Ann, who agreed to her captures improving recognition, and Bob, who was never asked."""
    ann = enroll("A1", close_pairs[0][0])
    ann.record_training_consent(user)
    return ann, enroll("B1", close_pairs[1][0])


@pytest.fixture
def employees(base_model_version, close_pairs, settings, tmp_path, django_user_model) -> Employee:
    """Ann (who agreed), enrolled beside Bob; she is the one returned."""
    settings.MEDIA_ROOT = tmp_path / "media"
    ann, _ = enroll_both(close_pairs, django_user_model.objects.create_user("hr"))
    return ann


@pytest.mark.slow
def test_a_kept_capture_is_a_ready_searchable_template_with_its_own_chip(employees, base_model_version, kiosk,
                                                                          close_pair):
    outcome = verified_here(base_model_version, kiosk, close_pair[1])
    assert outcome.keep_capture

    template = template_updates.keep_capture(outcome.attempt.pk)

    assert (template.employee, template.source, template.from_attempt) == (employees, CAPTURE, outcome.attempt)
    assert template.status == FaceTemplate.Status.READY and template.model_version == base_model_version
    assert FaceTemplate.objects.nearest(template.embedding, base_model_version).first() == template
    with template.chip.open("rb") as stored:
        chip = numpy.asarray(Image.open(stored).convert("RGB"))
    assert chip.shape == (150, 150, 3)
    # The embedding is the chip's own (up to JPEG's loss), so re-embedding the chip reproduces it.
    again = base_model_version.embedder().embed(chip[None])[0]
    assert numpy.linalg.norm(again - numpy.array(template.embedding)) < 0.05
    assert not template.source_image  # the captured frame itself is not kept
    assert template_updates.keep_capture(outcome.attempt.pk) is None  # kept once only


@pytest.mark.slow
def test_at_the_cap_the_oldest_automatic_template_goes_and_hr_photos_stay(employees, base_model_version, kiosk,
                                                                          close_pair, settings):
    settings.FRID_AUTO_TEMPLATES_PER_PERSON = 2
    photo = employees.templates.get(source=PHOTO)
    older, newer = (
        FaceTemplate.objects.create(employee=employees, source=CAPTURE, status=FaceTemplate.Status.READY,
                                    embedding=photo.embedding, model_version=base_model_version)
        for _ in range(2)
    )
    FaceTemplate.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=3))
    FaceTemplate.objects.filter(pk=newer.pk).update(created_at=timezone.now() - timedelta(days=2))

    kept = template_updates.keep_capture(verified_here(base_model_version, kiosk, close_pair[1]).attempt.pk)

    assert set(employees.templates.values_list("pk", flat=True)) == {photo.pk, newer.pk, kept.pk}


@pytest.mark.slow
def test_the_worker_keeps_nothing_of_an_employee_who_withdrew_or_never_gave_consent(
    employees, base_model_version, kiosk, close_pairs
):
    anns = verified_here(base_model_version, kiosk, close_pairs[0][1])
    bobs = verified_here(base_model_version, kiosk, close_pairs[1][1])
    Employee.objects.filter(pk=employees.pk).update(training_consent_recorded_at=None)

    assert template_updates.keep_capture(anns.attempt.pk) is None
    assert template_updates.keep_capture(bobs.attempt.pk) is None
    assert not FaceTemplate.objects.filter(source=CAPTURE).exists()


@pytest.mark.slow
def test_deleting_an_automatic_template_removes_its_chip_and_verification_goes_on(
    employees, base_model_version, kiosk, close_pair, django_capture_on_commit_callbacks
):
    template = template_updates.keep_capture(verified_here(base_model_version, kiosk, close_pair[1]).attempt.pk)
    storage, name = template.chip.storage, template.chip.name

    with django_capture_on_commit_callbacks(execute=True):
        template.delete()

    assert not storage.exists(name)
    assert VerificationAttempt.objects.filter(pk=template.from_attempt_id).exists()  # the audit stays
    assert verified_here(base_model_version, kiosk, close_pair[1]).employee == employees


# --- End to end ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_at_a_kiosk_a_close_capture_of_an_employee_who_agreed_becomes_a_template_and_of_one_who_did_not_none(
    verify_worker, kiosk, close_pairs, django_user_model
):
    verify_worker.start(queues="embeddings")  # the niced worker, which keeps the captures
    ann, bob = enroll_both(close_pairs, django_user_model.objects.create_user("hr"))
    (_, anns_probe), (_, bobs_probe) = close_pairs

    bobs = tasks.verify(verification.Check(KIOSK, [bobs_probe.read_bytes()] * 3, kiosk=kiosk))
    anns = tasks.verify(verification.Check(KIOSK, [anns_probe.read_bytes()] * 3, kiosk=kiosk))

    assert (bobs.attempt.decision, bobs.employee, anns.attempt.decision, anns.employee) == (VERIFIED, bob, VERIFIED, ann)
    assert (bobs.keep_capture, anns.keep_capture) == (False, True)
    verify_worker.wait_for(lambda: ann.templates.filter(source=CAPTURE).exists(), 2 * PATIENT_TIMEOUT_SECONDS,
                           "the embeddings worker to keep Ann's capture")
    kept = ann.templates.get(source=CAPTURE)
    assert kept.from_attempt_id == anns.attempt.pk
    assert FaceTemplate.objects.nearest(kept.embedding, kept.model_version).first() == kept  # searchable
    # Bob's check was sent nowhere, and the queue the worker took Ann's from is empty.
    assert not bob.templates.filter(source=CAPTURE).exists()
    assert verify_worker.broker.client().llen("embeddings") == 0
