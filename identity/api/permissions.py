"""Who may call which endpoint (identity.roles says what the roles are).

Users are checked by permission, so that HR, auditors and superusers pass through their groups'
permissions; kiosks (``request.auth`` is a Kiosk, the user anonymous) pass only where they are
named. DRF answers 401 to a request without credentials and 403 to one whose role may not.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission

from identity import roles


class _PermissionRequired(BasePermission):
    permission = ""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(self.permission))


class MayAddEmployees(_PermissionRequired):
    permission = "identity.add_employee"
    message = "Only HR may add employees."


class MayAddPhotos(_PermissionRequired):
    permission = "identity.add_facetemplate"
    message = "Only HR may add employees' photos."


class MayViewTemplates(_PermissionRequired):
    permission = "identity.view_facetemplate"
    message = "Only HR may see face templates."


class MayReadAttempts(_PermissionRequired):
    permission = roles.AUDITOR_PERMISSION
    message = "Only HR and auditors may read verification attempts."


class MayVerify(BasePermission):
    kiosks_allowed = True  # the OpenAPI schema lists the kiosk token here
    message = "Only kiosks, employees and HR may verify faces. Ask HR to link your account to your employee record."

    def has_permission(self, request, view) -> bool:
        return roles.may_verify(request.user, roles.kiosk_of(request))


class MayReadAttendance(BasePermission):
    message = "Your account is not linked to an employee, so it has no attendance to show. Ask HR to link it."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return roles.sees_all_attendance(user) or roles.employee_of(user) is not None


class MaySwitchDirection(BasePermission):
    kiosks_allowed = True
    # Any kiosk or user gets as far as the event; whether they may switch it depends on the event.
    def has_permission(self, request, view) -> bool:
        return roles.kiosk_of(request) is not None or bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, event) -> bool:
        return roles.may_switch_direction(event, request.user, roles.kiosk_of(request))

    @property
    def message(self) -> str:
        return (
            f"Only HR can switch this check now: the kiosk that recorded it, or the employee, can switch "
            f"it within {settings.FRID_REPEAT_CHECK_MINUTES} minutes of it. Ask HR to correct it."
        )
