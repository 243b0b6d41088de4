"""The attendance report: /attendance/, its chart (/attendance/chart.png) and CSV (/attendance/report.csv).

Who may see it: HR and auditors (identity.view_attendanceevent); an employee gets 403 (they have
/attendance/me/); a visitor is sent to log in.
"""

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from identity import attendance, roles
from identity.models import AttendanceEvent

from tests.identity.attendance_data import ZONE_NAME, day, employee, use_paris_time

pytestmark = pytest.mark.django_db

REPORT = reverse("attendance-report")
CSV = reverse("attendance-csv")
CHART = reverse("attendance-chart")
MONDAY = date(2024, 6, 3)
TUESDAY = date(2024, 6, 4)
PERIOD = {"from": "2024-06-03", "to": "2024-06-04"}


@pytest.fixture(autouse=True)
def paris(settings):
    use_paris_time(settings)


@pytest.fixture
def user_in(django_user_model):
    def make(username: str, group: str | None = None):
        user = django_user_model.objects.create_user(username, password="a-long-password-1")
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user

    return make


@pytest.fixture
def auditor_client(client, user_in):
    client.force_login(user_in("audrey", roles.AUDITOR))
    return client


@pytest.fixture
def week():
    """Ann (Operations) late on Monday and without a check-out on Tuesday; Bob (Sales) on time."""
    ann = employee("E1", "Ann", "Operations")
    bob = employee("E2", "Bob", "Sales")
    day(ann, MONDAY, "in 09:25", "out 17:31")
    day(ann, TUESDAY, "in 08:57")
    day(bob, MONDAY, "in 08:30", "out 12:00", "in 13:00", "out 17:00")
    return ann, bob


def text_of(response) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


def table_rows(response) -> list[tuple]:
    return [(row.day, row.employee.name) for row in response.context["rows"]]


# --- Who may see it -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [REPORT, CSV, CHART])
def test_a_visitor_is_sent_to_log_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url", [REPORT, CSV, CHART])
def test_it_refuses_an_employee_without_the_report_permission(client, user_in, url):
    user = user_in("ann")
    employee("E1", "Ann", user=user)
    client.force_login(user)

    assert client.get(url).status_code == 403


@pytest.mark.parametrize("group", [roles.HR, roles.AUDITOR])
def test_hr_and_auditors_see_everyones_days(client, user_in, week, group):
    client.force_login(user_in("someone", group))

    response = client.get(REPORT, PERIOD)

    assert response.status_code == 200
    assert table_rows(response) == [(MONDAY, "Ann"), (MONDAY, "Bob"), (TUESDAY, "Ann")]


# --- The page -----------------------------------------------------------------------------------


def test_it_shows_first_in_last_out_hours_lateness_and_missing_check_outs_in_local_time(auditor_client, week):
    response = auditor_client.get(REPORT, PERIOD)

    text = text_of(response)
    assert "Mon 2024-06-03 Ann E1 Operations 09:25 17:31 8.10 — 25 min late" in text
    assert "Mon 2024-06-03 Bob E2 Sales 08:30 17:00 7.50 — —" in text
    assert "Tue 2024-06-04 Ann E1 Operations 08:57 — 0.00 missing —" in text
    assert f"Times are in {ZONE_NAME}" in text
    assert "after 09:10 is late" in text
    assert "2 employees, 3 days present, 1 late arrival, 1 missing check-out." in text
    assert response["Cache-Control"] == "private, no-store"


def test_it_shows_the_last_seven_days_until_today_by_default(auditor_client):
    today = timezone.localdate()

    response = auditor_client.get(REPORT)

    assert (response.context["start"], response.context["end"]) == (today - timedelta(days=6), today)
    content = response.content.decode()
    assert f'name="from" value="{today - timedelta(days=6):%Y-%m-%d}"' in content
    assert f'name="to" value="{today:%Y-%m-%d}"' in content


