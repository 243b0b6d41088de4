"""An employee's own attendance: /attendance/me/.

Who sees what: a user linked to an Employee (Employee.user) sees their own days and nobody
else's; a logged-in user linked to no employee (HR included) is told to ask HR; a visitor is sent
to log in.
"""

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from identity import roles

from tests.identity.attendance_data import ZONE_NAME, day, employee, use_paris_time

pytestmark = pytest.mark.django_db

MINE = reverse("my-attendance")
MONDAY = date(2024, 6, 3)
TUESDAY = date(2024, 6, 4)
PERIOD = {"from": "2024-06-03", "to": "2024-06-04"}


@pytest.fixture(autouse=True)
def paris(settings):
    use_paris_time(settings)


@pytest.fixture
def ann(django_user_model):
    """Ann, who logs in as "ann"; Bob, a colleague with days of his own."""
    person = employee("E1", "Ann", user=django_user_model.objects.create_user("ann", password="a-long-password-1"))
    day(person, MONDAY, "in 09:25", "out 17:31")
    day(person, TUESDAY, "in 08:57")
    day(employee("E2", "Bob"), MONDAY, "in 08:30", "out 17:00")
    return person


def text_of(response) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get(MINE)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


def test_an_employee_sees_their_own_days_and_nobody_elses(client, ann):
    client.force_login(ann.user)

    response = client.get(MINE, PERIOD)

    assert response.status_code == 200
    assert [(row.day, row.employee.name) for row in response.context["rows"]] == [(MONDAY, "Ann"), (TUESDAY, "Ann")]
    text = text_of(response)
    assert "Mon 2024-06-03 09:25 17:31 8.10 — 25 min late" in text
    assert "Tue 2024-06-04 08:57 — 0.00 missing —" in text
    assert "Bob" not in text
    assert "2 days present, 8.10 hours, 1 late arrival, 1 missing check-out." in text
    assert response["Cache-Control"] == "private, no-store"


def test_an_employee_cannot_see_a_colleague_through_the_query_string(client, ann):
    client.force_login(ann.user)

    response = client.get(MINE, {**PERIOD, "employee_number": "E2", "department": "Operations"})

    assert {row.employee.name for row in response.context["rows"]} == {"Ann"}


def test_times_are_shown_with_the_name_of_their_zone(client, ann):
    client.force_login(ann.user)

    assert f"Times are in {ZONE_NAME}" in text_of(client.get(MINE, PERIOD))


def test_it_shows_the_last_seven_days_until_today_by_default(client, ann):
    client.force_login(ann.user)
    today = timezone.localdate()

    response = client.get(MINE)

    assert (response.context["start"], response.context["end"]) == (today - timedelta(days=6), today)


def test_an_empty_period_says_where_to_check_in(client, ann):
    client.force_login(ann.user)

    response = client.get(MINE, {"from": "2024-07-01", "to": "2024-07-07"})

    assert "No check-ins between 2024-07-01 and 2024-07-07. Check in at your check-in page or at a kiosk." in (
        text_of(response)
    )


def test_a_bad_period_is_refused_with_what_to_do(client, ann):
    client.force_login(ann.user)

    response = client.get(MINE, {"from": "2024-06-04", "to": "2024-06-03"})

    assert response.status_code == 400
    assert "swap the two dates" in text_of(response)


@pytest.mark.parametrize("group", [None, roles.HR])
def test_an_account_linked_to_no_employee_is_told_to_ask_hr(client, django_user_model, ann, group):
    user = django_user_model.objects.create_user("someone", password="a-long-password-1")
    if group:
        user.groups.add(Group.objects.get(name=group))
    client.force_login(user)

    response = client.get(MINE, PERIOD)

    assert response.status_code == 403
    assert "Your account is not linked to an employee, so there is no attendance to show. Ask HR to link it." in (
        text_of(response)
    )
    assert "Ann" not in text_of(response)
