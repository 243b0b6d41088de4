"""Attendance reports, the domain side: events of a period -> one row per employee per local day
(first in, last out, hours present, missing check-out, lateness) -> CSV and a presence chart.

Every test reports in Paris time (tests/identity/attendance_data.py): a workday starting at 09:00
with 10 minutes' grace.
"""

import csv
import io
import subprocess
import sys
from datetime import date

import pytest
from django.conf import settings
from PIL import Image

from identity import attendance
from identity.models import AttendanceEvent

from tests.identity.attendance_data import check, day, employee, local, use_paris_time

pytestmark = pytest.mark.django_db

MONDAY = date(2024, 6, 3)  # summer: Paris is UTC+2
TUESDAY = date(2024, 6, 4)
WEDNESDAY = date(2024, 6, 5)


@pytest.fixture(autouse=True)
def paris(settings):
    use_paris_time(settings)


def rows_of(start: date, end: date, **filters) -> list[attendance.DayRow]:
    return attendance.day_rows(AttendanceEvent.objects.for_report(start, end, **filters))


def one_day(*checks: str) -> attendance.DayRow:
    ann = employee("E1", "Ann")
    day(ann, MONDAY, *checks)
    [row] = rows_of(MONDAY, MONDAY)
    return row


# --- Which events a report takes --------------------------------------------------------------


def test_a_report_takes_events_by_their_local_day_not_their_utc_day():
    ann = employee("E1", "Ann")
    early_monday = check(ann, "in", local(MONDAY, "00:30"))  # Sunday 22:30 in UTC
    late_tuesday = check(ann, "out", local(TUESDAY, "23:30"))
    check(ann, "in", local(WEDNESDAY, "00:30"))  # still Tuesday in UTC
    check(ann, "out", local(date(2024, 6, 2), "23:30"))

    events = AttendanceEvent.objects.for_report(MONDAY, TUESDAY)

    assert set(events) == {early_monday, late_tuesday}


def test_a_report_reads_the_employees_with_the_events_in_one_query(django_assert_num_queries):
    for number in range(3):
        check(employee(f"E{number}", f"Person {number}"), "in", local(MONDAY, "08:00"))

    with django_assert_num_queries(1):
        names = [event.employee.name for event in AttendanceEvent.objects.for_report(MONDAY, MONDAY)]

    assert sorted(names) == ["Person 0", "Person 1", "Person 2"]


def test_a_report_filters_by_the_exact_department():
    day(employee("E1", "Ann", "Operations"), MONDAY, "in 08:00")
    day(employee("E2", "Bob", "Operations research"), MONDAY, "in 08:00")
    day(employee("E3", "Cy", "Sales"), MONDAY, "in 08:00")

    assert [row.employee.name for row in rows_of(MONDAY, MONDAY, department="Operations")] == ["Ann"]


def test_a_report_filters_by_employee_number():
    day(employee("E1", "Ann"), MONDAY, "in 08:00")
    day(employee("E10", "Bob"), MONDAY, "in 08:00")

    assert [row.employee.name for row in rows_of(MONDAY, MONDAY, employee_number="E1")] == ["Ann"]


# --- A day --------------------------------------------------------------------------------------


def test_a_day_has_its_first_in_last_out_and_the_hours_of_every_interval():
    row = one_day("in 08:00", "out 12:00", "in 13:00", "out 17:30")

    assert row.day == MONDAY
    assert row.first_in == local(MONDAY, "08:00")
    assert row.last_out == local(MONDAY, "17:30")
    assert row.first_in.utcoffset() == local(MONDAY, "08:00").utcoffset()  # shown in local time
    assert row.hours_present == 8.5
    assert row.missing_check_out is False
    assert row.late is False
    assert row.minutes_late == 0


def test_hours_present_are_rounded_to_two_decimals():
    assert one_day("in 08:00", "out 08:20").hours_present == 0.33


def test_a_day_ending_with_a_check_in_is_missing_its_check_out_and_counts_no_open_time():
    row = one_day("in 08:00", "out 12:00", "in 13:00")

    assert row.missing_check_out is True
    assert row.last_out == local(MONDAY, "12:00")
    assert row.hours_present == 4.0


def test_a_second_check_in_while_in_does_not_restart_the_time_present():
    assert one_day("in 08:00", "in 09:00", "out 12:00").hours_present == 4.0


def test_a_day_with_only_a_check_out_has_no_first_in_no_hours_and_is_not_late():
    row = one_day("out 17:00")

    assert row.first_in is None
    assert row.last_out == local(MONDAY, "17:00")
    assert row.hours_present == 0.0
    assert (row.late, row.minutes_late, row.missing_check_out) == (False, 0, False)


@pytest.mark.parametrize(
    "arrival, late, minutes_late",
    [
        ("08:55", False, 0),
        ("09:10", False, 0),  # the last minute of the grace period
        ("09:10:30", True, 10),  # counted from the workday start, not from the end of the grace
        ("09:25", True, 25),
        ("11:00", True, 120),
    ],
)
def test_a_first_check_in_after_the_grace_period_is_late_by_the_minutes_since_the_workday_start(
    arrival, late, minutes_late
):
    row = one_day(f"in {arrival}", "out 17:00")

    assert (row.late, row.minutes_late) == (late, minutes_late)


def test_only_the_first_check_in_of_the_day_decides_lateness():
    row = one_day("in 08:50", "out 12:00", "in 13:30")

    assert (row.late, row.minutes_late) == (False, 0)