def test_it_filters_by_department_from_a_list_of_the_departments(auditor_client, week):
    response = auditor_client.get(REPORT, {**PERIOD, "department": "Sales"})

    assert table_rows(response) == [(MONDAY, "Bob")]
    options = re.findall(r'<option value="([^"]*)"', response.content.decode())
    assert options == ["", "Operations", "Sales"]


def test_it_filters_by_employee_number(auditor_client, week):
    response = auditor_client.get(REPORT, {**PERIOD, "employee_number": " E1 "})

    assert table_rows(response) == [(MONDAY, "Ann"), (TUESDAY, "Ann")]


def test_the_chart_and_the_csv_links_carry_the_same_filters(auditor_client, week):
    response = auditor_client.get(REPORT, {**PERIOD, "department": "Sales"})

    query = "from=2024-06-03&amp;to=2024-06-04&amp;department=Sales"
    content = response.content.decode()
    assert f'<img src="{CHART}?{query}"' in content
    assert f'href="{CSV}?{query}"' in content


def test_an_empty_period_says_where_check_ins_come_from(auditor_client, week):
    response = auditor_client.get(REPORT, {"from": "2024-07-01", "to": "2024-07-07"})

    assert response.context["rows"] == []
    assert (
        "No check-ins between 2024-07-01 and 2024-07-07. Kiosks are registered in the admin; "
        "employees check in at /kiosk/." in text_of(response)
    )
    assert "chart.png" not in response.content.decode()


def test_an_empty_filtered_report_offers_to_show_everyone(auditor_client, week):
    response = auditor_client.get(REPORT, {**PERIOD, "employee_number": "E404"})

    assert "Only the employee number E404 is shown: show everyone." in text_of(response)


def test_a_period_that_ends_before_it_starts_is_refused_with_what_to_do(auditor_client):
    response = auditor_client.get(REPORT, {"from": "2024-06-04", "to": "2024-06-03"})

    assert response.status_code == 400
    assert "The period starts (2024-06-04) after it ends (2024-06-03): swap the two dates." in text_of(response)


def test_an_unknown_department_is_refused(auditor_client, week):
    response = auditor_client.get(REPORT, {**PERIOD, "department": "Nowhere"})

    assert response.status_code == 400
    assert "Select a valid choice." in text_of(response)


# --- The CSV and the chart ----------------------------------------------------------------------


def test_the_csv_is_a_download_of_the_filtered_report(auditor_client, week):
    response = auditor_client.get(CSV, {**PERIOD, "department": "Operations"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="attendance-2024-06-03-to-2024-06-04.csv"'
    assert response["Cache-Control"] == "private, no-store"
    lines = response.content.decode().splitlines()
    assert lines[0] == ",".join(attendance.CSV_COLUMNS)
    assert lines[1:] == [
        "E1,Ann,Operations,2024-06-03,09:25,17:31,8.10,false,true,25",
        "E1,Ann,Operations,2024-06-04,08:57,,0.00,true,false,0",
    ]


def test_the_chart_is_a_png_of_the_filtered_report(auditor_client, week):
    response = auditor_client.get(CHART, {**PERIOD, "department": "Sales"})

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    sales = attendance.day_rows(AttendanceEvent.objects.for_report(MONDAY, TUESDAY, department="Sales"))
    everyone = attendance.day_rows(AttendanceEvent.objects.for_report(MONDAY, TUESDAY))
    assert response.content == attendance.presence_chart_png(sales, MONDAY, TUESDAY)
    assert response.content != attendance.presence_chart_png(everyone, MONDAY, TUESDAY)


@pytest.mark.parametrize("url", [CSV, CHART])
def test_a_bad_period_is_refused_in_plain_words(auditor_client, url):
    response = auditor_client.get(url, {"from": "2020-01-01", "to": "2024-01-01"})

    assert response.status_code == 400
    assert response.content.decode() == "A report covers at most 366 days: choose a shorter period."
