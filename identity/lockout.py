"""Lockout: after too many failed attempts, one subject's checks are refused for a while.

A subject is a claimed employee number (personal check-in: the number as claimed, whether or not
anyone has it, so that a lockout says nothing of who is enrolled), an account, or a kiosk.
FRID_LOCKOUT_FAILURES failed attempts within FRID_LOCKOUT_WINDOW_MINUTES lock the subject out for
FRID_LOCKOUT_MINUTES after the last of them. Failures are read from the append-only audit
(``VerificationAttempt.objects.failures()`` says what counts, and why), so no counter is kept that
could drift from it or be reset by a restart. A check refused for a lockout is audited (decision
"locked_out") and is not a failure itself: knocking on goes on being refused, never extends the
lockout. HR lifts a lockout in the admin (identity.admin_lockouts): a LockoutLift records who and
when, and the subject's failures before it no longer count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from identity.models import LockoutLift, VerificationAttempt

Kind = LockoutLift.Subject


@dataclass(frozen=True)
class Subject:
    kind: str  # LockoutLift.Subject
    key: str  # the claimed employee number, the user's id or the kiosk's id

    def attempts(self) -> Q:
        """Which attempts are this subject's."""
        if self.kind == Kind.EMPLOYEE:
            return Q(mode=VerificationAttempt.Mode.PERSONAL, claimed_number=self.key)
        if self.kind == Kind.ACCOUNT:
            return Q(user_id=int(self.key))
        return Q(kiosk_id=int(self.key))


@dataclass(frozen=True)
class Lockout:
    subject: Subject
    failures: int  # the failed attempts that caused it
    since: datetime  # the first of them
    until: datetime


def subjects(*, kiosk_id: int | None = None, user_id: int | None = None, claimed_number: str = "") -> list[Subject]:
    """The subjects a check (or an attempt) is about: each may be locked out on its own."""
    found = []
    if claimed_number:
        found.append(Subject(Kind.EMPLOYEE, claimed_number))
    if user_id is not None:
        found.append(Subject(Kind.ACCOUNT, str(user_id)))
    if kiosk_id is not None:
        found.append(Subject(Kind.KIOSK, str(kiosk_id)))
    return found


def _window() -> timedelta:
    return timedelta(minutes=settings.FRID_LOCKOUT_WINDOW_MINUTES)


def _period() -> timedelta:
    return timedelta(minutes=settings.FRID_LOCKOUT_MINUTES)


def lockout_of(subject: Subject, now: datetime | None = None) -> Lockout | None:
    """The subject's lockout in force now, or None."""
    now = now or timezone.now()
    # A lockout in force began within the period, after failures within the window before that.
    since = now - _period() - _window()
    lifted = LockoutLift.objects.filter(subject=subject.kind, key=subject.key).aggregate(last=Max("lifted_at"))["last"]
    if lifted is not None:
        since = max(since, lifted)
    times = (
        VerificationAttempt.objects.failed_recently(since).filter(subject.attempts())
        .filter(created_at__lte=now).order_by("created_at").values_list("created_at", flat=True)
    )
    lockout = _last_lockout(subject, list(times))
    return lockout if lockout is not None and lockout.until > now else None


def _last_lockout(subject: Subject, times: list[datetime]) -> Lockout | None:
    # A lockout starts counting afresh: the failures that caused one never count towards the next.
    last = None
    run: list[datetime] = []
    for time in times:
        run = [earlier for earlier in run if time - earlier <= _window()] + [time]
        if len(run) >= settings.FRID_LOCKOUT_FAILURES:
            last = Lockout(subject, len(run), run[0], time + _period())
            run = []
    return last


def first_lockout(of: list[Subject], now: datetime | None = None) -> Lockout | None:
    """The first of these subjects' lockouts in force, or None: a check is refused while any of
    its subjects is locked out."""
    now = now or timezone.now()
    for subject in of:
        lockout = lockout_of(subject, now)
        if lockout is not None:
            return lockout
    return None


def current_lockouts(now: datetime | None = None) -> list[Lockout]:
    """Every lockout in force, the one ending last first (the admin's list)."""
    now = now or timezone.now()
    recent = VerificationAttempt.objects.failed_recently(now - _period() - _window())
    candidates = set()
    for kiosk_id, user_id, mode, number in recent.values_list("kiosk_id", "user_id", "mode", "claimed_number"):
        claimed = number if mode == VerificationAttempt.Mode.PERSONAL else ""
        candidates.update(subjects(kiosk_id=kiosk_id, user_id=user_id, claimed_number=claimed))
    lockouts = [lockout for lockout in (lockout_of(subject, now) for subject in candidates) if lockout]
    return sorted(lockouts, key=lambda lockout: (lockout.until, lockout.subject.kind, lockout.subject.key),
                  reverse=True)


def lift(subject: Subject, by, now: datetime | None = None) -> LockoutLift | None:
    """Lift the subject's lockout, recording who did it; None when none is in force (already
    over, or lifted by someone else meanwhile)."""
    now = now or timezone.now()
    lockout = lockout_of(subject, now)
    if lockout is None:
        return None
    return LockoutLift.objects.create(subject=subject.kind, key=subject.key, lifted_by=by, lifted_at=now,
                                      locked_until=lockout.until, failures=lockout.failures)
