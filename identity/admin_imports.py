"""Admin pages for importing employees in bulk from a zip archive (BulkImport).

The add page takes the zip and the uploader's word that consent was collected; the zip is checked
(size, member count, unpacked size, paths) before it is kept, and the import is queued once the row
is committed. The change page shows the import's progress, refreshed from a staff-only JSON view
every two seconds while it runs, then its report.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from identity import bulk_import, tasks
from identity.models import BulkImport

logger = logging.getLogger(__name__)



class BulkImportForm(forms.ModelForm):
    archive = forms.FileField(
        label="Zip of photos",
        help_text=(
            "Either one folder per employee, named by the employee number and holding their photos, "
            f"or a file {bulk_import.CSV_NAME} with the columns employee_number, name, email, department, "
            f"photo (the photo's path inside the zip). Up to {bulk_import.MAX_ARCHIVE_BYTES / 1e6:.0f} MB."
        ),
    )
    consent = forms.BooleanField(
        label="Consent recorded",
        help_text="I confirm that every employee in this zip has given consent to biometric processing.",
    )

    class Meta:
        model = BulkImport
        fields = ["archive"]

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        try:
            bulk_import.check_archive(archive, size=archive.size)
        except bulk_import.ImportProblem as problem:
            raise forms.ValidationError(str(problem)) from problem
        finally:
            archive.seek(0)
        return archive


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
        return ["archive", "consent"] if obj is None else self.readonly_fields

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
        extra_context = {**(extra_context or {}), "title": "Import employees from a zip"}
        return super().add_view(request, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        bulk = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if bulk is not None:
            extra_context.update(
                bulk=bulk,
                progress_url=reverse("admin:identity_bulkimport_progress", args=[bulk.pk]),
                running=bulk.status in (BulkImport.Status.QUEUED, BulkImport.Status.RUNNING),
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
