"""Attendance: verified attempts become check-in and check-out events; events become days and reports.

Days are local days in FRID_TIME_ZONE (settings.TIME_ZONE). A day of one employee is read from
their events of that day in time order:
- first in / last out: the first check-in and the last check-out;
- hours present: the sum of check-in -> check-out intervals (a second check-in while already in
  changes nothing; a check-out with no check-in before it counts no time, its arrival is unknown);
- missing check-out: the day's last event is a check-in;
- late: the first check-in is after FRID_WORKDAY_START + FRID_LATE_GRACE_MINUTES; the minutes late
  are counted from the workday start (the grace period forgives, it does not move the start).
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from identity.models import AttendanceEvent, Employee, VerificationAttempt

IN = VerificationAttempt.Direction.IN
OUT = VerificationAttempt.Direction.OUT


def local_day_start(moment=None):
    """The start of the local day (FRID_TIME_ZONE) that ``moment`` (default: now) falls in."""
    local = timezone.localtime(moment or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def usual_direction(employee: Employee, moment=None) -> str:
    """Check-out if the employee's last event today was a check-in, else check-in; but the same
    direction again right after an event (someone checking twice means the same thing twice)."""
    moment = moment or timezone.now()
    last = (
        AttendanceEvent.objects.filter(employee=employee, occurred_at__gte=local_day_start(moment))
        .order_by("-occurred_at")
        .first()
    )
    if last is None:
        return IN
    if moment - last.occurred_at < timedelta(minutes=settings.FRID_REPEAT_CHECK_MINUTES):
        return last.direction
    return OUT if last.direction == IN else IN


def record_event(employee: Employee, direction: str, attempt: VerificationAttempt) -> AttendanceEvent | None:
    """The event for a verified attempt, or None when the same check (employee and direction) was
    already recorded within FRID_REPEAT_CHECK_MINUTES: the attempt stays, the event is not doubled."""
    window = timedelta(minutes=settings.FRID_REPEAT_CHECK_MINUTES)
    repeated = AttendanceEvent.objects.filter(
        employee=employee, direction=direction, occurred_at__gte=attempt.created_at - window
    ).exists()
    if repeated:
        return None
    return AttendanceEvent.objects.create(
        employee=employee, direction=direction, occurred_at=attempt.created_at, attempt=attempt, kiosk=attempt.kiosk
    )


# --- Reports ------------------------------------------------------------------------------------

DEFAULT_REPORT_DAYS = 7
# A report covers at most a year: beyond that neither the chart nor the table stays readable.
MAX_REPORT_DAYS = 366
CSV_COLUMNS = (
    "employee_number", "name", "department", "date", "first_in", "last_out",
    "hours_present", "missing_check_out", "late", "minutes_late",
)
NO_CHECK_INS = "No check-ins in this period"


@dataclass(frozen=True)
class DayRow:
    """One employee's day: times are local (FRID_TIME_ZONE), None when there was no such event."""

    employee: Employee
    day: date
    first_in: datetime | None
    last_out: datetime | None
    hours_present: float
    missing_check_out: bool
    late: bool
    minutes_late: int


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last DEFAULT_REPORT_DAYS local days, today included."""
    today = today or timezone.localdate(timezone=timezone.get_default_timezone())
    return today - timedelta(days=DEFAULT_REPORT_DAYS - 1), today


def check_period(start: date, end: date) -> None:
    """Raise ValueError, in plain words, for a period a report cannot cover."""
    if start > end:
        raise ValueError(f"The period starts ({start}) after it ends ({end}): swap the two dates.")
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        raise ValueError(f"A report covers at most {MAX_REPORT_DAYS} days: choose a shorter period.")


def report_departments() -> list[str]:
    """The departments employees belong to, for a report's department filter."""
    names = Employee.objects.exclude(department="").values_list("department", flat=True)
    return sorted(set(names))


def report_rows(start: date, end: date, *, department: str = "", employee_number: str = "") -> list[DayRow]:
    """The days of the period, per employee, optionally of one department or one employee."""
    events = AttendanceEvent.objects.for_report(start, end, department=department, employee_number=employee_number)
    return day_rows(events)


def workday_start() -> time:
    try:
        return time.fromisoformat(settings.FRID_WORKDAY_START)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"FRID_WORKDAY_START must be a time like 09:00, not {settings.FRID_WORKDAY_START!r}."
        ) from error


def late_after() -> time:
    """The local time after which a first check-in is late (workday start + grace period)."""
    start = datetime.combine(date.min, workday_start())
    return (start + timedelta(minutes=settings.FRID_LATE_GRACE_MINUTES)).time()


