"""HR's decision on a face flagged as a possible duplicate of another employee.

Enrollment flags a ready template whose face lies within the duplicate bound of another
employee's (``possible_duplicate_of``). Until HR decides, the template is held out of search
(``FaceTemplateQuerySet.searchable``): a person enrolled twice would otherwise be recognised as
whichever record is nearer. HR decides one of three things, and each is recorded:

- same person, two employee records: merge. The newer record's photos move onto the older one;
  its attendance events and the attempts naming it stay with it (attempts can never be changed),
  so a newer record with such a history is deactivated and kept, and one without any is deleted;
- different people: keep both. The photos become searchable again;
- delete the flagged photo (the caller records who, in the admin's log: the row is gone).

A decision covers every undecided flag between the same two employees: it is about the people,
not one photo.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from identity.models import AttendanceEvent, Employee, FaceTemplate, VerificationAttempt

Decision = FaceTemplate.DuplicateDecision


class AlreadyDecided(Exception):
    """The template is no longer held for a duplicate review (decided, deleted or re-checked)."""

    def __init__(self):
        super().__init__(
            "This photo is no longer waiting for a decision: someone decided already, or it was "
            "deleted. Look at the employee page again."
        )


@dataclass(frozen=True)
class History:
    """What an employee record holds besides its photos."""

    attendance_events: int
    attempts: int

    @property
    def is_empty(self) -> bool:
        return not (self.attendance_events or self.attempts)


@dataclass(frozen=True)
class MergePlan:
    """What "same person" would do: ``newer`` goes into ``older``."""

    older: Employee
    newer: Employee
    photos: int  # the newer record's templates, moved onto the older one
    history: History  # the newer record's, which stays with it

    @property
    def deletes_newer(self) -> bool:
        return self.history.is_empty


@dataclass(frozen=True)
class Merged:
    plan: MergePlan
    account_moved: bool  # the newer record's login now belongs to the older one


def held_for(employee: Employee) -> QuerySet:
    """Templates waiting for a duplicate decision that concern ``employee``: its own flagged ones,
    and other employees' flagged as resembling it."""
    return (
        FaceTemplate.objects.held_for_review()
        .filter(Q(employee=employee) | Q(possible_duplicate_of=employee))
        .select_related("employee", "possible_duplicate_of")
        .order_by("created_at", "pk")
    )


def history_of(employee: Employee) -> History:
    attempts = VerificationAttempt.objects.filter(
        Q(claimed_employee=employee) | Q(matched_employee=employee) | Q(nearest_employee=employee)
    )
    return History(AttendanceEvent.objects.filter(employee=employee).count(), attempts.count())


def merge_plan(template: FaceTemplate) -> MergePlan:
    """What merging the two records of a held template would do (nothing is changed)."""
    if not _is_held(template):
        raise AlreadyDecided()
    older, newer = sorted((template.employee, template.possible_duplicate_of), key=lambda e: (e.created_at, e.pk))
    return MergePlan(older, newer, newer.templates.count(), history_of(newer))


def keep_both(template: FaceTemplate, user) -> int:
    """Different people: record the decision on every flag between the two; they become searchable.
    Returns how many photos were decided."""
    with transaction.atomic():
        template = _lock_held(template.pk)
        return _decide_between(template.employee, template.possible_duplicate_of, Decision.DIFFERENT_PEOPLE, user)


def merge(template: FaceTemplate, user) -> Merged:
    """Same person, two records: the newer record's photos move onto the older one, the flags
    between them are decided, and the newer record is deleted, or deactivated when it has a history."""
    with transaction.atomic():
        plan = merge_plan(_lock_held(template.pk))
        older, newer = plan.older, plan.newer
        _decide_between(older, newer, Decision.SAME_PERSON, user)
        newer.templates.update(employee=older)
        account_moved = _take_over(older, newer)
        if plan.deletes_newer:
            newer.delete()
        else:
            newer.is_active = False
            newer.save(update_fields=["is_active"])
    return Merged(plan, account_moved)


def delete(template: FaceTemplate) -> None:
    """Delete a held template (its photo and face go with it)."""
    with transaction.atomic():
        _lock_held(template.pk).delete()


def _is_held(template: FaceTemplate) -> bool:
    return FaceTemplate.objects.held_for_review().filter(pk=template.pk).exists()


def _lock_held(pk: int) -> FaceTemplate:
    """The template, locked, if it still waits for a decision (two HR people may decide at once)."""
    template = (
        FaceTemplate.objects.held_for_review().select_for_update(of=("self",))
        .select_related("employee", "possible_duplicate_of").filter(pk=pk).first()
    )
    if template is None:
        raise AlreadyDecided()
    return template


def _decide_between(one: Employee, other: Employee, decision: str, user) -> int:
    between = Q(employee=one, possible_duplicate_of=other) | Q(employee=other, possible_duplicate_of=one)
    return FaceTemplate.objects.held_for_review().filter(between).update(
        duplicate_decision=decision, duplicate_decided_by=user, duplicate_decided_at=timezone.now()
    )


def _take_over(older: Employee, newer: Employee) -> bool:
    """The older record takes what the newer one recorded about the same person and it lacks: the
    consents (given by this person) and the login. Returns whether the login moved."""
    fields = []
    for recorded_at, recorded_by in (
        ("consent_recorded_at", "consent_recorded_by"),
        ("training_consent_recorded_at", "training_consent_recorded_by"),
    ):
        if getattr(older, recorded_at) is None and getattr(newer, recorded_at) is not None:
            setattr(older, recorded_at, getattr(newer, recorded_at))
            setattr(older, recorded_by, getattr(newer, recorded_by))
            fields += [recorded_at, recorded_by]
    account_moved = older.user_id is None and newer.user_id is not None
    if account_moved:
        older.user_id, newer.user_id = newer.user_id, None
        newer.save(update_fields=["user"])  # first: the link is one-to-one
        fields.append("user")
    if fields:
        older.save(update_fields=fields)
    return account_moved
