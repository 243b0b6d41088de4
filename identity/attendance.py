"""Attendance: verified attempts become check-in and check-out events; events become days and reports.

Days are local days in FRID_TIME_ZONE (settings.TIME_ZONE).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
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
