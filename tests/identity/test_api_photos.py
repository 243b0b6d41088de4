"""POST /api/v1/employees/<employee_number>/photos/: HR adds a photo; it becomes a pending template
whose embedding is queued once the upload commits. Photos of an employee without recorded consent,
and files that are not images, are refused at once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from identity import tasks
from identity.models import FaceTemplate
from tests.identity.api_actors import actors, jpeg, upload  # noqa: F401 (actors: a fixture)


def url(number: str = "E1") -> str:
    return reverse("api-employee-photos", args=[number])


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Uploaded photos go to a folder of this test's own."""
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def queued(monkeypatch) -> list[list[int]]:
    """The template ids sent to the embeddings queue (no broker needed)."""
    sent = []
    monkeypatch.setattr(tasks, "_send_embedding", lambda template_ids: sent.append(template_ids) or True)
    return sent


def test_hr_adds_a_photo_and_its_embedding_is_queued(actors, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = actors.client("hr").post(url(), {"image": upload(jpeg(), "ada.jpg")}, format="multipart")
    assert response.status_code == 202, response.content
    template = FaceTemplate.objects.get()
    assert response.json() == {"id": template.pk, "status": "pending"}
    assert template.employee == actors.employee
    assert template.source_image.read() == jpeg()
    assert queued == [[template.pk]]


def test_it_refuses_a_photo_of_an_employee_without_consent(actors, queued):
    response = actors.client("hr").post(url("E2"), {"image": upload(jpeg())}, format="multipart")
    assert response.status_code == 409
    assert "consent" in response.json()["detail"]
    assert not FaceTemplate.objects.exists()


def test_it_refuses_a_file_that_is_not_an_image(actors, queued):
    response = actors.client("hr").post(
        url(), {"image": upload(b"name,number\nAda,E1\n", "people.csv", "text/csv")}, format="multipart"
    )
    assert response.status_code == 415
    assert response.json() == {"detail": "people.csv is not a JPEG or PNG image. Send a photo of the employee's face."}
    assert not FaceTemplate.objects.exists()


def test_it_refuses_a_photo_that_is_too_large(actors, queued, settings):
    settings.FRID_MAX_UPLOAD_BYTES = 100
    response = actors.client("hr").post(url(), {"image": upload(jpeg(), "big.jpg")}, format="multipart")
    assert response.status_code == 413  # refused by its size, before it is read
    assert response.json()["detail"].startswith("big.jpg is ")
    assert "Use a smaller photo" in response.json()["detail"]
    assert not FaceTemplate.objects.exists()


def test_it_asks_for_the_image_field(actors, queued):
    response = actors.client("hr").post(url(), {"photo": upload(jpeg())}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"image": ['Send the photo as a file in the multipart field "image".']}


def test_an_unknown_employee_is_not_found(actors, queued):
    response = actors.client("hr").post(url("E404"), {"image": upload(jpeg())}, format="multipart")
    assert response.status_code == 404
    assert not FaceTemplate.objects.exists()


@pytest.mark.parametrize("role, status", [("auditor", 403), ("employee", 403), ("kiosk", 403), ("anonymous", 401)])
def test_only_hr_may_add_photos(actors, queued, role, status):
    response = actors.client(role).post(url(), {"image": upload(jpeg())}, format="multipart")
    assert response.status_code == status
    assert not FaceTemplate.objects.exists()
