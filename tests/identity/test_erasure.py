"""Erasing an employee's biometric data (identity.erasure): what goes (photos, chips, embeddings of
every version, captured frames, training caches and bulk-import copies holding their faces,
duplicate flags), what stays (the employee record, attendance, attempts redacted as a tombstone),
the record of it, the database trigger that allows exactly the redaction, and the admin's pages.

Built from real LFW photos put straight into the tables (no worker: that is the end-to-end test's
job, in test_erasure_report.py). Ann is erased; Bob, her colleague, must come out untouched."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy
import pytest
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from identity import erasure
from identity.models import (
    AttemptCapture,
    AttendanceEvent,
    BulkImport,
    Employee,
    Erasure,
    FaceTemplate,
    TemplateEmbedding,
    VerificationAttempt,
)
from training.models import ModelVersion
from tests.identity.api_actors import actors  # noqa: F401

pytestmark = pytest.mark.django_db

READY, REJECTED = FaceTemplate.Status.READY, FaceTemplate.Status.REJECTED
VERIFIED = VerificationAttempt.Decision.VERIFIED


def lfw_people(faces_dir: Path, count: int) -> list[list[Path]]:
    """The first LFW people with two photos or more (no face detection needed here)."""
    people = []
    for folder in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= 2:
            people.append(photos[:2])
            if len(people) == count:
                return people
    pytest.fail("Too few LFW people with two photos.")


def chip_of(photo: Path) -> numpy.ndarray:
    """A 150x150 crop around the face of an LFW portrait (LFW centres the face): a stand-in chip."""
    image = Image.open(photo).convert("RGB").crop((50, 50, 200, 200))
    return numpy.asarray(image, dtype=numpy.uint8)


def jpeg(array: numpy.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def save_cache(path: Path, chips: list[numpy.ndarray]) -> Path:
    """A training cache as training.data writes it (chips kept raw, not as JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    numpy.savez(path, chips=numpy.stack(chips), labels=numpy.zeros(len(chips), dtype=numpy.int64),
                names=numpy.array(["someone"]), sources=numpy.array([f"p/{i}.jpg" for i in range(len(chips))]))
    return path


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def stored(model, pk) -> dict:
    return model_to_dict(model.objects.get(pk=pk))


@dataclass
class World:
    ann: Employee
    bob: Employee
    version: ModelVersion
    other_version: ModelVersion
    ann_photos: list[bytes]
    ann_templates: list[FaceTemplate]
    bob_template: FaceTemplate
    ann_attempts: list[VerificationAttempt]
    bob_attempt: VerificationAttempt
    event: AttendanceEvent
    ann_cache: Path
    bob_cache: Path
    ann_zip: BulkImport
    bob_zip: BulkImport
    leftover: Path


def enrol(employee: Employee, photo: Path, version: ModelVersion, seed: int, **fields) -> FaceTemplate:
    template = FaceTemplate(employee=employee, original_filename=photo.name, status=READY, model_version=version,
                            embedding=numpy.random.default_rng(seed).normal(0, 0.1, 128).tolist(), **fields)
    template.source_image.save(photo.name, ContentFile(photo.read_bytes()), save=False)
    template.chip.save(f"{employee.pk}-{seed}.jpg", ContentFile(jpeg(chip_of(photo))), save=False)
    template.save()
    return template


def attempt_of(employee: Employee, frame: bytes, **fields) -> VerificationAttempt:
    values = {"mode": "kiosk", "decision": VERIFIED, "matched_employee": employee, "nearest_employee": employee,
              "distance": 0.31, "second_distance": 0.72, "threshold": 0.5, "frames": 1,
              "quality": [{"faces": 1, "box": [60, 60, 190, 190], "sharpness": 120.0}], **fields}
    attempt = VerificationAttempt.objects.create(**values)
    AttemptCapture.objects.create(attempt=attempt, index=0, image=frame)
    return attempt


@pytest.fixture
def world(db, faces_dir, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FRID_DATA_DIR = tmp_path / "data"
    settings.FRID_TRAINING_CACHE_DIR = tmp_path / "data" / "training-cache"
    (ann_photos, bob_photos) = lfw_people(faces_dir, 2)
    version = ModelVersion.objects.create(name="erasure-test", file="x.keras", sha256="0" * 64, threshold=0.5)
    other = ModelVersion.objects.create(name="erasure-test-next", file="y.keras", sha256="1" * 64, threshold=0.5)
    ann = Employee.objects.create(employee_number="A1", name="Ann Erased", consent_recorded_at=timezone.now(),
                                  training_consent_recorded_at=timezone.now())
    bob = Employee.objects.create(employee_number="B1", name="Bob Kept", consent_recorded_at=timezone.now())
    templates = [enrol(ann, photo, version, seed) for seed, photo in enumerate(ann_photos)]
    automatic = FaceTemplate.objects.create(employee=ann, source=FaceTemplate.Source.CAPTURE, status=READY,
                                            model_version=version, embedding=templates[0].embedding)
    templates.append(automatic)
    TemplateEmbedding.objects.create(template=templates[0], model_version=other,
                                     embedding=numpy.random.default_rng(9).normal(0, 0.1, 128).tolist())
    bob_template = enrol(bob, bob_photos[0], version, 100, possible_duplicate_of=ann, duplicate_distance=0.42)
    TemplateEmbedding.objects.create(template=bob_template, model_version=other, embedding=bob_template.embedding)

    ann_frames = [photo.read_bytes() for photo in ann_photos]
    ann_attempts = [attempt_of(ann, ann_frames[1]),
                    attempt_of(ann, ann_frames[0], decision="not_recognised", matched_employee=None)]
    event = AttendanceEvent.objects.create(employee=ann, direction="in", occurred_at=timezone.now(),
                                           attempt=ann_attempts[0])
    bob_attempt = attempt_of(bob, bob_photos[1].read_bytes())

    cache = settings.FRID_TRAINING_CACHE_DIR
    ann_cache = save_cache(cache / "chips-ann.npz", [chip_of(bob_photos[1]), chip_of(ann_photos[0])])
    bob_cache = save_cache(cache / "chips-bob.npz", [chip_of(bob_photos[0]), chip_of(bob_photos[1])])

    def finished_import(members: dict[str, bytes]) -> BulkImport:
        bulk = BulkImport(status=BulkImport.Status.DONE, finished_at=timezone.now())
        bulk.archive.save("photos.zip", ContentFile(zipped(members)), save=False)
        bulk.save()
        return bulk

    ann_zip = finished_import({"A1/ann.jpg": ann_frames[0], "B1/bob.jpg": bob_photos[0].read_bytes()})
    bob_zip = finished_import({"B1/bob.jpg": bob_photos[0].read_bytes()})
    leftover = settings.FRID_DATA_DIR / "tmp" / "import-7-abc" / "A1" / "ann.jpg"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(ann_frames[1])
    return World(ann, bob, version, other, ann_frames, templates, bob_template, ann_attempts, bob_attempt, event,
                 ann_cache, bob_cache, ann_zip, bob_zip, leftover)


def erase(world: World, django_capture_on_commit_callbacks, by=None) -> Erasure:
    with django_capture_on_commit_callbacks(execute=True):
        return erasure.erase(world.ann, by=by, reason="consent withdrawn")


def media_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


# --- What goes ----------------------------------------------------------------------------------


def test_erasing_removes_their_templates_photos_chips_and_embeddings_of_every_version(
    world, settings, django_capture_on_commit_callbacks
):
    ann_files = [template.source_image.name for template in world.ann_templates[:2]]
    ann_files += [template.chip.name for template in world.ann_templates[:2]]
    assert all(name in media_files(settings) for name in ann_files)

    erase(world, django_capture_on_commit_callbacks)

    assert not FaceTemplate.objects.filter(employee=world.ann).exists()
    assert not TemplateEmbedding.objects.filter(template__employee=world.ann).exists()
    assert not any(name in media_files(settings) for name in ann_files)
    assert not (Path(settings.MEDIA_ROOT) / "faces" / str(world.ann.pk)).exists()


def test_erasing_removes_the_frames_captured_during_their_attempts(world, django_capture_on_commit_callbacks):
    erase(world, django_capture_on_commit_callbacks)

    assert not AttemptCapture.objects.filter(attempt__in=world.ann_attempts).exists()


def test_erasing_deletes_the_training_caches_and_import_copies_that_hold_their_face(
    world, django_capture_on_commit_callbacks
):
    record = erase(world, django_capture_on_commit_callbacks)

    assert not world.ann_cache.exists()
    assert not world.leftover.exists()
    world.ann_zip.refresh_from_db()
    assert not world.ann_zip.archive and world.ann_zip.status == BulkImport.Status.DONE  # the record stays
    assert (record.removed["training_cache_files"], record.removed["import_zips"],
            record.removed["import_leftovers"]) == (1, 1, 1)


def test_other_employees_keep_everything_but_their_duplicate_flag_pointing_at_the_erased(
    world, settings, django_capture_on_commit_callbacks
):
    bob_files = [world.bob_template.source_image.name, world.bob_template.chip.name]
    bob_attempt = stored(VerificationAttempt, world.bob_attempt.pk)

    erase(world, django_capture_on_commit_callbacks)

    template = FaceTemplate.objects.get(pk=world.bob_template.pk)
    assert (template.status, template.possible_duplicate_of, template.duplicate_distance) == (READY, None, None)
    assert numpy.allclose(template.embedding, world.bob_template.embedding)
    assert TemplateEmbedding.objects.filter(template=template).count() == 1
    assert all(name in media_files(settings) for name in bob_files)
    assert stored(VerificationAttempt, world.bob_attempt.pk) == bob_attempt
    assert AttemptCapture.objects.filter(attempt=world.bob_attempt).count() == 1
    assert world.bob_cache.exists()
    world.bob_zip.refresh_from_db()
    assert world.bob_zip.archive and Path(world.bob_zip.archive.path).exists()
    assert Employee.objects.get(pk=world.bob.pk).consent_recorded_at is not None


# --- What stays ---------------------------------------------------------------------------------


def test_their_attempts_and_attendance_stay_as_a_tombstone_without_biometrics(
    world, django_capture_on_commit_callbacks
):
    before = [stored(VerificationAttempt, attempt.pk) for attempt in world.ann_attempts]

    erase(world, django_capture_on_commit_callbacks)

    for attempt, was in zip(world.ann_attempts, before):
        now = VerificationAttempt.objects.get(pk=attempt.pk)
        assert now.redacted_at is not None
        assert (now.distance, now.second_distance, now.quality) == (None, None, [])
        redacted = ("distance", "second_distance", "quality", "redacted_at")
        kept = {key: value for key, value in stored(VerificationAttempt, attempt.pk).items() if key not in redacted}
        assert kept == {key: value for key, value in was.items() if key not in redacted}
    event = AttendanceEvent.objects.get(pk=world.event.pk)
    assert (event.employee_id, event.attempt_id, event.direction) == (world.ann.pk, world.ann_attempts[0].pk, "in")


def test_the_employee_record_stays_with_both_consents_cleared(world, django_capture_on_commit_callbacks):
    erase(world, django_capture_on_commit_callbacks)

    ann = Employee.objects.get(pk=world.ann.pk)
    assert (ann.employee_number, ann.name) == ("A1", "Ann Erased")
    assert ann.consent_recorded_at is None and ann.training_consent_recorded_at is None


def test_the_erasure_is_recorded_with_counts_and_digests_but_no_biometrics(
    world, django_capture_on_commit_callbacks, django_user_model
):
    hr = django_user_model.objects.create_user("harriet")

    record = erase(world, django_capture_on_commit_callbacks, by=hr)

    assert (record.employee_id, record.employee_number, record.erased_by_id, record.erased_by_name,
            record.reason) == (world.ann.pk, "A1", hr.pk, "harriet", "consent withdrawn")
    assert record.removed == {
        "templates": 3, "automatic_templates": 1, "photos": 2, "chips": 2, "embeddings": 4,
        "other_version_embeddings": 1, "captures": 2, "attempts_redacted": 2, "duplicate_links": 1,
        "training_cache_files": 1, "import_zips": 1, "import_leftovers": 1,
    }
    assert erasure.digest(world.ann_photos[0]) in record.file_digests
    assert erasure.embedding_digest(world.ann_templates[0].embedding) in record.embedding_digests
    # Nothing in the record is a face, a frame or an embedding: only names, counts and 64-digit digests.
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in record.file_digests + record.embedding_digests)
    assert not any(isinstance(value, (bytes, list)) for value in record.removed.values())


def test_erasing_again_finds_nothing_more_to_remove(world, django_capture_on_commit_callbacks):
    erase(world, django_capture_on_commit_callbacks)

    again = erase(world, django_capture_on_commit_callbacks)

    assert not any(again.removed.values())
    assert Erasure.objects.filter(employee_number="A1").count() == 2


def test_an_erasure_waits_for_a_bulk_import_of_their_photos_that_is_still_running(
    world, django_capture_on_commit_callbacks
):
    BulkImport.objects.filter(pk=world.ann_zip.pk).update(status=BulkImport.Status.RUNNING)

    with pytest.raises(erasure.ErasureBlocked, match="has not finished yet"):
        erase(world, django_capture_on_commit_callbacks)

    assert FaceTemplate.objects.filter(employee=world.ann).count() == 3
    assert not Erasure.objects.exists()


def test_files_named_for_them_that_no_row_points_at_are_erased_too(world, settings, django_capture_on_commit_callbacks):
    orphan = Path(settings.MEDIA_ROOT) / "chips" / f"{world.ann.pk}-999.jpg"
    orphan.write_bytes(jpeg(chip_of(Path(world.ann_templates[0].source_image.path))))
    bobs_named = Path(settings.MEDIA_ROOT) / "chips" / f"{world.bob.pk}-999.jpg"
    bobs_named.write_bytes(orphan.read_bytes())

    erase(world, django_capture_on_commit_callbacks)

    assert not orphan.exists()
    assert bobs_named.exists()


# --- The database allows exactly the redaction ----------------------------------------------------


def raw_update(attempt: VerificationAttempt, assignments: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE identity_verificationattempt SET {assignments} WHERE id = %s", [attempt.pk])


REDACTION = "distance = NULL, second_distance = NULL, quality = '[]', redacted_at = now()"


def test_the_database_lets_an_erasure_redact_an_attempt(world):
    attempt = world.ann_attempts[0]

    raw_update(attempt, REDACTION)

    redacted = VerificationAttempt.objects.get(pk=attempt.pk)
    assert (redacted.distance, redacted.second_distance, redacted.quality) == (None, None, [])
    assert redacted.redacted_at is not None


@pytest.mark.parametrize("assignments", [
    "decision = 'verified', reason = 'changed'",  # an ordinary change
    REDACTION + ", decision = 'not_recognised'",  # a redaction that changes something else too
    REDACTION + ", matched_employee_id = NULL",  # ...or hides whom it was about
    REDACTION + ", created_at = created_at - interval '1 day'",
    "distance = NULL, second_distance = NULL, quality = '[]'",  # cleared without saying so
    "redacted_at = now()",  # said so without clearing
    "distance = NULL, second_distance = NULL, quality = '[{\"faces\": 2}]', redacted_at = now()",
    "distance = 0.99, second_distance = NULL, quality = '[]', redacted_at = now()",
])
def test_the_database_refuses_any_other_update_of_an_attempt(world, assignments):
    attempt = world.ann_attempts[0]
    before = stored(VerificationAttempt, attempt.pk)

    with pytest.raises(DatabaseError, match="verification attempts are append-only: UPDATE is not allowed"):
        raw_update(attempt, assignments)

    assert stored(VerificationAttempt, attempt.pk) == before


def test_the_database_refuses_to_change_an_attempt_once_redacted(world):
    attempt = world.ann_attempts[0]
    raw_update(attempt, REDACTION)
    before = stored(VerificationAttempt, attempt.pk)

    for assignments in (REDACTION, "redacted_at = NULL", "reason = 'rewritten'"):
        with pytest.raises(DatabaseError, match="append-only: UPDATE is not allowed"):
            raw_update(attempt, assignments)

    assert stored(VerificationAttempt, attempt.pk) == before


def test_the_database_still_refuses_to_delete_an_attempt(world):
    with pytest.raises(DatabaseError, match="append-only: DELETE is not allowed"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM identity_verificationattempt WHERE id = %s", [world.ann_attempts[0].pk])


def test_redacting_through_the_orm_touches_only_the_attempts_asked_for(world):
    redacted = VerificationAttempt.objects.filter(pk=world.ann_attempts[0].pk).redact()

    assert redacted == 1
    assert VerificationAttempt.objects.get(pk=world.ann_attempts[1].pk).redacted_at is None
    assert VerificationAttempt.objects.filter(pk=world.ann_attempts[0].pk).redact() == 0  # once only


# --- In the admin ---------------------------------------------------------------------------------


def erase_page(employee: Employee) -> str:
    return reverse("admin:identity_erasure_erase", args=[employee.pk])


def test_the_employee_page_offers_erasure_and_the_confirmation_page_counts_what_will_go(world, admin_client):
    page = admin_client.get(reverse("admin:identity_employee_change", args=[world.ann.pk])).content.decode()
    assert erase_page(world.ann) in page

    confirmation = admin_client.get(erase_page(world.ann)).content.decode()

    assert "Erase the biometric data of Ann Erased (A1)?" in confirmation
    for line in ("2 uploaded photos", "2 aligned faces (chips)", "3 face templates", "4 embeddings",
                 "2 captured kiosk frames", "2 verification attempts redacted"):
        assert line in confirmation
    assert FaceTemplate.objects.filter(employee=world.ann).count() == 3  # nothing erased by looking


def test_confirming_erases_records_who_and_says_so(world, admin_client, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(erase_page(world.ann), {"reason": "consent withdrawn"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:identity_employee_change", args=[world.ann.pk])
    assert "Biometric data of Ann Erased (A1) erased" in response.content.decode()
    assert not FaceTemplate.objects.filter(employee=world.ann).exists()
    record = Erasure.objects.get()
    assert (record.erased_by_id, record.reason) == (admin_user.pk, "consent withdrawn")
    listed = admin_client.get(reverse("admin:identity_erasure_changelist")).content.decode()
    assert "A1" in listed and "2 uploaded photos" in listed


def test_only_hr_may_erase(world, client, actors):  # noqa: F811
    client.force_login(actors.auditor)

    assert client.get(erase_page(world.ann)).status_code == 403
    assert client.post(erase_page(world.ann)).status_code == 403
    assert FaceTemplate.objects.filter(employee=world.ann).count() == 3

    client.force_login(actors.hr)
    assert client.get(erase_page(world.ann)).status_code == 200


def test_withdrawing_consent_offers_erasure_right_there(world, admin_client):
    from tests.identity.test_admin import employee_form, messages_of

    employee = world.ann
    response = admin_client.post(
        reverse("admin:identity_employee_change", args=[employee.pk]),
        employee_form(employee, employee_number="A1", name="Ann Erased", consent=None), follow=True,
    )

    assert any(erase_page(employee) in message for message in messages_of(response)) or (
        erase_page(employee) in response.content.decode()
    )
    page = admin_client.get(reverse("admin:identity_employee_change", args=[employee.pk])).content.decode()
    assert 'class="erasure-offer"' in page and f"{erase_page(employee)}?reason=consent+withdrawn" in page


def test_withdrawing_training_consent_offers_erasure_right_there(world, admin_client):
    from tests.identity.test_admin import employee_form

    employee = world.ann  # she agreed to training (the fixture recorded it)
    response = admin_client.post(
        reverse("admin:identity_employee_change", args=[employee.pk]),
        employee_form(employee, employee_number="A1", name="Ann Erased", training_consent=None), follow=True,
    )

    assert Employee.objects.get(pk=employee.pk).training_consent_recorded_at is None
    page = response.content.decode()
    assert "Training consent withdrawn" in page
    assert f"{erase_page(employee)}?reason=training+consent+withdrawn" in page


def test_hr_records_training_consent_on_the_employee_page(world, admin_client, admin_user):
    from tests.identity.test_admin import employee_form

    employee = world.bob
    admin_client.post(reverse("admin:identity_employee_change", args=[employee.pk]),
                      employee_form(employee, employee_number="B1", name="Bob Kept", training_consent="on"))

    bob = Employee.objects.get(pk=employee.pk)
    assert bob.agreed_to_training and bob.training_consent_recorded_by == admin_user
    page = admin_client.get(reverse("admin:identity_employee_change", args=[employee.pk])).content.decode()
    assert "Training consent recorded" in page and f"by {admin_user.username}." in page
