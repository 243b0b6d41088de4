"""GET /api/v1/templates/<id>/: HR follows a photo's way to a face template."""

from __future__ import annotations

import pytest
from django.urls import reverse

from identity.models import FaceTemplate
from tests.identity.api_actors import actors  # noqa: F401 (a fixture)

REASON = "No face was found in the photo. Use a photo where the face is clearly visible."


@pytest.fixture
def rejected(actors):
    return FaceTemplate.objects.create(
        employee=actors.employee, source_image="faces/1/photo.jpg", status=FaceTemplate.Status.REJECTED, reason=REASON
    )


def test_hr_sees_a_templates_status_and_reason(actors, rejected):
    response = actors.client("hr").get(reverse("api-template", args=[rejected.pk]))
    assert response.status_code == 200
    assert response.json() == {"id": rejected.pk, "status": "rejected", "reason": REASON}


def test_a_pending_template_has_no_reason_yet(actors):
    pending = FaceTemplate.objects.create(employee=actors.employee, source_image="faces/1/photo.jpg")
    response = actors.client("hr").get(reverse("api-template", args=[pending.pk]))
    assert response.json() == {"id": pending.pk, "status": "pending", "reason": ""}


def test_an_unknown_template_is_not_found(actors):
    assert actors.client("hr").get(reverse("api-template", args=[999999])).status_code == 404


@pytest.mark.parametrize("role, status", [("auditor", 403), ("employee", 403), ("kiosk", 403), ("anonymous", 401)])
def test_only_hr_may_see_templates(actors, rejected, role, status):
    response = actors.client(role).get(reverse("api-template", args=[rejected.pk]))
    assert response.status_code == status
    assert REASON not in response.content.decode()
