"""Admin pages for importing employees in bulk from a zip archive (BulkImport).

The add page asks for the uploader's word that consent was collected first, then the zip, with one
"Import" button; the page checks the tick and the zip's size before sending (static/identity/
bulk_import.js), and the server checks the zip (size, member count, unpacked size, paths) before it
is kept; the import is queued once the row is committed. The change page shows the import's
progress, refreshed from a staff-only JSON view every two seconds while it runs, then its report:
the employees created, each linked, and every photo not enrolled with the reason (ImportOutcome).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from identity import bulk_import, tasks
from identity.models import BulkImport, Employee, FaceTemplate

logger = logging.getLogger(__name__)

CONSENT_MISSING = (
    "Tick this box first: FRID may only enroll people whose consent to biometric processing was recorded."
)
CHOOSE_AGAIN = (
    "Nothing was imported. Correct what is marked below, then choose the zip again: a browser cannot keep "
    "a chosen file when the page is shown again."
)
ARCHIVE_TOO_LARGE = "This zip is larger than {limit}, the largest accepted. Split it into several zips."


class BulkImportForm(forms.ModelForm):
    # Asked first, so that nobody chooses a large zip only to lose it for a missing tick.
    consent = forms.BooleanField(
        label="Consent recorded",
        help_text="I confirm that every employee in this zip has given consent to biometric processing.",
        error_messages={"required": CONSENT_MISSING},
    )
    archive = forms.FileField(label="Zip of photos")

    class Meta:
        model = BulkImport
        fields = ["consent", "archive"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Here rather than on the field: the limits come from the settings as they are now.
        self.fields["archive"].help_text = (
            "Either one folder per employee, named by the employee number and holding their photos, "
            f"or a file {bulk_import.CSV_NAME} with the columns employee_number, name, email, department, "
            f"photo (the photo's path inside the zip). {bulk_import.limits_in_words()} A larger photo "
            "is not imported and the report says so."
        )

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        try:
            bulk_import.check_archive(archive, size=archive.size)
        except bulk_import.ImportProblem as problem:
            raise forms.ValidationError(str(problem)) from problem
        finally:
            archive.seek(0)
        return archive

    def clean(self):
        cleaned = super().clean()
        if self.errors and self.files.get("archive"):
            self.add_error(None, CHOOSE_AGAIN)
        return cleaned


@admin.register(BulkImport)
class BulkImportAdmin(admin.ModelAdmin):
    form = BulkImportForm
    add_form_template = "admin/identity/bulkimport/add_form.html"
    change_form_template = "admin/identity/bulkimport/change_form.html"
    change_list_template = "admin/identity/bulkimport/change_list.html"
    list_display = ["__str__", "status", "progress", "enrolled_photos", "rejected_photos", "employees_created",
                    "created_by", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["status", "total_photos", "processed_photos", "enrolled_photos", "rejected_photos",
                       "employees_created", "report", "error", "created_by", "created_at", "finished_at"]

    @admin.display(description="progress")
    def progress(self, bulk: BulkImport) -> str:
        return f"{bulk.percent_done}%"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # an import is a record of what happened: viewed, never edited

    def get_fields(self, request, obj=None):
        # The archive is never linked: photos are personal data and media files are not served.
        return ["consent", "archive"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_urls(self):
        progress = path(
            "<int:pk>/progress/",
            self.admin_site.admin_view(self.progress_view),
            name="identity_bulkimport_progress",
        )
        return [progress, *super().get_urls()]

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """The import's status and counts, polled by its change page (admin_view: staff only, never cached)."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not view imports."}, status=403)
        bulk = get_object_or_404(BulkImport, pk=pk)
        return JsonResponse(progress_document(bulk))

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "title": "Import employees from a zip",
            # For the page's check before sending: a zip over the limit is refused before its upload.
            "archive_limit": bulk_import.archive_limit(),
            "archive_limit_message": ARCHIVE_TOO_LARGE.format(
                limit=bulk_import.size_in_words(bulk_import.archive_limit())
            ),
            "consent_missing_message": CONSENT_MISSING,
        }
        return super().add_view(request, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        bulk = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if bulk is not None:
            summary = bulk_import.stored_summary(bulk)
            extra_context.update(
                bulk=bulk,
                progress_url=reverse("admin:identity_bulkimport_progress", args=[bulk.pk]),
                running=bulk.status in (BulkImport.Status.QUEUED, BulkImport.Status.RUNNING),
                outcome=ImportOutcome.of(summary) if summary is not None else None,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj: BulkImport, form, change: bool) -> None:
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        tasks.queue_bulk_import(obj.pk)

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the progress page: there is nothing more to fill in.
        self.message_user(request, "The zip was uploaded; its photos are being imported.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:identity_bulkimport_change", args=[obj.pk]))


