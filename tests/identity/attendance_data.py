"""Employees and their check-ins for the attendance tests, in Paris time: a zone away from UTC
(by two hours in summer), so that a local day and a UTC day differ."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from identity.models import AttendanceEvent, Employee, Kiosk, VerificationAttempt

ZONE_NAME = "Europe/Paris"
ZONE = ZoneInfo(ZONE_NAME)


def use_paris_time(settings) -> None:
    """Report in Paris time, with a workday that starts at 09:00 and 10 minutes' grace."""
    settings.TIME_ZONE = ZONE_NAME
    settings.FRID_TIME_ZONE = ZONE_NAME
    settings.FRID_WORKDAY_START = "09:00"
    settings.FRID_LATE_GRACE_MINUTES = 10


def local(day: date, clock: str) -> datetime:
    """A Paris wall-clock time, e.g. local(date(2024, 6, 3), "08:57")."""
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=ZONE)


def employee(number: str, name: str, department: str = "Operations", **fields) -> Employee:
    return Employee.objects.create(employee_number=number, name=name, department=department, **fields)


def check(person: Employee, direction: str, moment: datetime, kiosk: Kiosk | None = None) -> AttendanceEvent:
    """A verified attempt at ``moment`` and the event it became, as the verify flow records them."""
    attempt = VerificationAttempt.objects.create(
        mode=VerificationAttempt.Mode.KIOSK, decision=VerificationAttempt.Decision.VERIFIED,
        matched_employee=person, direction=direction, created_at=moment, kiosk=kiosk,
    )
    return AttendanceEvent.objects.create(
        employee=person, direction=direction, occurred_at=moment, attempt=attempt, kiosk=kiosk
    )


def day(person: Employee, on: date, *checks: str) -> None:
    """Checks of one day as "in 08:00", "out 12:00", ..."""
    for entry in checks:
        direction, clock = entry.split()
        check(person, direction, local(on, clock))
