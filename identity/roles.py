"""Who may do what: the four roles of FRID.

- HR: a user in the "HR" group (or a superuser). Enrolls and edits employees and their photos,
  registers kiosks, runs bulk imports, reads attempts and everyone's attendance.
- Auditor: a user in the "Auditor" group. Reads attempts and everyone's attendance; changes nothing.
- Employee: a user linked to an Employee (``Employee.user``). Verifies as themself and reads
  their own attendance.
- Kiosk: not a user at all: a request whose ``request.auth`` is a Kiosk (its token). Verifies 1:N.

The helpers ask for permissions, not group names, so that an administrator may also grant a
single permission to a user directly. The groups are created by migration identity 0004 with
``GROUP_PERMISSIONS`` as it stood then, migration 0006 added what came with training and the
HR polish, and 0007 the lockouts (a test keeps the migrations and this list in step).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from identity.models import Employee, Kiosk

HR = "HR"
AUDITOR = "Auditor"

# "app_label.codename" of each group's permissions (Django's default model permissions).
GROUP_PERMISSIONS: dict[str, list[str]] = {
    HR: [
        "identity.add_employee",
        "identity.change_employee",
        "identity.view_employee",
        "identity.add_facetemplate",  # enrolls: adds photos
        "identity.change_facetemplate",
        "identity.view_facetemplate",
        "identity.add_bulkimport",
        "identity.change_bulkimport",
        "identity.view_bulkimport",
        "identity.add_kiosk",
        "identity.change_kiosk",
        "identity.view_kiosk",
        "identity.view_verificationattempt",
        "identity.view_attendanceevent",  # reports: everyone's attendance
        # Since migration 0006: uploaded photos, the network's versions and training runs.
        "identity.view_facetemplate_photo",
        "training.view_modelversion",
        "training.activate_modelversion",  # activate, roll back (audited)
        "training.view_modelversionevent",
        "training.add_trainingrun",  # "train now"
        "training.view_trainingrun",
        "django_celery_beat.view_periodictask",
        "django_celery_beat.change_periodictask",  # when training runs
        "django_celery_beat.view_crontabschedule",
        "django_celery_beat.add_crontabschedule",
        "django_celery_beat.change_crontabschedule",
        # Since migration 0007: lockouts, read and lifted (a lift is recorded).
        "identity.view_lockoutlift",
        "identity.add_lockoutlift",
    ],
    AUDITOR: [
        "identity.view_verificationattempt",
        "identity.view_attendanceevent",  # reports: everyone's attendance
        "identity.view_lockoutlift",  # since migration 0007
    ],
}

# Who is HR: whoever may change employees (the HR group has it; superusers have every permission).
HR_PERMISSION = "identity.change_employee"
# Who audits: whoever may read verification attempts (auditors and HR).
AUDITOR_PERMISSION = "identity.view_verificationattempt"
# Who sees everyone's attendance (HR and auditors); everyone else sees only their own.
REPORTS_PERMISSION = "identity.view_attendanceevent"


def is_hr(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(HR_PERMISSION))


def is_auditor(user) -> bool:
    """True for auditors, and for HR too (who may read attempts as well)."""
    return bool(user is not None and user.is_authenticated and user.has_perm(AUDITOR_PERMISSION))


def sees_all_attendance(user) -> bool:
    """HR and auditors see every employee's attendance; an employee only their own."""
    return bool(user is not None and user.is_authenticated and user.has_perm(REPORTS_PERMISSION))


def employee_of(user) -> Employee | None:
    """The employee this user logs in as, or None (anonymous, or an account not linked to one)."""
    if user is None or not user.is_authenticated:
        return None
    try:
        return user.employee
    except Employee.DoesNotExist:
        return None


def kiosk_of(request) -> Kiosk | None:
    """The kiosk making this API request (by its token), or None."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, Kiosk) else None


def may_verify(user, kiosk: Kiosk | None) -> bool:
    """Kiosks (a disabled one too: its refusal is audited by the verify flow), employees, and HR
    (who may verify any employee 1:1)."""
    return kiosk is not None or employee_of(user) is not None or is_hr(user)


def may_switch_direction(event, user, kiosk: Kiosk | None, now=None) -> bool:
    """HR may switch any attendance event's direction at any time. The kiosk that recorded it, or
    the employee themself, only within FRID_REPEAT_CHECK_MINUTES of it: the page's one-tap
    switch, for a check that went the wrong way."""
    if is_hr(user):
        return True
    recent = (now or timezone.now()) - event.occurred_at <= timedelta(minutes=settings.FRID_REPEAT_CHECK_MINUTES)
    own_kiosk = kiosk is not None and kiosk.is_active and event.kiosk_id == kiosk.pk
    employee = employee_of(user)
    own_event = employee is not None and event.employee_id == employee.pk
    return recent and (own_kiosk or own_event)


def ensure_groups() -> None:
    """Make the HR and Auditor groups hold exactly GROUP_PERMISSIONS (migration 0004 made them; this
    restores them, e.g. after a test emptied the tables)."""
    for name, permissions in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([_permission(permission) for permission in permissions])


def _permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
