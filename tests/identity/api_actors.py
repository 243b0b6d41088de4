"""The actors of the API tests: HR, an auditor, an employee, a kiosk and nobody, each with a client
that authenticates as the API's integrators do (``Authorization: Token ...``), and small files.

Who may see what (identity.roles): HR enrolls and reads everything; an auditor reads attempts and
everyone's attendance; an employee verifies as themself and reads their own attendance; a kiosk
only verifies (1:N) and switches its own fresh check; nobody gets nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from identity import roles
from identity.models import AttendanceEvent, Employee, FaceTemplate, Kiosk, VerificationAttempt

ROLES = ("hr", "auditor", "employee", "kiosk", "anonymous")


def jpeg(size: tuple[int, int] = (64, 48), colour: str = "grey") -> bytes:
    """A small real JPEG (no face: the tests here stop before any worker looks at it)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def upload(data: bytes, name: str = "frame.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def user_in(group: str, username: str, **fields) -> User:
    user = User.objects.create_user(username, **fields)  # no password: hashing one is slow
    user.groups.add(Group.objects.get(name=group))
    return user


@dataclass
class Actors:
    hr: User
    auditor: User
    employee_user: User
    employee: Employee  # the employee whose account employee_user is
    colleague: Employee  # another employee, with no account
    kiosk: Kiosk
    kiosk_token: str

    def client(self, role: str) -> APIClient:
        """An API client of this role, authenticated by token (a kiosk's, or the user's DRF token)."""
        if role == "kiosk":
            return token_client(self.kiosk_token)
        if role == "anonymous":
            return APIClient()
        user = {"hr": self.hr, "auditor": self.auditor, "employee": self.employee_user}[role]
        return token_client(Token.objects.get_or_create(user=user)[0].key)

    def page_client(self, role: str) -> APIClient:
        """A browser of this role: logged in (a session) for users; a kiosk's browser holds no
        session, only its token, which pages never read."""
        client = APIClient()
        if role == "kiosk":
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.kiosk_token}")
        elif role != "anonymous":
            client.force_login({"hr": self.hr, "auditor": self.auditor, "employee": self.employee_user}[role])
        return client


@pytest.fixture
def actors(db) -> Actors:
    # The groups come from migration 0004; a transactional test that ran earlier emptied the tables.
    roles.ensure_groups()
    hr = user_in(roles.HR, "harriet", is_staff=True)  # HR enrolls in the admin, so is staff
    auditor = user_in(roles.AUDITOR, "audrey", is_staff=True)  # auditors read attempts in the admin
    employee_user = User.objects.create_user("erin")
    employee = Employee.objects.create(
        employee_number="E1", name="Erin Example", department="Operations", user=employee_user,
        consent_recorded_at=timezone.now(),
    )
    colleague = Employee.objects.create(employee_number="E2", name="Colin Colleague", department="Sales")
    kiosk = Kiosk(name="Main entrance", location="Lobby")
    token = kiosk.new_token()
    kiosk.save()
    return Actors(hr, auditor, employee_user, employee, colleague, kiosk, token)


def event_of(employee: Employee, direction: str = "in", kiosk: Kiosk | None = None, when=None) -> AttendanceEvent:
    """A verified attempt and the attendance event it became, as the verify flow records them."""
    when = when or timezone.now()
    attempt = VerificationAttempt.objects.create(
        mode=VerificationAttempt.Mode.KIOSK if kiosk else VerificationAttempt.Mode.PERSONAL,
        decision=VerificationAttempt.Decision.VERIFIED, matched_employee=employee, kiosk=kiosk,
        direction=direction, created_at=when,
    )
    return AttendanceEvent.objects.create(
        employee=employee, direction=direction, occurred_at=when, attempt=attempt, kiosk=kiosk
    )


def counts() -> dict[str, int]:
    """What a refused request must leave as it was (besides its one attempt)."""
    return {
        "attempts": VerificationAttempt.objects.count(),
        "events": AttendanceEvent.objects.count(),
        "templates": FaceTemplate.objects.count(),
        "employees": Employee.objects.count(),
    }
