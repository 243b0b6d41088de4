"""``manage.py erasure_report EMPLOYEE_NUMBER``: before an erasure it finds the employee's faces
wherever FRID keeps them, after it finds nothing, and it finds a copy left behind.

The end-to-end test enrols a real LFW person with two photos, verifies them at a kiosk through a
real verify worker, gathers their faces for training (identity.training_data, with training
consent) and writes the training cache a run writes for a public folder holding them, then erases
them. Its scans run over this test's own data, media and cache folders (never the shared var/)."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from identity import erasure, tasks, training_data, verification
from identity.models import (
    AttemptCapture,
    AttendanceEvent,
    Employee,
    FaceTemplate,
    Kiosk,
    TemplateEmbedding,
    VerificationAttempt,
)
from tests.identity.real_faces import people_with_two_photos, verify_worker  # noqa: F401
from tests.identity.test_erasure import World, world  # noqa: F401

VERIFIED = VerificationAttempt.Decision.VERIFIED


def report(number: str) -> tuple[int, str]:
    """The command's exit status and what it printed."""
    out = StringIO()
    try:
        call_command("erasure_report", number, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def erase(employee, django_capture_on_commit_callbacks=None):
    if django_capture_on_commit_callbacks is None:
        return erasure.erase(employee, reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        return erasure.erase(employee, reason="test")


# --- On a world built in the tables (no worker) ----------------------------------------------------


def test_a_number_frid_never_knew_is_an_error(db):
    status, output = report("nobody")

    assert status == 2
    assert "No employee has the number 'nobody'" in output


def test_before_an_erasure_it_finds_their_faces_everywhere_and_exits_non_zero(world: World):
    status, output = report("A1")

    assert status == 1
    for found in (
        "identity_facetemplate: 3 face template(s)",
        "identity_templateembedding: 1 embedding(s) of other model versions",
        "identity_attemptcapture: 2 captured frame(s) of their attempts",
        "identity_verificationattempt: 2 attempt(s) still holding distances",
        "identity_facetemplate.embedding:",  # the vectors themselves, found by the generic scan
        "identity_templateembedding.embedding:",
        "identity_attemptcapture.image: 2 value(s) byte for byte",
        "identity_facetemplate.source_image:",
        "a zip holding their photo(s): A1/ann.jpg",  # a finished import's zip
        "identity_facetemplate.chip:",
        "chips-ann.npz: a training cache holding one of their chips",
        "import-7-abc",  # an interrupted import's leftover
    ):
        assert found in output, found
    assert "chips-bob.npz" not in output


def test_after_the_erasure_it_finds_nothing_and_exits_zero(world: World, django_capture_on_commit_callbacks):
    erase(world.ann, django_capture_on_commit_callbacks)

    status, output = report("A1")

    assert status == 0, output
    assert "Nothing found" in output
    assert "erased" in output and "2 uploaded photos" in output  # what the erasure record says went


def test_it_scans_every_table_and_column(world: World):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.columns c JOIN information_schema.tables t "
                       "USING (table_schema, table_name) WHERE c.table_schema = current_schema() "
                       "AND t.table_type = 'BASE TABLE' AND c.table_name <> 'identity_erasure'")
        columns = cursor.fetchone()[0]

    scan = erasure.scan("A1")

    assert scan.columns == columns


def test_it_finds_a_copy_of_a_photo_left_in_the_data_directory(world: World, settings, django_capture_on_commit_callbacks):
    erase(world.ann, django_capture_on_commit_callbacks)
    copy = Path(settings.FRID_DATA_DIR) / "exports" / "copy.jpeg"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(world.ann_photos[0])

    status, output = report("A1")

    assert status == 1
    assert f"{copy}: an image byte for byte one of their photos" in output


def test_it_finds_a_frame_of_theirs_stored_in_another_row(world: World, django_capture_on_commit_callbacks):
    erase(world.ann, django_capture_on_commit_callbacks)
    AttemptCapture.objects.create(attempt=world.bob_attempt, index=1, image=world.ann_photos[1])

    status, output = report("A1")

    assert status == 1
    assert "identity_attemptcapture.image: 1 value(s) byte for byte one of their photos" in output


def test_it_finds_an_erased_embedding_copied_into_a_json_column(world: World, django_capture_on_commit_callbacks):
    embedding = list(map(float, world.ann_templates[0].embedding))
    erase(world.ann, django_capture_on_commit_callbacks)
    world.version.metrics = {"kept by mistake": embedding}
    world.version.save(update_fields=["metrics"])

    status, output = report("A1")

    assert status == 1
    assert "training_modelversion.metrics: 1 JSON list(s) of numbers equal to one of their embeddings" in output


def test_it_finds_an_erased_embedding_back_in_a_vector_column(world: World, django_capture_on_commit_callbacks):
    embedding = list(map(float, world.ann_templates[1].embedding))
    erase(world.ann, django_capture_on_commit_callbacks)
    TemplateEmbedding.objects.filter(template=world.bob_template).update(embedding=embedding)

    status, output = report("A1")

    assert status == 1
    assert "identity_templateembedding.embedding: 1 vector(s) equal to one of their embeddings" in output


def test_it_finds_a_file_named_for_them(world: World, settings, django_capture_on_commit_callbacks):
    erase(world.ann, django_capture_on_commit_callbacks)
    stray = Path(settings.MEDIA_ROOT) / "faces" / str(world.ann.pk) / "stray.bin"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"anything")

    status, output = report("A1")

    assert status == 1 and f"{stray}: a file named for them" in output


