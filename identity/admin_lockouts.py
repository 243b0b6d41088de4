"""Lockouts in the admin: the lockouts in force now, each with a Lift button, above the record of
lockouts lifted (who, when). The list is computed from the audit (identity.lockout); only lifts are
stored, and they are never changed or deleted here. Lifting needs identity.add_lockoutlift (HR)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse

from frid_site.admin_read_only import ReadOnlyAdminMixin
from identity import lockout
from identity.models import Employee, Kiosk, LockoutLift

LIFT_PERMISSION = "identity.add_lockoutlift"
Kind = LockoutLift.Subject


def describe(subject: lockout.Subject) -> str:
    """The subject in HR's words (HR may know who is enrolled; the people locked out are never told)."""
    if subject.kind == Kind.EMPLOYEE:
        employee = Employee.objects.filter(employee_number=subject.key).first()
        return f"employee number {subject.key}: {employee.name if employee else 'nobody has this number'}"
    if subject.kind == Kind.ACCOUNT:
        user = get_user_model().objects.filter(pk=subject.key).first()
        return f"account {user.get_username() if user else subject.key + ' (deleted)'}"
    kiosk = Kiosk.objects.filter(pk=subject.key).first()
    return f"kiosk {kiosk.name if kiosk else subject.key + ' (deleted)'}"


@admin.register(LockoutLift)
class LockoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Read-only (ReadOnlyAdminMixin): a lift is made by the Lift button only, which records it.
    list_display = ("lifted_at", "subject_shown", "failures", "locked_until", "lifted_by_shown")
    list_filter = ("subject",)
    fields = ("subject", "key", "failures", "locked_until", "lifted_by", "lifted_at")
    readonly_fields = fields
    change_list_template = "admin/identity/lockoutlift/change_list.html"

    @admin.display(description="locked out")
    def subject_shown(self, lift: LockoutLift) -> str:
        return describe(lockout.Subject(lift.subject, lift.key))

    @admin.display(description="lifted by")
    def lifted_by_shown(self, lift: LockoutLift) -> str:
        user = get_user_model().objects.filter(pk=lift.lifted_by_id).first()
        return user.get_username() if user else "—"

    def get_urls(self):
        return [
            path("lift/", self.admin_site.admin_view(self.lift_view), name="identity_lockoutlift_lift"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        current = [{"lockout": found, "subject": describe(found.subject)} for found in lockout.current_lockouts()]
        context = {**(extra_context or {}), "current_lockouts": current, "title": "Lockouts",
                   "may_lift": request.user.has_perm(LIFT_PERMISSION), "rule": {
                       "failures": settings.FRID_LOCKOUT_FAILURES, "window": settings.FRID_LOCKOUT_WINDOW_MINUTES,
                       "minutes": settings.FRID_LOCKOUT_MINUTES}}
        return super().changelist_view(request, extra_context=context)

    def lift_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(LIFT_PERMISSION):
            raise PermissionDenied
        kind, key = request.POST.get("subject", ""), request.POST.get("key", "")
        if kind not in Kind.values or not key or (kind != Kind.EMPLOYEE and not key.isdigit()):
            messages.error(request, "That is not a lockout FRID knows of.")
        else:
            subject = lockout.Subject(kind, key)
            if lockout.lift(subject, by=request.user) is None:
                messages.warning(request, f"The lockout of {describe(subject)} is already over: nothing to lift.")
            else:
                messages.success(request, f"Lifted the lockout of {describe(subject)}: its next check is "
                                          f"verified as usual. The lift is recorded below.")
        return redirect(reverse("admin:identity_lockoutlift_changelist"))
