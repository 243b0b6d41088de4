"""HR's pages: employees, their consent and photos, and the face templates made from them.

Photos only come in through the employee page (or a bulk import); every photo goes through
identity.enrollment.add_photo and is checked by a background worker. Face images are shown
through the staff-only views of identity.views, never from MEDIA_URL. The embedding is never
part of any form: it is personal data, and pgvector's array breaks admin forms.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from identity import enrollment, tasks, views
from identity.forms import EmployeeForm
from identity.models import Employee, FaceTemplate

READY = FaceTemplate.Status.READY
PENDING = FaceTemplate.Status.PENDING
REJECTED = FaceTemplate.Status.REJECTED

# How often the change page asks for the statuses of pending photos.
POLL_MILLISECONDS = 3000
WAITING_FOR_WORKER = (
    "Waiting for the background worker: no worker has taken this photo yet. It is kept and will be "
    "checked as soon as a worker runs (an administrator can check that `./frid run` or the worker "
    "service is up)."
)


def plural(count: int, singular: str, several: str | None = None) -> str:
    return f"{count} {singular if count == 1 else several or singular + 's'}"


# --- How a template is shown ------------------------------------------------------------------


def face_thumbnail(template: FaceTemplate, size: int = 75) -> str:
    if not template.chip:
        return "—"
    return format_html(
        '<img class="face-chip" src="{}" width="{}" height="{}" alt="Face of {}" loading="lazy">',
        reverse("identity:template-chip", args=[template.pk]),
        size,
        size,
        template.employee.name,
    )


def outcome(template: FaceTemplate) -> str:
    """What happened to the photo, in plain words: the rejection reason says what to do."""
    if template.status == REJECTED:
        return format_html('<span class="template-rejected">{}</span>', template.reason)
    if template.status == PENDING:
        if views.waits_for_worker(template):
            return format_html('<span class="template-waiting">{}</span>', WAITING_FOR_WORKER)
        return "Being checked…"
    return "Ready: this face is used for recognition." if template.employee.is_active else (
        "Ready, but not used while the employee is inactive."
    )


def quality_figures(template: FaceTemplate) -> str:
    quality = template.quality
    if not quality:
        return "—"
    return format_html(
        "face {} px, sharpness {}, brightness {}<br>pose: yaw {}°, pitch {}°, roll {}°",
        quality.get("face_size"),
        quality.get("sharpness"),
        quality.get("brightness"),
        quality.get("yaw"),
        quality.get("pitch"),
        quality.get("roll"),
    )


def duplicate_warning(template: FaceTemplate) -> str:
    other = template.possible_duplicate_of
    if other is None:
        return "—"
    distance = f"{template.duplicate_distance:.3f}" if template.duplicate_distance is not None else "?"
    return format_html(
        '<span class="duplicate-warning">⚠ Possible duplicate of <a href="{}">{}</a> (distance {})</span>',
        reverse("admin:identity_employee_change", args=[other.pk]),
        str(other),
        distance,
    )


class _TemplateColumns:
    """The columns a face template shows, on the employee page and in the template list."""

    @admin.display(description="face")
    def face(self, template: FaceTemplate) -> str:
        return face_thumbnail(template)

    @admin.display(description="result")
    def result(self, template: FaceTemplate) -> str:
        return outcome(template)

    @admin.display(description="quality")
    def measurements(self, template: FaceTemplate) -> str:
        return quality_figures(template)

    @admin.display(description="possible duplicate")
    def duplicate(self, template: FaceTemplate) -> str:
        return duplicate_warning(template)


class FaceTemplateInline(_TemplateColumns, admin.TabularInline):
    """The employee's templates, read-only; HR can only delete one."""

    model = FaceTemplate
    fk_name = "employee"
    extra = 0
    fields = ("face", "status", "result", "measurements", "duplicate", "model_version", "processed_at")
    readonly_fields = fields
    verbose_name = "face photo"
    verbose_name_plural = "face photos"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # photos come in through the employee form, checked by add_photo

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("employee", "model_version", "possible_duplicate_of")



# --- Employees --------------------------------------------------------------------------------


class _YesNoFilter(admin.SimpleListFilter):
    """A filter with two choices: rows that meet ``condition()``, and rows that do not."""

    labels = ("Yes", "No")

    def condition(self):
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [("yes", self.labels[0]), ("no", self.labels[1])]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.filter(~self.condition())
        return queryset


class ConsentFilter(_YesNoFilter):
    title = "biometric consent"
    parameter_name = "consent"
    labels = ("Recorded", "Not recorded")

    def condition(self):
        return Q(consent_recorded_at__isnull=False)


