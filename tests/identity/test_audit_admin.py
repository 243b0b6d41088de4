"""The audit in the admin: verification attempts (read-only, with filters, search by employee
number and the captured frames) and attendance events (corrections of direction).

Who sees what: HR and auditors read attempts and events; only users with
identity.view_attemptcapture_image see the captured frames (superusers hold it; the groups do
not); HR may correct an event's direction, an auditor may not; nobody adds an event by hand.
"""

import html
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from identity import roles
from identity.models import AttemptCapture, AttendanceEvent, Employee, Kiosk, VerificationAttempt

from tests.identity.attendance_data import check, employee

pytestmark = pytest.mark.django_db

ATTEMPTS = reverse("admin:identity_verificationattempt_changelist")
EVENTS = reverse("admin:identity_attendanceevent_changelist")
JPEG = b"\xff\xd8\xff\xe0first frame"
VERIFIED = VerificationAttempt.Decision.VERIFIED
NOT_RECOGNISED = VerificationAttempt.Decision.NOT_RECOGNISED


def attempt_page(attempt: VerificationAttempt) -> str:
    return reverse("admin:identity_verificationattempt_change", args=[attempt.pk])


def frame_url(attempt: VerificationAttempt, index: int) -> str:
    return reverse("identity:attempt-frame", args=[attempt.pk, index])


def event_page(event: AttendanceEvent) -> str:
    return reverse("admin:identity_attendanceevent_change", args=[event.pk])


def text_of(response) -> str:
    return html.unescape(" ".join(strip_tags(response.content.decode()).split()))


def listed(client, url: str, query: dict) -> list:
    return list(client.get(url, query).context["cl"].result_list)


def attempt(decision=NOT_RECOGNISED, mode=VerificationAttempt.Mode.KIOSK, frames: int = 0, **fields):
    made = VerificationAttempt.objects.create(mode=mode, decision=decision, frames=frames, **fields)
    for index in range(frames):
        AttemptCapture.objects.create(
            attempt=made, index=index, image=JPEG + bytes([index]), created_at=made.created_at
        )
    return made


