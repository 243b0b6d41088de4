"""GET /api/v1/attendance/ (days per employee, JSON or CSV) and
POST /api/v1/attendance/<event_id>/switch/ (the one-tap check-in/check-out switch).

Who sees what: HR and auditors see everyone's days, filtered as they ask; an employee sees only
their own days, whatever they ask; a kiosk and accounts not linked to an employee see none.
Who may switch: the kiosk that recorded the check, or the employee, within
FRID_REPEAT_CHECK_MINUTES of it; HR at any time; nobody else.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from identity.attendance import CSV_COLUMNS
from identity.models import AttendanceEvent, Kiosk
from tests.identity.api_actors import actors, event_of, token_client  # noqa: F401 (actors: a fixture)

URL = reverse("api-attendance")
DAY = date(2026, 3, 2)
PERIOD = {"from": "2026-03-02", "to": "2026-03-02"}


def at(clock: str, day: date = DAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=timezone.get_default_timezone())


@pytest.fixture
def days(actors, settings):
    """Erin (Operations) on time with a check-out; Colin (Sales) 20 minutes late, no check-out; in
    Paris time, so that local times differ from UTC."""
    settings.TIME_ZONE = settings.FRID_TIME_ZONE = "Europe/Paris"
    settings.FRID_WORKDAY_START = "09:00"
    settings.FRID_LATE_GRACE_MINUTES = 10
    event_of(actors.employee, "in", actors.kiosk, at("08:57"))
    event_of(actors.employee, "out", actors.kiosk, at("17:31"))
    event_of(actors.colleague, "in", actors.kiosk, at("09:20"))


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["employee_number"] for row in response.json()["results"]]


@pytest.mark.parametrize("role", ["hr", "auditor"])
def test_hr_and_auditors_see_everyones_days(actors, days, role):
    response = actors.client(role).get(URL, PERIOD)
    assert numbers(response) == ["E2", "E1"]  # by day, then name
    colin, erin = response.json()["results"]
    assert erin == {
        "employee_number": "E1", "name": "Erin Example", "department": "Operations", "date": "2026-03-02",
        "first_in": "2026-03-02T08:57:00+01:00", "last_out": "2026-03-02T17:31:00+01:00", "hours_present": 8.57,
        "missing_check_out": False, "late": False, "minutes_late": 0,
    }
    assert (colin["last_out"], colin["missing_check_out"], colin["late"], colin["minutes_late"]) == (None, True, True, 20)


def test_hr_filters_by_department_and_employee(actors, days):
    client = actors.client("hr")
    assert numbers(client.get(URL, {**PERIOD, "department": "Sales"})) == ["E2"]
    assert numbers(client.get(URL, {**PERIOD, "employee_number": "E1"})) == ["E1"]
    assert numbers(client.get(URL, {**PERIOD, "employee_number": "E1", "department": "Sales"})) == []


@pytest.mark.parametrize("asking", [{}, {"employee_number": "E2"}, {"department": "Sales"}])
def test_an_employee_sees_only_their_own_days_whatever_they_ask(actors, days, asking):
    assert numbers(actors.client("employee").get(URL, {**PERIOD, **asking})) == ["E1"]


def test_the_days_come_as_csv(actors, days):
    response = actors.client("hr").get(URL, {**PERIOD, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="attendance-2026-03-02-2026-03-02.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[0] for row in rows[1:]] == ["E2", "E1"]
    assert rows[2][4:7] == ["08:57", "17:31", "8.57"]


def test_an_employees_csv_holds_only_their_own_days(actors, days):
    response = actors.client("employee").get(URL, {**PERIOD, "format": "csv", "department": "Sales"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [row[0] for row in rows[1:]] == ["E1"]


def test_the_period_defaults_to_the_last_seven_days(actors):
    today = timezone.localdate()
    for days_ago, person in ((0, actors.employee), (6, actors.employee), (7, actors.colleague)):
        event_of(person, "in", when=at("12:00", today - timedelta(days=days_ago)))
    rows = actors.client("hr").get(URL).json()["results"]
    assert [(row["employee_number"], row["date"]) for row in rows] == [
        ("E1", (today - timedelta(days=6)).isoformat()), ("E1", today.isoformat())
    ]


def test_it_pages_the_days(actors, days):
    page = actors.client("hr").get(URL, {**PERIOD, "limit": 1}).json()
    assert (page["count"], len(page["results"])) == (2, 1)


@pytest.mark.parametrize("query, answer", [
    ({"from": "2 March"}, {"from": ["from must be a date written as YYYY-MM-DD, e.g. 2026-03-02."]}),
    ({"to": "2026-02-30"}, {"to": ["to must be a date written as YYYY-MM-DD, e.g. 2026-03-02."]}),
    ({"from": "2026-03-05", "to": "2026-03-01"},
     {"non_field_errors": ["from (2026-03-05) is after to (2026-03-01): swap the two dates."]}),
    ({"from": "2024-01-01", "to": "2026-03-01"},
     {"detail": "A report covers at most 366 days: choose a shorter period."}),
    ({"format": "xml"}, {"format": ['format must be "csv" or "json" (or left out for JSON).']}),
])
def test_it_refuses_a_bad_query_in_plain_words(actors, query, answer):
    response = actors.client("hr").get(URL, query)
    assert response.status_code == 400
    assert response.json() == answer


def test_an_account_not_linked_to_an_employee_sees_no_days(actors, days):
    stranger = User.objects.create_user("sam")
    response = token_client(Token.objects.create(user=stranger).key).get(URL, PERIOD)
    assert response.status_code == 403
    assert "not linked to an employee" in response.json()["detail"]


@pytest.mark.parametrize("role, status", [("kiosk", 403), ("anonymous", 401)])
def test_kiosks_and_nobody_see_no_days(actors, days, role, status):
    response = actors.client(role).get(URL, PERIOD)
    assert response.status_code == status
    assert "Erin" not in response.content.decode()


# --- The switch ---------------------------------------------------------------------------------


def switch(client, event: AttendanceEvent):
    return client.post(reverse("api-attendance-switch", args=[event.pk]))


@pytest.mark.parametrize("role", ["kiosk", "employee", "hr"])
def test_the_kiosk_the_employee_and_hr_switch_a_fresh_check(actors, role):
    event = event_of(actors.employee, "in", actors.kiosk)
    response = switch(actors.client(role), event)
    assert response.status_code == 200, response.content
    assert response.json() == {"event_id": event.pk, "direction": "out"}
    event.refresh_from_db()
    assert event.direction == "out"
    assert event.attempt.direction == "in"  # the audit keeps what was verified


def test_switching_again_switches_back(actors):
    event = event_of(actors.employee, "out", actors.kiosk)
    client = actors.client("kiosk")
    assert switch(client, event).json()["direction"] == "in"
    assert switch(client, event).json()["direction"] == "out"


def test_after_the_repeat_window_only_hr_may_switch(actors, settings):
    settings.FRID_REPEAT_CHECK_MINUTES = 5
    event = event_of(actors.employee, "in", actors.kiosk, timezone.now() - timedelta(minutes=6))
    for role in ("kiosk", "employee"):
        response = switch(actors.client(role), event)
        assert response.status_code == 403
        assert "within 5 minutes" in response.json()["detail"]
    assert switch(actors.client("hr"), event).status_code == 200


def test_nobody_else_may_switch(actors):
    event = event_of(actors.colleague, "in", actors.kiosk)
    other = Kiosk(name="Back door")
    other_token = other.new_token()
    other.save()
    assert switch(actors.client("employee"), event).status_code == 403  # not their check
    assert switch(token_client(other_token), event).status_code == 403  # not its check
    assert switch(actors.client("auditor"), event).status_code == 403
    assert switch(actors.client("anonymous"), event).status_code == 401
    Kiosk.objects.filter(pk=actors.kiosk.pk).update(is_active=False)
    assert switch(actors.client("kiosk"), event).status_code == 403
    event.refresh_from_db()
    assert event.direction == "in"


def test_switching_an_unknown_event_is_not_found(actors):
    assert actors.client("hr").post(reverse("api-attendance-switch", args=[999999])).status_code == 404
