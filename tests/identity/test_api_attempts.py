"""GET /api/v1/attempts/: the audit, read-only, for HR and auditors, newest first, filtered and
paginated. Nobody can change or delete an attempt through the API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as utc

import pytest
from django.urls import reverse

from identity.models import Employee, Kiosk, VerificationAttempt
from tests.identity.api_actors import actors  # noqa: F401 (a fixture)

URL = reverse("api-attempts")
Decision = VerificationAttempt.Decision
Mode = VerificationAttempt.Mode


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=utc.utc)


@pytest.fixture
def attempts(actors) -> dict[str, VerificationAttempt]:
    other_kiosk = Kiosk(name="Back door")
    other_kiosk.new_token()
    other_kiosk.save()
    return {
        "verified": VerificationAttempt.objects.create(
            created_at=at(2), mode=Mode.KIOSK, kiosk=actors.kiosk, decision=Decision.VERIFIED,
            matched_employee=actors.employee, nearest_employee=actors.employee, distance=0.31, threshold=0.5,
            direction="in", frames=3, client_address="10.0.0.7",
        ),
        "stranger": VerificationAttempt.objects.create(
            created_at=at(3), mode=Mode.KIOSK, kiosk=other_kiosk, decision=Decision.NOT_RECOGNISED,
            nearest_employee=actors.colleague, distance=0.71, threshold=0.5, frames=3,
        ),
        "refused": VerificationAttempt.objects.create(
            created_at=at(4), mode=Mode.PERSONAL, user=actors.employee_user, claimed_employee=actors.employee,
            decision=Decision.REFUSED, reason="No frames were sent.", http_status=400,
        ),
    }


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [attempt["id"] for attempt in response.json()["results"]]


@pytest.mark.parametrize("role", ["hr", "auditor"])
def test_hr_and_auditors_read_every_attempt_newest_first(actors, attempts, role):
    response = actors.client(role).get(URL)
    assert ids(response) == [attempts[name].pk for name in ("refused", "stranger", "verified")]
    assert response.json()["count"] == 3


def test_an_attempt_says_who_what_and_why(actors, attempts):
    refused, _, verified = actors.client("auditor").get(URL).json()["results"]
    assert verified["kiosk"] == actors.kiosk.pk
    assert verified["kiosk_name"] == "Main entrance"
    assert (verified["matched_employee"], verified["nearest_employee"], verified["claimed_employee"]) == ("E1", "E1", None)
    assert (verified["decision"], verified["distance"], verified["threshold"], verified["direction"]) == (
        "verified", 0.31, 0.5, "in"
    )
    assert (verified["frames"], verified["client_address"], verified["http_status"]) == (3, "10.0.0.7", 200)
    assert (refused["user"], refused["claimed_employee"], refused["mode"]) == ("erin", "E1", "personal")
    assert (refused["reason"], refused["http_status"]) == ("No frames were sent.", 400)


def test_an_attempt_outlives_the_employee_it_was_about(actors, attempts):
    Employee.objects.filter(pk=actors.colleague.pk).delete()
    stranger = next(a for a in actors.client("hr").get(URL).json()["results"] if a["id"] == attempts["stranger"].pk)
    assert stranger["nearest_employee"] is None


def test_it_filters_by_decision_mode_kiosk_and_dates(actors, attempts):
    client = actors.client("hr")
    assert ids(client.get(URL, {"decision": "not_recognised"})) == [attempts["stranger"].pk]
    assert ids(client.get(URL, {"mode": "personal"})) == [attempts["refused"].pk]
    assert ids(client.get(URL, {"kiosk": actors.kiosk.pk})) == [attempts["verified"].pk]
    assert ids(client.get(URL, {"from": "2026-03-03"})) == [attempts["refused"].pk, attempts["stranger"].pk]
    assert ids(client.get(URL, {"to": "2026-03-03"})) == [attempts["stranger"].pk, attempts["verified"].pk]
    assert ids(client.get(URL, {"from": "2026-03-03", "to": "2026-03-03"})) == [attempts["stranger"].pk]


def test_it_pages_the_attempts(actors, attempts):
    page = actors.client("hr").get(URL, {"limit": 2}).json()
    assert page["count"] == 3
    assert len(page["results"]) == 2
    assert "offset=2" in page["next"]


@pytest.mark.parametrize("query, field, message", [
    ({"from": "03/03/2026"}, "from", "from must be a date written as YYYY-MM-DD, e.g. 2026-03-02."),
    ({"to": "yesterday"}, "to", "to must be a date written as YYYY-MM-DD, e.g. 2026-03-02."),
    ({"decision": "maybe"}, "decision", '"maybe" is not a valid choice.'),
    ({"kiosk": "main"}, "kiosk", "A valid integer is required."),
])
def test_it_refuses_a_bad_filter_in_plain_words(actors, attempts, query, field, message):
    response = actors.client("hr").get(URL, query)
    assert response.status_code == 400
    assert response.json() == {field: [message]}


def test_it_refuses_a_period_that_ends_before_it_starts(actors, attempts):
    response = actors.client("hr").get(URL, {"from": "2026-03-04", "to": "2026-03-02"})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["from (2026-03-04) is after to (2026-03-02): swap the two dates."]}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_attempts_cannot_be_changed_through_the_api(actors, attempts, method):
    response = getattr(actors.client("hr"), method)(URL, {"decision": "verified"}, format="json")
    assert response.status_code == 405
    assert VerificationAttempt.objects.count() == 3


@pytest.mark.parametrize("role, status", [("employee", 403), ("kiosk", 403), ("anonymous", 401)])
def test_only_hr_and_auditors_read_attempts(actors, attempts, role, status):
    response = actors.client(role).get(URL)
    assert response.status_code == status
    assert "results" not in response.json()


def test_a_day_is_a_local_day(actors, settings):
    # 23:30 UTC on 2 March is 00:30 on 3 March in Paris.
    settings.TIME_ZONE = "Europe/Paris"
    late = VerificationAttempt.objects.create(
        created_at=at(2, 23) + timedelta(minutes=30), mode=Mode.KIOSK, decision=Decision.NOT_RECOGNISED
    )
    client = actors.client("hr")
    assert ids(client.get(URL, {"from": "2026-03-03", "to": "2026-03-03"})) == [late.pk]
    assert ids(client.get(URL, {"to": "2026-03-02"})) == []
