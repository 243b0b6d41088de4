"""Erasure in the admin: "Erase biometric data" on an employee's page leads to a confirmation page
that counts what will go (identity.erasure.plan); confirming erases and records it. The records
(who, when, why, what was removed) are listed read-only under "Biometric erasures".

Who may erase: HR (identity.change_employee, with which they also record and withdraw consent):
erasing is what a withdrawal of consent obliges, not a power of its own.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from frid_site.admin_read_only import ReadOnlyAdminMixin
from identity import erasure, roles
from identity.models import Employee, Erasure

def _may_erase(request: HttpRequest) -> bool:
    return roles.is_hr(request.user)


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Read-only (ReadOnlyAdminMixin): an erasure is made by the button on the employee's page, which
    # records it.
    list_display = ("erased_at", "employee_number", "erased_by_name", "reason", "summary")
    search_fields = ("employee_number", "erased_by_name")
    fields = ("employee_number", "erased_at", "erased_by_name", "reason", "summary")
    readonly_fields = fields

    @admin.display(description="removed")
    def summary(self, record: Erasure) -> str:
        return "; ".join(erasure.in_words(record.removed)) or "nothing was stored"

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _may_erase(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_erase(request) or super().has_module_permission(request)

    def get_urls(self):
        return [
            path("erase/<int:employee_id>/", self.admin_site.admin_view(self.erase_view),
                 name="identity_erasure_erase"),
            *super().get_urls(),
        ]

    def erase_view(self, request: HttpRequest, employee_id: int):
        if not _may_erase(request):
            raise PermissionDenied
        employee = get_object_or_404(Employee, pk=employee_id)
        employee_page = reverse("admin:identity_employee_change", args=[employee.pk])
        if request.method != "POST":
            plan = erasure.plan(employee)
            return TemplateResponse(request, "admin/identity/erasure_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta, "employee": employee,
                "employee_page": employee_page, "removed": erasure.in_words(plan.removed),
                "reason": request.GET.get("reason", "")[:200],
                "title": f"Erase the biometric data of {employee}",
            })
        try:
            record = erasure.erase(employee, by=request.user, reason=request.POST.get("reason", "").strip())
        except erasure.ErasureBlocked as blocked:
            messages.error(request, str(blocked))
            return redirect(employee_page)
        removed = "; ".join(erasure.in_words(record.removed)) or "nothing was stored"
        messages.success(request, (
            f"Biometric data of {employee} erased ({removed}). The employee record, attendance and the "
            f"verification attempts stay, without biometrics. Prove it with "
            f"`manage.py erasure_report {employee.employee_number}`."
        ))
        return redirect(employee_page)