def test_another_employees_data_is_not_theirs(world: World, django_capture_on_commit_callbacks):
    erase(world.ann, django_capture_on_commit_callbacks)

    assert report("A1")[0] == 0
    status, output = report("B1")  # Bob, never erased, is found: the scan looks at what it is asked about
    assert status == 1 and "identity_facetemplate: 1 face template(s)" in output


# --- End to end: enrolled, verified, trained with, erased ------------------------------------------


def enrol_both_photos(number: str, photos: tuple[Path, Path]) -> Employee:
    from identity import enrollment

    employee = Employee.objects.create(employee_number=number, name=photos[0].parent.name.replace("_", " "))
    employee.record_consent(None)
    templates = [enrollment.add_photo(employee, photo.read_bytes(), photo.name) for photo in photos]
    enrollment.process_templates([template.pk for template in templates])
    assert set(employee.templates.values_list("status", flat=True)) == {FaceTemplate.Status.READY}
    return employee


@pytest.mark.slow
def test_an_enrolled_verified_and_trained_with_person_is_erased_and_the_report_proves_it(
    verify_worker, faces_dir, settings, tmp_path, django_user_model  # noqa: F811
):
    settings.FRID_DATA_DIR = tmp_path / "data"
    settings.FRID_TRAINING_CACHE_DIR = tmp_path / "data" / "training-cache"
    (ann_photos, bob_photos) = people_with_two_photos(faces_dir, 2)
    hr = django_user_model.objects.create_user("harriet")
    ann = enrol_both_photos("A1", ann_photos)
    bob = enrol_both_photos("B1", bob_photos)
    ann.record_training_consent(hr)
    # No liveness challenge: that is tested on its own (test_liveness); this check is about what a
    # verification leaves behind.
    kiosk = Kiosk(name="Front door", liveness_required=False)
    kiosk.new_token()
    kiosk.save()

    # Verified at the kiosk through the real verify worker: an attempt, its frames, an attendance event.
    outcome = tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [ann_photos[1].read_bytes()] * 2,
                                              kiosk=kiosk))
    assert (outcome.attempt.decision, outcome.employee) == (VERIFIED, ann), outcome.attempt.reason
    bobs = tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [bob_photos[0].read_bytes()], kiosk=kiosk))
    assert bobs.employee == bob

    # Trained with: her faces gathered for a run (chips and the capture), and the cache a run writes
    # for a public folder that holds her photos (beside one that does not).
    from training import data

    gathered = training_data.employee_faces()
    frames = AttemptCapture.objects.filter(attempt=outcome.attempt).count()
    assert gathered.names == [f"employee-{ann.pk}"] and len(gathered) == 2 + frames  # photos and captures
    public = tmp_path / "public"
    for person, photos in (("ann", ann_photos), ("bob", bob_photos)):
        (public / person).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, public / person / photo.name)
    bob_only = tmp_path / "public-bob"
    shutil.copytree(public / "bob", bob_only / "bob")
    data.chips_from_folder(public, cache_dir=settings.FRID_TRAINING_CACHE_DIR)
    data.chips_from_folder(bob_only, cache_dir=settings.FRID_TRAINING_CACHE_DIR)
    caches = sorted(Path(settings.FRID_TRAINING_CACHE_DIR).glob("*.npz"))
    assert len(caches) == 2

    # Before: the scan finds her (so this test can fail).
    status, before = report("A1")
    assert status == 1, before
    for found in ("identity_facetemplate: 2 face template(s)", "identity_facetemplate.embedding:",
                  "identity_attemptcapture.image:", "a training cache holding one of their chips",
                  "a file named for them"):
        assert found in before, found
    attempts = {attempt.pk for attempt in erasure.attempts_of(ann)}
    events = list(AttendanceEvent.objects.filter(employee=ann).values_list("pk", "attempt_id", "direction"))
    bob_templates = list(FaceTemplate.objects.filter(employee=bob).values_list("pk", "chip", "embedding"))

    record = erasure.erase(ann, by=hr, reason="consent withdrawn")  # transactional test: files go at commit

    status, after = report("A1")
    assert status == 0, after
    assert "Nothing found" in after
    assert record.removed["templates"] == 2 and record.removed["training_cache_files"] == 1
    # Tombstones: her attempts and attendance stay, without biometrics.
    assert {attempt.pk for attempt in erasure.attempts_of(ann)} == attempts
    assert all(attempt.redacted_at and attempt.distance is None and attempt.quality == []
               for attempt in VerificationAttempt.objects.filter(pk__in=attempts))
    assert list(AttendanceEvent.objects.filter(employee=ann).values_list("pk", "attempt_id", "direction")) == events
    # Bob is untouched: his templates, his cache, his verification.
    assert [(pk, chip, list(embedding)) for pk, chip, embedding in
            FaceTemplate.objects.filter(employee=bob).values_list("pk", "chip", "embedding")] == [
        (pk, chip, list(embedding)) for pk, chip, embedding in bob_templates]
    assert sum(path.exists() for path in caches) == 1
    assert report("B1")[0] == 1
    again = tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [bob_photos[0].read_bytes()], kiosk=kiosk))
    assert again.employee == bob
    # And Ann is a stranger now.
    stranger = tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [ann_photos[1].read_bytes()] * 2,
                                               kiosk=kiosk))
    assert stranger.employee is None
    assert training_data.employee_faces().names == []