def day_rows(events) -> list[DayRow]:
    """One row per employee per local day, sorted by day, then employee name."""
    zone = timezone.get_default_timezone()
    days: dict[tuple[int, date], list[AttendanceEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda event: event.occurred_at):
        days[(event.employee_id, timezone.localtime(event.occurred_at, zone).date())].append(event)
    rows = [_day_row(day, day_events, zone) for (_, day), day_events in days.items()]
    return sorted(rows, key=lambda row: (row.day, row.employee.name, row.employee.employee_number))


def _day_row(day: date, events: list[AttendanceEvent], zone) -> DayRow:
    first_in = next((event.occurred_at for event in events if event.direction == IN), None)
    last_out = next((event.occurred_at for event in reversed(events) if event.direction == OUT), None)
    first_in = timezone.localtime(first_in, zone) if first_in else None
    minutes_late = _minutes_late(first_in)
    return DayRow(
        employee=events[0].employee,
        day=day,
        first_in=first_in,
        last_out=timezone.localtime(last_out, zone) if last_out else None,
        hours_present=_hours_present(events),
        missing_check_out=events[-1].direction == IN,
        late=minutes_late is not None,
        minutes_late=minutes_late or 0,
    )


def _hours_present(events: list[AttendanceEvent]) -> float:
    present = timedelta()
    since = None
    for event in events:
        if event.direction == IN:
            since = since or event.occurred_at
        elif since is not None:
            # Aware UTC times: a change to or from summer time in between is counted right.
            present += event.occurred_at - since
            since = None
    return round(present.total_seconds() / 3600, 2)


def _minutes_late(first_in: datetime | None) -> int | None:
    """Minutes after the workday start when the first check-in is late, else None."""
    if first_in is None:
        return None
    start = datetime.combine(first_in.date(), workday_start(), tzinfo=first_in.tzinfo)
    if first_in <= start + timedelta(minutes=settings.FRID_LATE_GRACE_MINUTES):
        return None
    return int((first_in - start) // timedelta(minutes=1))


def rows_as_csv(rows: list[DayRow]) -> str:
    """The rows as CSV (CSV_COLUMNS): local times as HH:MM, empty when there was none."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        employee = row.employee
        writer.writerow([
            _cell(employee.employee_number),
            _cell(employee.name),
            _cell(employee.department),
            row.day.isoformat(),
            _clock(row.first_in),
            _clock(row.last_out),
            f"{row.hours_present:.2f}",
            _yes_no(row.missing_check_out),
            _yes_no(row.late),
            row.minutes_late,
        ])
    return buffer.getvalue()


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M") if moment else ""


def _yes_no(value: bool) -> str:
    return "true" if value else "false"


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a name
    # typed as "=HYPERLINK(...)" must stay text when HR opens the export.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def presence_chart_png(rows: list[DayRow], start: date, end: date) -> bytes:
    """A bar chart (PNG) of the people present each day of the period, and of late arrivals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = presence_figure(rows, start, end)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def presence_figure(rows: list[DayRow], start: date, end: date):
    """The chart of presence_chart_png, as a matplotlib Figure."""
    # Imported here: only a chart request pays for loading matplotlib, never the other pages.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    present = Counter(row.day for row in rows)
    late = Counter(row.day for row in rows if row.late)
    positions = range(len(days))

    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    width = 0.4
    axes.bar([x - width / 2 for x in positions], [present[day] for day in days], width,
             label="people present", color="#1f4e79")
    axes.bar([x + width / 2 for x in positions], [late[day] for day in days], width,
             label=f"late arrivals (after {late_after():%H:%M})", color="#d9822b")
    axes.set_title(f"People present per day, {start:%d %b %Y} to {end:%d %b %Y}")
    axes.set_ylabel("people")
    axes.set_xlabel(f"day ({settings.TIME_ZONE})")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max([1, *present.values()]) * 1.3)  # room above the bars for the legend
    step = max(1, -(-len(days) // 14))  # at most 14 labels, whatever the period's length
    axes.set_xticks(list(positions)[::step], [f"{day:%a}\n{day:%d %b}" for day in days[::step]])
    axes.set_xlim(-0.6, len(days) - 0.4)
    if rows:
        axes.legend(loc="upper right", ncols=2, frameon=False)
    else:
        axes.text(0.5, 0.5, NO_CHECK_INS, transform=axes.transAxes, ha="center", va="center",
                  fontsize=16, color="#5b6675")
    return figure


# --- Corrections --------------------------------------------------------------------------------


def switch_direction(event: AttendanceEvent) -> AttendanceEvent:
    """Turn a check-in into a check-out or back (the page's one-tap switch, for a check that went
    the wrong way). The attempt keeps the direction it was verified with: only the event changes.
    Who may switch, and until when, is identity.roles.may_switch_direction."""
    event.direction = OUT if event.direction == IN else IN
    event.save(update_fields=["direction"])
    return event