@pytest.fixture
def staff_in(django_user_model):
    def make(username: str, group: str, *permissions: str):
        user = django_user_model.objects.create_user(username, password="a-long-password-1", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        for permission in permissions:
            user.user_permissions.add(Permission.objects.get(codename=permission))
        return user

    return make


@pytest.fixture
def auditor_client(client, staff_in):
    client.force_login(staff_in("audrey", roles.AUDITOR))
    return client


@pytest.fixture
def hr_client(client, staff_in):
    client.force_login(staff_in("hana", roles.HR))
    return client


# --- Attempts: the list -------------------------------------------------------------------------


def test_the_attempts_list_filters_by_decision_mode_and_kiosk(auditor_client):
    door = Kiosk.objects.create(name="Front door", token_hash="a" * 64)
    bay = Kiosk.objects.create(name="Loading bay", token_hash="b" * 64)
    verified_at_the_door = attempt(VERIFIED, kiosk=door)
    stranger_at_the_bay = attempt(NOT_RECOGNISED, kiosk=bay)
    personal = attempt(VERIFIED, mode=VerificationAttempt.Mode.PERSONAL)

    assert set(listed(auditor_client, ATTEMPTS, {"decision__exact": "verified"})) == {verified_at_the_door, personal}
    assert listed(auditor_client, ATTEMPTS, {"mode__exact": "personal"}) == [personal]
    assert listed(auditor_client, ATTEMPTS, {"kiosk__id__exact": bay.pk}) == [stranger_at_the_bay]


def test_the_attempts_list_goes_by_date(auditor_client):
    june = attempt(created_at=datetime(2024, 6, 3, 12, tzinfo=dt_timezone.utc))
    attempt(created_at=datetime(2024, 7, 1, 12, tzinfo=dt_timezone.utc))

    assert listed(auditor_client, ATTEMPTS, {"created_at__year": 2024, "created_at__month": 6}) == [june]


def test_the_attempts_list_finds_an_employees_attempts_by_their_exact_number(auditor_client):
    ann, ann10 = employee("E1", "Ann"), employee("E10", "Annette")
    matched = attempt(VERIFIED, matched_employee=ann, nearest_employee=ann)
    claimed = attempt(NOT_RECOGNISED, mode=VerificationAttempt.Mode.PERSONAL, claimed_employee=ann)
    attempt(VERIFIED, matched_employee=ann10, nearest_employee=ann10)

    assert set(listed(auditor_client, ATTEMPTS, {"q": "e1"})) == {matched, claimed}


def test_the_attempts_list_shows_who_and_how_near(auditor_client):
    ann = employee("E1", "Ann")
    attempt(VERIFIED, matched_employee=ann, distance=0.312, threshold=0.48, http_status=200, latency_ms=64.0)

    text = text_of(auditor_client.get(ATTEMPTS))

    assert "Ann (E1)" in text
    assert "0.312 / 0.480" in text


# --- Attempts: one attempt ----------------------------------------------------------------------


def test_an_attempt_shows_every_figure_of_the_decision(auditor_client):
    ann = employee("E1", "Ann")
    door = Kiosk.objects.create(name="Front door", token_hash="a" * 64)
    made = attempt(
        NOT_RECOGNISED, kiosk=door, client_address="10.0.0.7", nearest_employee=ann, distance=0.512,
        second_distance=0.530, threshold=0.48, margin=0.03, gallery_size=2, reason="Not recognised. Ask HR.",
        latency_ms=71.5, quality=[{"faces": 1, "face_size": 143, "sharpness": 88.1}], frames=2,
    )

    text = text_of(auditor_client.get(attempt_page(made)))

    for shown in ("not recognised", "Not recognised. Ask HR.", "Front door", "10.0.0.7", "Ann (E1)", "0.512",
                  "0.53", "0.48", "0.03", "71.5", '"face_size": 143'):
        assert shown in text


def test_an_attempt_about_an_employee_since_deleted_says_so(auditor_client):
    gone = employee("E9", "Gone")
    made = attempt(VERIFIED, matched_employee=gone)
    number = gone.pk
    Employee.objects.filter(pk=number).delete()

    response = auditor_client.get(attempt_page(made))

    assert response.status_code == 200
    assert f"#{number} (deleted)" in text_of(response)


def test_the_verified_attempt_links_to_its_attendance_event(auditor_client):
    event = check(employee("E1", "Ann"), "in", timezone.now())

    response = auditor_client.get(attempt_page(event.attempt))

    assert f'href="{event_page(event)}"' in response.content.decode()


def test_the_captured_frames_are_shown_to_those_allowed_to_see_them(client, staff_in):
    client.force_login(staff_in("audrey", roles.AUDITOR, "view_attemptcapture_image"))
    made = attempt(frames=2)

    content = client.get(attempt_page(made)).content.decode()

    assert f'src="{frame_url(made, 0)}"' in content
    assert f'src="{frame_url(made, 1)}"' in content
    frame = client.get(frame_url(made, 1))
    assert frame.status_code == 200
    assert frame["Content-Type"] == "image/jpeg"
    assert frame.content == JPEG + b"\x01"
    assert {"private", "no-store"} <= {part.strip() for part in frame["Cache-Control"].split(",")}


def test_the_captured_frames_are_hidden_from_auditors_without_the_permission(auditor_client):
    made = attempt(frames=2)

    response = auditor_client.get(attempt_page(made))

    assert frame_url(made, 0) not in response.content.decode()
    assert "2 frames kept. Seeing them needs the permission" in text_of(response)
    assert auditor_client.get(frame_url(made, 0)).status_code == 403


def test_a_frame_is_for_staff_only(client, django_user_model):
    made = attempt(frames=1)
    client.force_login(django_user_model.objects.create_user("ann", password="a-long-password-1"))

    response = client.get(frame_url(made, 0))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_a_purged_frame_is_gone_and_the_attempt_says_why(admin_client, settings):
    settings.FRID_CAPTURE_RETENTION_DAYS = 30
    made = attempt(frames=1, created_at=timezone.now() - timedelta(days=31))
    AttemptCapture.objects.expired().delete()

    assert admin_client.get(frame_url(made, 0)).status_code == 404
    assert "Deleted: captured frames are kept for 30 days." in text_of(admin_client.get(attempt_page(made)))


# --- Attendance events --------------------------------------------------------------------------


def test_the_events_list_filters_by_direction_kiosk_and_date(auditor_client):
    ann = employee("E1", "Ann")
    door = Kiosk.objects.create(name="Front door", token_hash="a" * 64)
    morning = check(ann, "in", datetime(2024, 6, 3, 7, tzinfo=dt_timezone.utc), kiosk=door)
    evening = check(ann, "out", datetime(2024, 6, 3, 16, tzinfo=dt_timezone.utc))
    next_day = check(ann, "in", datetime(2024, 6, 4, 7, tzinfo=dt_timezone.utc))

    assert listed(auditor_client, EVENTS, {"direction__exact": "out"}) == [evening]
    assert listed(auditor_client, EVENTS, {"kiosk__id__exact": door.pk}) == [morning]
    june_4 = {"occurred_at__year": 2024, "occurred_at__month": 6, "occurred_at__day": 4}
    assert listed(auditor_client, EVENTS, june_4) == [next_day]


def test_an_auditor_reads_events_but_cannot_change_them(auditor_client):
    event = check(employee("E1", "Ann"), "in", timezone.now())

    page = auditor_client.get(event_page(event))
    response = auditor_client.post(event_page(event), {"direction": "out"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.direction == "in"


def test_hr_corrects_the_direction_of_an_event_and_nothing_else(hr_client):
    ann, bob = employee("E1", "Ann"), employee("E2", "Bob")
    event = check(ann, "in", datetime(2024, 6, 3, 16, tzinfo=dt_timezone.utc))

    response = hr_client.post(
        event_page(event), {"direction": "out", "employee": bob.pk, "occurred_at": "2024-01-01 00:00:00"}
    )

    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.direction, event.employee, event.occurred_at) == (
        "out", ann, datetime(2024, 6, 3, 16, tzinfo=dt_timezone.utc)
    )


def test_nobody_adds_an_event_by_hand(admin_client, hr_client):
    assert admin_client.get(reverse("admin:identity_attendanceevent_add")).status_code == 403
    assert hr_client.get(reverse("admin:identity_attendanceevent_add")).status_code == 403


def test_an_employee_with_events_can_still_be_deleted_in_the_admin(admin_client):
    # Erasure: the employee's events go with them; the attempts stay (they name the employee by id).
    ann = employee("E1", "Ann")
    event = check(ann, "in", timezone.now())

    response = admin_client.post(reverse("admin:identity_employee_delete", args=[ann.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Employee.objects.filter(pk=ann.pk).exists()
    assert not AttendanceEvent.objects.filter(pk=event.pk).exists()
    assert VerificationAttempt.objects.filter(pk=event.attempt_id).exists()
