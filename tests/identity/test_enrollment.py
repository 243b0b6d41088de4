"""A photo's way to a face template: pending, then ready or rejected in plain words."""

import io

import numpy
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from identity import enrollment, tasks
from identity.models import Employee, FaceTemplate
from tests.versions import scaled_rotated_version
from training import engine, faces
from training.engine import FaceEngine
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def jpeg(image: numpy.ndarray | Image.Image) -> bytes:
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture
def lfw_photo(faces_dir):
    def photo(person_index: int, number: int = 1) -> bytes:
        people = sorted(path for path in (faces_dir / "lfw").iterdir() if len(list(path.glob("*.jpg"))) >= 2)
        return sorted(people[person_index].glob("*.jpg"))[number - 1].read_bytes()

    return photo


@pytest.fixture
def employee():
    return Employee.objects.create(employee_number="E1", name="First Employee")


def enroll(employee, data, django_capture_on_commit_callbacks, filename="photo.jpg") -> FaceTemplate:
    # The task is not sent here: each test runs the worker's code itself.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        template = tasks.add_photo(employee, data, filename)
    assert len(callbacks) == 1  # the embedding task is queued once the upload commits
    enrollment.process_templates([template.pk])
    template.refresh_from_db()
    return template


def test_a_real_photo_becomes_a_ready_template_with_the_engines_embedding(
    base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks
):
    data = lfw_photo(0)
    template = enroll(employee, data, django_capture_on_commit_callbacks)
    assert template.status == FaceTemplate.Status.READY
    assert template.model_version == base_model_version
    found = faces.detect_faces(faces.decode_image(data))
    expected = FaceEngine(base_model_version.embedder()).embed_faces(found)[0].embedding
    numpy.testing.assert_allclose(numpy.array(template.embedding), expected, atol=1e-6)
    assert set(template.quality) == {"face_size", "sharpness", "brightness", "yaw", "pitch", "roll"}
    assert len(template.landmarks) == 5
    with template.chip.open("rb") as chip:
        assert Image.open(chip).size == (150, 150)


class SwitchedMidway:
    """The active version's engine, except that search switches to ``then`` while it works (as a
    switch committing while a worker embeds a photo would)."""

    def __init__(self, engine, then: ModelVersion):
        self.engine, self.then = engine, then

    def analyse_photos(self, photos, **options):
        analyses = self.engine.analyse_photos(photos, **options)
        self.then.activate(by_name="test: a switch while the photo was embedded")
        return analyses


def test_a_photo_embedded_while_search_switched_version_is_embedded_again_with_the_new_one(
    base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks, monkeypatch
):
    doubled = scaled_rotated_version(base_model_version, scale=2.0)
    real_engine = ModelVersion.engine

    def engine(version, live=False):
        found = real_engine(version, live=live)
        return SwitchedMidway(found, then=doubled) if version.pk == base_model_version.pk else found

    monkeypatch.setattr(ModelVersion, "engine", engine)
    data = lfw_photo(0)
    template = enroll(employee, data, django_capture_on_commit_callbacks)
    # Not left ready with an embedding of a version search no longer uses (it would never be found).
    assert template.status == FaceTemplate.Status.READY
    assert template.model_version == doubled
    base_embedding = FaceEngine(base_model_version.embedder()).embed_faces(faces.detect_faces(faces.decode_image(data)))[0]
    assert numpy.linalg.norm(template.embedding) == pytest.approx(2 * numpy.linalg.norm(base_embedding.embedding), rel=1e-4)
    assert FaceTemplate.objects.searchable(doubled).filter(pk=template.pk).exists()


def test_a_photo_without_a_face_is_rejected_with_what_to_do(
    base_model_version, employee, django_capture_on_commit_callbacks
):
    gradient = numpy.tile(numpy.linspace(0, 255, 300, dtype=numpy.uint8), (300, 1))
    template = enroll(employee, jpeg(numpy.stack([gradient] * 3, axis=-1)), django_capture_on_commit_callbacks)
    assert template.status == FaceTemplate.Status.REJECTED
    assert template.reason == engine.NO_FACE_REASON
    assert template.embedding is None


def test_it_rejects_a_photo_with_two_faces(base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks):
    left = Image.open(io.BytesIO(lfw_photo(0)))
    right = Image.open(io.BytesIO(lfw_photo(1)))
    both = Image.new("RGB", (500, 250))
    both.paste(left, (0, 0))
    both.paste(right, (250, 0))
    template = enroll(employee, jpeg(both), django_capture_on_commit_callbacks)
    assert template.status == FaceTemplate.Status.REJECTED
    assert "shows 2 faces" in template.reason


def test_a_file_that_is_not_an_image_is_rejected_in_plain_words(
    base_model_version, employee, django_capture_on_commit_callbacks
):
    template = enroll(employee, b"%PDF-1.4 not a photo", django_capture_on_commit_callbacks, "cv.pdf")
    assert template.status == FaceTemplate.Status.REJECTED
    assert "photo" in template.reason.lower()