class ReadyTemplateFilter(_YesNoFilter):
    title = "has a ready photo"
    parameter_name = "ready_photo"

    def condition(self):
        return Exists(FaceTemplate.objects.filter(employee=OuterRef("pk"), status=READY))


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    form = EmployeeForm
    change_form_template = "admin/identity/employee/change_form.html"
    list_display = (
        "employee_number",
        "name",
        "department",
        "is_active",
        "consent_given",
        "ready_photos",
        "pending_photos",
        "rejected_photos",
        "duplicate",
    )
    list_display_links = ("employee_number", "name")
    search_fields = ("employee_number", "name", "email")
    list_filter = ("department", "is_active", ConsentFilter, ReadyTemplateFilter)
    readonly_fields = ("consent_record",)
    fieldsets = (
        (None, {"fields": ("employee_number", "name", "email", "department", "is_active")}),
        ("Biometric consent", {"fields": ("consent", "consent_record")}),
        ("Photos", {"fields": ("photos",)}),
    )
    inlines = [FaceTemplateInline]
    actions = ["deactivate", "reactivate", "record_consent", "retry_rejected_photos"]

    class Media:
        css = {"all": ["identity/enroll.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        first_duplicate = FaceTemplate.objects.filter(
            employee=OuterRef("pk"), status=READY, possible_duplicate_of__isnull=False
        ).order_by("duplicate_distance")
        return (
            super()
            .get_queryset(request)
            .annotate(
                ready_count=Count("templates", filter=Q(templates__status=READY)),
                pending_count=Count("templates", filter=Q(templates__status=PENDING)),
                rejected_count=Count("templates", filter=Q(templates__status=REJECTED)),
                duplicate_of_id=Subquery(first_duplicate.values("possible_duplicate_of")[:1]),
                duplicate_of_name=Subquery(first_duplicate.values("possible_duplicate_of__name")[:1]),
            )
        )

    # Columns and read-only fields

    @admin.display(description="consent", boolean=True, ordering="consent_recorded_at")
    def consent_given(self, employee: Employee) -> bool:
        return employee.consent_recorded_at is not None

    @admin.display(description="ready", ordering="ready_count")
    def ready_photos(self, employee: Employee) -> int:
        return employee.ready_count

    @admin.display(description="pending", ordering="pending_count")
    def pending_photos(self, employee: Employee) -> int:
        return employee.pending_count

    @admin.display(description="rejected", ordering="rejected_count")
    def rejected_photos(self, employee: Employee) -> int:
        return employee.rejected_count

    @admin.display(description="warning")
    def duplicate(self, employee: Employee) -> str:
        if employee.duplicate_of_id is None:
            return ""
        return format_html(
            '<span class="duplicate-warning">⚠ Possible duplicate of <a href="{}">{}</a></span>',
            reverse("admin:identity_employee_change", args=[employee.duplicate_of_id]),
            employee.duplicate_of_name,
        )

    @admin.display(description="consent record")
    def consent_record(self, employee: Employee) -> str:
        if employee.consent_recorded_at is None:
            return "Not recorded: photos are refused until consent is recorded."
        recorded_by = employee.consent_recorded_by
        by = f" by {recorded_by.get_username()}" if recorded_by else ""
        return f"Recorded {timezone.localtime(employee.consent_recorded_at):%Y-%m-%d %H:%M}{by}."

    # Saving

    def save_model(self, request: HttpRequest, employee: Employee, form, change: bool) -> None:
        consent = form.cleaned_data.get("consent")
        if consent and employee.consent_recorded_at is None:
            employee.consent_recorded_at = timezone.now()
            employee.consent_recorded_by = request.user
        elif not consent and employee.consent_recorded_at is not None:
            employee.consent_recorded_at = None
            employee.consent_recorded_by = None
            self.message_user(
                request,
                "Consent withdrawn: no new photo will be accepted. The photos already enrolled are still "
                "used; delete them below if the employee must no longer be recognised.",
                messages.WARNING,
            )
        super().save_model(request, employee, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        photos = form.cleaned_data.get("photos") or []
        templates = [enrollment.add_photo(form.instance, photo.data, photo.filename) for photo in photos]
        if templates:
            # One task for the lot: the worker embeds them in one batch.
            tasks.queue_embedding([template.pk for template in templates])
        if photos:
            request.photos_received = len(photos)
            being = "it is" if len(photos) == 1 else "they are"
            self.message_user(
                request,
                f"{plural(len(photos), 'photo')} received: {being} being checked. "
                "This page shows the results as they come.",
            )

    def response_add(self, request: HttpRequest, employee: Employee, post_url_continue=None) -> HttpResponse:
        return self._stay_while_photos_are_checked(
            request, employee, super().response_add(request, employee, post_url_continue)
        )

    def response_change(self, request: HttpRequest, employee: Employee) -> HttpResponse:
        return self._stay_while_photos_are_checked(request, employee, super().response_change(request, employee))

    def _stay_while_photos_are_checked(self, request: HttpRequest, employee: Employee, response) -> HttpResponse:
        # After sending photos, HR wants to see how they fare, not the list of employees.
        to_list = reverse("admin:identity_employee_changelist")
        if getattr(request, "photos_received", 0) and getattr(response, "url", "").split("?")[0] == to_list:
            return HttpResponseRedirect(reverse("admin:identity_employee_change", args=[employee.pk]))
        return response

    # The change page's progress panel and camera

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        extra_context["enroll_config"] = {"inputId": "id_photos", "jpegQuality": 0.92}
        if object_id is not None and str(object_id).isdigit():
            templates = list(FaceTemplate.objects.filter(employee_id=object_id))
            pending = sum(t.status == PENDING for t in templates)
            extra_context["progress"] = {
                "pending": pending,
                "waiting_for_worker": any(views.waits_for_worker(t) for t in templates),
            }
            extra_context["progress_config"] = {
                "statusUrl": reverse("identity:employee-templates", args=[object_id]),
                "pending": pending,
                "pollMilliseconds": POLL_MILLISECONDS,
            }
        return super().changeform_view(request, object_id, form_url, extra_context)

    # Actions

    @admin.action(description="Deactivate: stop recognising the selected employees", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, f"{plural(count, 'employee')} deactivated: no longer recognised.")

    @admin.action(description="Reactivate the selected employees", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, f"{plural(count, 'employee')} reactivated: recognised again.")

    @admin.action(description="Record biometric consent for the selected employees", permissions=["change"])
    def record_consent(self, request: HttpRequest, queryset: QuerySet) -> None:
        without_consent = list(queryset.filter(consent_recorded_at__isnull=True))
        for employee in without_consent:
            employee.record_consent(request.user)
        self.message_user(request, f"Consent recorded for {plural(len(without_consent), 'employee')}.")

    @admin.action(description="Check the rejected photos of the selected employees again", permissions=["change"])
    def retry_rejected_photos(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = tasks.retry_templates(FaceTemplate.objects.filter(employee__in=queryset, status=REJECTED))
        self.message_user(request, f"{plural(count, 'rejected photo')} sent to be checked again.")


# --- Face templates ---------------------------------------------------------------------------


@admin.register(FaceTemplate)
class FaceTemplateAdmin(_TemplateColumns, admin.ModelAdmin):
    """Every template, to find the rejected or stuck ones; read-only, no adding (photos come
    through the employee page), and never the embedding."""

    list_display = ("face", "employee_link", "status", "short_result", "duplicate", "model_version", "processed_at")
    list_display_links = ("status",)  # the face and the employee columns hold links of their own
    list_filter = ("status", "model_version", "employee__is_active")
    search_fields = ("employee__name", "employee__employee_number", "employee__email")
    list_select_related = ("employee", "model_version", "possible_duplicate_of")
    exclude = ("embedding",)
    fields = (
        "employee_link",
        "face_large",
        "status",
        "result",
        "measurements",
        "duplicate",
        "model_version",
        "attempts",
        "queued_at",
        "processed_at",
        "created_at",
    )
    readonly_fields = fields
    actions = ["retry_templates"]

    class Media:
        css = {"all": ["identity/enroll.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # what a template holds comes from its photo; retry or delete instead

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("identity.change_facetemplate")

    @admin.display(description="employee", ordering="employee__name")
    def employee_link(self, template: FaceTemplate) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:identity_employee_change", args=[template.employee_id]),
            str(template.employee),
        )

    @admin.display(description="face")
    def face_large(self, template: FaceTemplate) -> str:
        return face_thumbnail(template, size=150)

    @admin.display(description="result")
    def short_result(self, template: FaceTemplate) -> str:
        return Truncator(template.reason).chars(90) if template.status == REJECTED else ""

    @admin.action(description="Check the selected photos again", permissions=["retry"])
    def retry_templates(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = tasks.retry_templates(queryset)
        ready = queryset.filter(status=READY).count()
        note = f" {plural(ready, 'ready photo was', 'ready photos were')} left as they are." if ready else ""
        self.message_user(request, f"{plural(count, 'photo')} sent to be checked again.{note}")


from identity import admin_imports  # noqa: F401,E402
from identity import admin_audit  # noqa: F401,E402