# --- A finished import's report, with links to what it made -------------------------------------


@dataclass(frozen=True)
class EmployeeRow:
    name: str
    employee_number: str
    url: str  # the employee's admin page; "" when the employee was deleted since
    enrolled: int  # photos of this import enrolled
    not_enrolled: int  # photos of this import rejected or unreadable


@dataclass(frozen=True)
class PhotoRow:
    photo: str  # its path in the zip, or the CSV row
    url: str  # the photo's own admin page (the uploaded photo, for a rejected one); "" without one
    employee: str
    employee_url: str
    reason: str


@dataclass(frozen=True)
class ImportOutcome:
    """What a finished import's page lists: the employees it created or gave photos to, and
    every photo that needs HR's attention, each linked to its admin page while it exists."""

    created: list[EmployeeRow]
    updated: list[EmployeeRow]
    rejected: list[PhotoRow]
    unreadable: list[PhotoRow]
    duplicates: list[PhotoRow]
    still_pending: int

    @classmethod
    def of(cls, summary: bulk_import.ImportSummary) -> "ImportOutcome":
        photos = summary.enrolled + summary.rejected + summary.unreadable
        employee_ids = {employee.employee_id for employee in summary.created_employees + summary.updated_employees}
        employee_ids |= {photo.employee_id for photo in photos if photo.employee_id}
        employees = Employee.objects.in_bulk(employee_ids)
        templates = set(FaceTemplate.objects.filter(
            pk__in=[photo.template_id for photo in summary.rejected + summary.possible_duplicates if photo.template_id]
        ).values_list("pk", flat=True))
        enrolled = Counter(photo.employee_id for photo in summary.enrolled)
        not_enrolled = Counter(photo.employee_id for photo in summary.rejected + summary.unreadable)

        def employee_row(outcome: bulk_import.EmployeeOutcome) -> EmployeeRow:
            employee = employees.get(outcome.employee_id)
            return EmployeeRow(
                name=employee.name if employee else outcome.name,
                employee_number=outcome.employee_number,
                url=_employee_url(employee),
                enrolled=enrolled[outcome.employee_id],
                not_enrolled=not_enrolled[outcome.employee_id],
            )

        def photo_row(outcome: bulk_import.PhotoOutcome) -> PhotoRow:
            employee = employees.get(outcome.employee_id)
            kept = outcome.template_id in templates
            return PhotoRow(
                photo=outcome.photo,
                url=reverse("admin:identity_facetemplate_change", args=[outcome.template_id]) if kept else "",
                employee=str(employee) if employee else outcome.employee_number,
                employee_url=_employee_url(employee),
                reason=outcome.reason,
            )

        return cls(
            created=[employee_row(employee) for employee in summary.created_employees],
            updated=[employee_row(employee) for employee in summary.updated_employees],
            rejected=[photo_row(photo) for photo in summary.rejected],
            unreadable=[photo_row(photo) for photo in summary.unreadable],
            duplicates=[photo_row(photo) for photo in summary.possible_duplicates],
            still_pending=summary.still_pending,
        )


def _employee_url(employee: Employee | None) -> str:
    return reverse("admin:identity_employee_change", args=[employee.pk]) if employee else ""


def progress_document(bulk: BulkImport) -> dict:
    return {
        "status": bulk.status,
        "percent_done": bulk.percent_done,
        "total_photos": bulk.total_photos,
        "processed_photos": bulk.processed_photos,
        "enrolled_photos": bulk.enrolled_photos,
        "rejected_photos": bulk.rejected_photos,
        "employees_created": bulk.employees_created,
        "finished": bulk.status in (BulkImport.Status.DONE, BulkImport.Status.FAILED),
    }
