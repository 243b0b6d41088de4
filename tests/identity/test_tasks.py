"""identity.tasks with real Celery workers: subprocesses on this run's Redis and the test database.

What must hold: an uploaded photo ends ready with the engine's embedding, and no photo is lost
when a worker is killed mid-task, when the broker is down at upload, or when the database
drops the worker's connection.
"""

from pathlib import Path

import numpy
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import reverse

from identity.enrollment import BROKER_DOWN_REASON
from identity.tasks import add_photo
from identity.models import Employee, FaceTemplate
from training import faces
from training.engine import FaceEngine
from tests.database_outage import database_outage

pytestmark = pytest.mark.slow

# Covers the worker's start and its first task importing TensorFlow and loading the network.
FIRST_TASK_TIMEOUT_SECONDS = 120
TASK_TIMEOUT_SECONDS = 60
PHOTOS_NEEDED = 5


@pytest.fixture(scope="module")
def enrollable_photos(faces_dir: Path) -> list[Path]:
    """Real LFW photos (different people) that show one face fit for enrollment, as the worker judges."""
    chosen = []
    for person in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        photo = sorted(person.glob("*.jpg"))[0]
        found = faces.detect_faces(faces.decode_image(photo.read_bytes()))
        if len(found) == 1 and not faces.assess(found[0]):
            chosen.append(photo)
        if len(chosen) == PHOTOS_NEEDED:
            return chosen
    pytest.fail(f"Fewer than {PHOTOS_NEEDED} LFW photos show a single usable face.")


def upload(photo: Path, number: str) -> FaceTemplate:
    employee = Employee.objects.create(employee_number=number, name=photo.parent.name.replace("_", " "))
    return add_photo(employee, photo.read_bytes(), photo.name)


def statuses(templates: list[FaceTemplate]) -> list[str]:
    by_id = dict(FaceTemplate.objects.filter(pk__in=[t.pk for t in templates]).values_list("pk", "status"))
    return [by_id[template.pk] for template in templates]


def all_ready(templates: list[FaceTemplate]):
    return lambda: statuses(templates) == [FaceTemplate.Status.READY] * len(templates)


def any_started(templates: list[FaceTemplate]):
    return lambda: FaceTemplate.objects.filter(pk__in=[t.pk for t in templates], attempts__gt=0).exists()


def assert_ready(template: FaceTemplate) -> None:
    template.refresh_from_db()
    assert (template.status, template.reason) == (FaceTemplate.Status.READY, "")


def test_a_photo_uploaded_in_the_admin_ends_ready_with_the_embedding_the_engine_computes(
    workers, base_model_version, enrollable_photos, admin_client
):
    photo = enrollable_photos[0]
    workers.start()
    response = admin_client.post(
        reverse("admin:identity_employee_add"),
        {
            "employee_number": "E1",
            "name": "First Employee",
            "email": "",
            "department": "",
            "is_active": "on",
            "consent": "on",
            "photos": SimpleUploadedFile(photo.name, photo.read_bytes(), "image/jpeg"),
            # The read-only inline of templates still sends its management form.
            "templates-TOTAL_FORMS": "0",
            "templates-INITIAL_FORMS": "0",
            "templates-MIN_NUM_FORMS": "0",
            "templates-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    template = FaceTemplate.objects.get(employee__employee_number="E1")

    workers.wait_for(lambda: statuses([template]) != ["pending"], FIRST_TASK_TIMEOUT_SECONDS, "the photo's task")

    assert_ready(template)
    found = faces.detect_faces(faces.decode_image(photo.read_bytes()))
    expected = FaceEngine(base_model_version.embedder()).embed_faces(found)
    assert len(expected) == 1
    numpy.testing.assert_allclose(numpy.asarray(template.embedding), expected[0].embedding, rtol=0, atol=1e-5)
    assert template.model_version == base_model_version
    assert template.attempts == 1
    assert template.chip.storage.exists(template.chip.name)


def test_a_worker_killed_mid_task_loses_no_photo(workers, base_model_version, enrollable_photos):
    with transaction.atomic():
        templates = [upload(photo, f"E{index}") for index, photo in enumerate(enrollable_photos[:3])]
    first = workers.start()
    # The first task in a fresh worker spends seconds loading TensorFlow after counting its attempt.
    workers.wait_for(any_started(templates), FIRST_TASK_TIMEOUT_SECONDS, "a task to start")
    workers.kill(first)

    assert statuses(templates) == ["pending"] * 3, "the kill landed after the task had finished"
    # The killed task's message waits unacknowledged for the visibility timeout (a day): only
    # the requeue at the next worker's start brings the photo back in time.
    assert workers.broker.unacknowledged_messages() == 1

    workers.start()
    workers.wait_for(all_ready(templates), FIRST_TASK_TIMEOUT_SECONDS, "every photo to be ready after a restart")

    for template in templates:
        assert_ready(template)
    assert workers.broker.unacknowledged_messages() == 1


def test_a_photo_uploaded_while_the_broker_is_down_is_kept_and_embedded_once_it_is_back(
    workers, base_model_version, enrollable_photos
):
    workers.broker.stop()
    template = upload(enrollable_photos[0], "E1")

    template.refresh_from_db()
    assert (template.status, template.reason) == (FaceTemplate.Status.PENDING, BROKER_DOWN_REASON)
    assert template.source_image.storage.exists(template.source_image.name)

    workers.broker.start()
    workers.start()
    workers.wait_for(all_ready([template]), FIRST_TASK_TIMEOUT_SECONDS, "the kept photo to be embedded")

    assert_ready(template)


def test_the_worker_recovers_when_the_database_drops_its_connections_and_refuses_new_ones(
    workers, base_model_version, enrollable_photos
):
    enrolled = upload(enrollable_photos[0], "E0")
    first = workers.start()
    workers.wait_for(all_ready([enrolled]), FIRST_TASK_TIMEOUT_SECONDS, "the first photo to be ready")
    enrolled.refresh_from_db()
    workers.kill(first)
    with transaction.atomic():
        templates = [upload(photo, f"E{index}") for index, photo in enumerate(enrollable_photos[1:5], start=1)]
    workers.start()
    # A fresh worker's first task spends seconds loading TensorFlow after counting its attempt,
    # so the outage begins while the tasks of all four photos are still to finish.
    workers.wait_for(any_started(templates), FIRST_TASK_TIMEOUT_SECONDS, "a task to start")

    with database_outage(connection.settings_dict):
        workers.wait_for(
            lambda: "OperationalError" in workers.log() and "retry" in workers.log(),
            TASK_TIMEOUT_SECONDS,
            "a task to fail on the database and be retried",
        )

    workers.wait_for(all_ready(templates), TASK_TIMEOUT_SECONDS * 2, "every photo to be ready after the outage")
    for template in templates:
        assert_ready(template)
    kept = FaceTemplate.objects.get(pk=enrolled.pk)
    assert kept.status == FaceTemplate.Status.READY
    numpy.testing.assert_array_equal(numpy.asarray(kept.embedding), numpy.asarray(enrolled.embedding))