def test_a_face_too_small_to_enroll_is_rejected_with_advice(
    base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks
):
    # A real photo shrunk into a large frame: the face is about 50 px across.
    small = Image.open(io.BytesIO(lfw_photo(0))).resize((120, 120))
    frame = Image.new("RGB", (600, 600), (120, 120, 120))
    frame.paste(small, (240, 240))
    template = enroll(employee, jpeg(frame), django_capture_on_commit_callbacks)
    assert template.status == FaceTemplate.Status.REJECTED
    assert "too small" in template.reason


def test_it_refuses_an_empty_or_oversized_upload_before_storing_it(employee, settings):
    settings.FRID_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(ValidationError, match="up to 0 MB"):
        enrollment.add_photo(employee, b"x" * 1001, "huge.jpg")
    with pytest.raises(ValidationError, match="empty"):
        enrollment.add_photo(employee, b"", "empty.jpg")
    assert not FaceTemplate.objects.exists()


def test_the_same_face_under_another_employee_is_flagged_as_a_possible_duplicate(
    base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks
):
    enroll(employee, lfw_photo(0, 1), django_capture_on_commit_callbacks)
    other = Employee.objects.create(employee_number="E2", name="Same Face")
    template = enroll(other, lfw_photo(0, 2), django_capture_on_commit_callbacks)
    assert template.status == FaceTemplate.Status.READY
    assert template.possible_duplicate_of == employee
    assert template.duplicate_distance <= base_model_version.threshold


def test_processing_a_template_twice_changes_nothing(
    base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks
):
    template = enroll(employee, lfw_photo(0), django_capture_on_commit_callbacks)
    processed_at = template.processed_at
    assert enrollment.process_templates([template.pk]) == []
    template.refresh_from_db()
    assert template.processed_at == processed_at
    assert template.attempts == 1


def test_without_an_active_model_version_the_photo_is_rejected_with_the_fix(
    employee, lfw_photo, django_capture_on_commit_callbacks
):
    ModelVersion.objects.update(is_active=False)
    template = enroll(employee, lfw_photo(0), django_capture_on_commit_callbacks)
    assert template.status == FaceTemplate.Status.REJECTED
    assert "import_base_model" in template.reason


def test_retry_sends_a_rejected_template_through_again(
    base_model_version, employee, django_capture_on_commit_callbacks
):
    template = enroll(employee, b"not an image", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        assert tasks.retry_templates([template]) == 1
    template.refresh_from_db()
    assert template.status == FaceTemplate.Status.PENDING
    assert template.reason == ""


@pytest.fixture
def broker_down(monkeypatch):
    """Sending fails as kombu fails when the broker cannot be reached (tests/identity/test_tasks.py
    stops a real Redis instead)."""
    from kombu.exceptions import OperationalError

    from identity.tasks import embed_templates

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(embed_templates, "apply_async", refuse)


def test_when_the_broker_is_down_the_photo_is_kept_pending_with_a_plain_reason(
    employee, lfw_photo, django_capture_on_commit_callbacks, broker_down
):
    with django_capture_on_commit_callbacks(execute=True):
        template = tasks.add_photo(employee, lfw_photo(0), "photo.jpg")
    template.refresh_from_db()
    assert template.status == FaceTemplate.Status.PENDING
    assert template.reason == enrollment.BROKER_DOWN_REASON
    assert template.source_image.storage.exists(template.source_image.name)


def test_pending_templates_are_sent_again_once_the_broker_is_back(
    employee, lfw_photo, django_capture_on_commit_callbacks, celery_broker
):
    from frid_site.celery import app

    with django_capture_on_commit_callbacks(execute=False):
        template = enrollment.add_photo(employee, lfw_photo(0), "photo.jpg")
    FaceTemplate.objects.filter(pk=template.pk).update(reason=enrollment.BROKER_DOWN_REASON)
    queue = "embeddings"
    with app.connection_for_write() as connection:
        before = connection.default_channel.client.llen(queue)
        assert tasks.requeue_pending_templates(0) == 1
        assert connection.default_channel.client.llen(queue) == before + 1
        connection.default_channel.client.lpop(queue)  # kombu pushes at the head: take ours back
    template.refresh_from_db()
    assert template.reason == ""


def test_a_photo_whose_task_was_never_sent_is_requeued_at_the_next_tick_however_recent(
    employee, lfw_photo, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        never_sent = enrollment.add_photo(employee, lfw_photo(0), "photo.jpg")
        in_flight = enrollment.add_photo(employee, lfw_photo(1), "other.jpg")
    FaceTemplate.objects.filter(pk=never_sent.pk).update(reason=enrollment.BROKER_DOWN_REASON)
    # The periodic requeue waits two minutes for a task that was sent; one never sent has nothing to wait for.
    assert enrollment.claim_pending_for_requeue(tasks.REQUEUE_AFTER) == [never_sent.pk]
    assert in_flight.pk not in enrollment.claim_pending_for_requeue(tasks.REQUEUE_AFTER)


def test_deleting_an_employee_deletes_their_face_photos(
    base_model_version, employee, lfw_photo, django_capture_on_commit_callbacks
):
    template = enroll(employee, lfw_photo(0), django_capture_on_commit_callbacks)
    storage = template.source_image.storage
    names = [template.source_image.name, template.chip.name]
    assert all(storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        employee.delete()
    assert not any(storage.exists(name) for name in names)
