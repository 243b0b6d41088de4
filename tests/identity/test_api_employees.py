"""POST /api/v1/employees/: HR adds employees; nobody else may."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from rest_framework.authtoken.models import Token

from identity.models import Employee
from tests.identity.api_actors import actors, token_client  # noqa: F401 (actors: a fixture)

URL = reverse("api-employees")
NEW = {"employee_number": "E100", "name": "Ada Example", "email": "ada@example.com", "department": "Operations"}


def test_hr_adds_an_employee_with_consent_recorded_in_their_name(actors):
    response = actors.client("hr").post(URL, {**NEW, "consent": True}, format="json")
    assert response.status_code == 201, response.content
    employee = Employee.objects.get(employee_number="E100")
    assert (employee.name, employee.email, employee.department) == ("Ada Example", "ada@example.com", "Operations")
    assert employee.consent_recorded_by == actors.hr
    assert employee.consent_recorded_at is not None
    assert response.json() == {**NEW, "consent": True, "consent_recorded_at": response.json()["consent_recorded_at"]}
    assert response.json()["consent_recorded_at"]


def test_an_employee_added_without_consent_has_none_recorded(actors):
    response = actors.client("hr").post(URL, {"employee_number": "E101", "name": "Bo"}, format="json")
    assert response.status_code == 201
    assert response.json()["consent"] is False
    assert response.json()["consent_recorded_at"] is None
    assert Employee.objects.get(employee_number="E101").consent_recorded_at is None


def test_a_superuser_is_hr(actors):
    admin = User.objects.create_superuser("root")
    client = token_client(Token.objects.create(user=admin).key)
    assert client.post(URL, NEW, format="json").status_code == 201


def test_it_refuses_an_employee_number_that_is_taken(actors):
    response = actors.client("hr").post(URL, {**NEW, "employee_number": "E1"}, format="json")
    assert response.status_code == 400
    assert "employee_number" in response.json()
    assert Employee.objects.filter(employee_number="E1").count() == 1


def test_it_refuses_an_employee_without_a_name(actors):
    response = actors.client("hr").post(URL, {"employee_number": "E102"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert not Employee.objects.filter(employee_number="E102").exists()


@pytest.mark.parametrize("role, status", [("auditor", 403), ("employee", 403), ("kiosk", 403), ("anonymous", 401)])
def test_only_hr_may_add_employees(actors, role, status):
    response = actors.client(role).post(URL, {**NEW, "consent": True}, format="json")
    assert response.status_code == status
    assert not Employee.objects.filter(employee_number="E100").exists()