def test_lateness_follows_the_configured_workday_start_and_grace(settings):
    settings.FRID_WORKDAY_START = "08:30"
    settings.FRID_LATE_GRACE_MINUTES = 0

    row = one_day("in 08:31")

    assert (row.late, row.minutes_late) == (True, 1)


def test_hours_across_a_change_to_summer_time_are_the_hours_really_spent():
    # In Paris, 2024-03-31 02:00 became 03:00: 01:00 -> 04:00 on the clock is two hours.
    ann = employee("E1", "Ann")
    spring = date(2024, 3, 31)
    day(ann, spring, "in 01:00", "out 04:00")

    [row] = rows_of(spring, spring)

    assert row.hours_present == 2.0


def test_rows_are_one_per_employee_per_local_day_sorted_by_day_then_name():
    zoe, adam = employee("E1", "Zoe"), employee("E2", "Adam")
    day(zoe, MONDAY, "in 00:30", "out 08:00")  # 00:30 in Paris is still Sunday in UTC
    day(zoe, TUESDAY, "in 08:00", "out 16:00")
    day(adam, TUESDAY, "in 09:30", "out 17:00")
    day(adam, MONDAY, "in 08:00", "out 12:00", "in 13:00", "out 17:00")

    rows = rows_of(MONDAY, TUESDAY)

    assert [(row.day, row.employee.name) for row in rows] == [
        (MONDAY, "Adam"), (MONDAY, "Zoe"), (TUESDAY, "Adam"), (TUESDAY, "Zoe")
    ]
    assert [row.hours_present for row in rows] == [8.0, 7.5, 7.5, 8.0]


# --- Periods ------------------------------------------------------------------------------------


def test_the_default_period_is_the_last_seven_days_with_today():
    assert attendance.default_period(today=WEDNESDAY) == (date(2024, 5, 30), WEDNESDAY)


def test_a_period_that_ends_before_it_starts_is_refused_in_plain_words():
    with pytest.raises(ValueError, match="swap the two dates"):
        attendance.check_period(TUESDAY, MONDAY)


def test_a_period_longer_than_a_year_is_refused():
    attendance.check_period(date(2024, 1, 1), date(2024, 12, 31))  # 366 days: a leap year
    with pytest.raises(ValueError, match="at most 366 days"):
        attendance.check_period(date(2024, 1, 1), date(2025, 1, 1))


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_has_the_report_columns_with_local_times_and_empty_cells_for_missing_times():
    ann = employee("E1", "Ann", "Operations")
    day(ann, MONDAY, "in 09:25", "out 17:40")
    day(ann, TUESDAY, "in 08:00")

    lines = list(csv.reader(io.StringIO(attendance.rows_as_csv(rows_of(MONDAY, TUESDAY)))))

    assert lines == [
        ["employee_number", "name", "department", "date", "first_in", "last_out", "hours_present",
         "missing_check_out", "late", "minutes_late"],
        ["E1", "Ann", "Operations", "2024-06-03", "09:25", "17:40", "8.25", "false", "true", "25"],
        ["E1", "Ann", "Operations", "2024-06-04", "08:00", "", "0.00", "true", "false", "0"],
    ]


def test_the_csv_keeps_a_name_that_looks_like_a_formula_as_text():
    day(employee("E1", '=HYPERLINK("http://example.com")', "Sales"), MONDAY, "in 08:00")

    [_, line] = list(csv.reader(io.StringIO(attendance.rows_as_csv(rows_of(MONDAY, MONDAY)))))

    assert line[1] == '\'=HYPERLINK("http://example.com")'


def test_an_empty_report_is_a_csv_with_only_its_header():
    assert attendance.rows_as_csv([]).splitlines() == [",".join(attendance.CSV_COLUMNS)]


# --- Chart --------------------------------------------------------------------------------------


def test_the_chart_shows_the_people_present_and_the_late_arrivals_of_each_day():
    ann, bob = employee("E1", "Ann"), employee("E2", "Bob")
    day(ann, MONDAY, "in 08:00", "out 17:00")
    day(bob, MONDAY, "in 09:30", "out 17:00")
    day(ann, WEDNESDAY, "in 09:45")

    figure = attendance.presence_figure(rows_of(MONDAY, WEDNESDAY), MONDAY, WEDNESDAY)

    [axes] = figure.axes
    present, late = axes.containers
    assert [bar.get_height() for bar in present] == [2, 0, 1]
    assert [bar.get_height() for bar in late] == [1, 0, 1]
    assert axes.get_title() == "People present per day, 03 Jun 2024 to 05 Jun 2024"
    assert axes.get_ylabel() == "people"
    assert [label.get_text() for label in axes.get_xticklabels()] == ["Mon\n03 Jun", "Tue\n04 Jun", "Wed\n05 Jun"]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        "people present", "late arrivals (after 09:10)"
    ]


def test_a_long_period_keeps_the_day_labels_readable():
    figure = attendance.presence_figure([], date(2024, 1, 1), date(2024, 3, 31))

    assert len(figure.axes[0].get_xticklabels()) <= 14


def test_a_period_without_check_ins_gives_a_chart_that_says_so():
    png = attendance.presence_chart_png([], MONDAY, WEDNESDAY)

    figure = attendance.presence_figure([], MONDAY, WEDNESDAY)
    assert "No check-ins in this period" in [text.get_text() for text in figure.axes[0].texts]
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (1000, 400))


def test_the_report_code_loads_matplotlib_only_to_draw_a_chart():
    # Every web process imports the report pages; only a chart request should pay for matplotlib.
    script = (
        "import sys, django; django.setup(); import identity.attendance, identity.reports, frid_site.urls; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, check=True)
