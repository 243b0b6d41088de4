"""HR's pages: employees, their consent and photos, and the face templates made from them.

Photos only come in through the employee page (or a bulk import); every photo goes through
identity.enrollment.add_photo and is checked by a background worker. Face images are shown
through staff-only views (chips: identity.views; uploaded photos: the template admin's own
views below, to staff allowed to see them), never from MEDIA_URL. The embedding is never part of
any form: it is personal data, and pgvector's array breaks admin forms.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.text import Truncator

from frid_site.admin_read_only import ReadOnlyAdminMixin
from identity import duplicates, enrollment, previews, quality, tasks, views
from identity.forms import EmployeeForm
from identity.images import looks_like_an_image
from identity.models import Employee, FaceTemplate

READY = FaceTemplate.Status.READY
PENDING = FaceTemplate.Status.PENDING
REJECTED = FaceTemplate.Status.REJECTED
CAPTURE = FaceTemplate.Source.CAPTURE
UNDECIDED = FaceTemplate.DuplicateDecision.UNDECIDED

# One dash for every empty cell, in every list and page of these admins.
EMPTY = "—"
PHOTO_PERMISSION = "identity.view_facetemplate_photo"
# Longest side of the uploaded photo as shown: in a list row (twice the shown size, for sharp
# screens), and opened on its own.
SMALL_PHOTO_SIDE, LARGE_PHOTO_SIDE = 240, 1280

# How often the change page asks for the statuses of pending photos.
POLL_MILLISECONDS = 3000
WAITING_FOR_WORKER = (
    "Waiting for the background worker: no worker has taken this photo yet. It is kept and will be "
    "checked as soon as a worker runs (an administrator can check that `./frid run` or the worker "
    "service is up)."
)
HELD_FOR_REVIEW = "Ready, but not used for recognition until you decide about the possible duplicate."
DUPLICATE_ADVICE = (
    "Not used for recognition until you decide: the same person with two employee records (merge "
    "them), different people (keep both), or delete this photo."
)


def plural(count: int, singular: str, several: str | None = None) -> str:
    return f"{count} {singular if count == 1 else several or singular + 's'}"


def employee_url(employee_id: int) -> str:
    return reverse("admin:identity_employee_change", args=[employee_id])


def review_url(template_id: int, back_to: str = "") -> str:
    url = reverse("admin:identity_facetemplate_duplicate", args=[template_id])
    return f"{url}?{urlencode({'next': back_to})}" if back_to else url


def local_time(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


# --- How a template is shown ------------------------------------------------------------------


def face_thumbnail(template: FaceTemplate, size: int = 75) -> str:
    if not template.chip:
        return EMPTY
    return format_html(
        '<img class="face-chip" src="{}" width="{}" height="{}" alt="Face of {}" loading="lazy">',
        reverse("identity:template-chip", args=[template.pk]),
        size,
        size,
        template.employee.name,
    )


def file_name(template: FaceTemplate) -> str:
    """The uploaded file's name; for templates from before names were kept, the stored one."""
    if template.original_filename:
        return template.original_filename
    if not template.source_image:
        return EMPTY  # an automatic template keeps no photo: only its face
    stored = template.source_image.name.rsplit("/", 1)[-1]
    return stored.split("-", 1)[-1]  # without the upload time in front


def uploaded_photo(template: FaceTemplate, width: int) -> str:
    """The uploaded photo (face boxes drawn on it) linked to its full size, and its file name;
    the photo itself only to staff allowed to see uploaded photos."""
    if not template.source_image:
        return ""  # an automatic template: the captured frame is not kept, only the face
    name = format_html('<span class="photo-file-name">{}</span>', file_name(template))
    if not getattr(template, "photo_allowed", False):
        return name
    if not _shows_as_an_image(template):
        return format_html('{}<span class="photo-note">not an image: nothing to show</span>', name)
    photo = reverse("admin:identity_facetemplate_photo", args=[template.pk])
    return format_html(
        '<a href="{}?side=large" target="_blank" rel="noopener" title="Open the photo">'
        '<img class="source-photo" src="{}?side=small" width="{}" alt="Uploaded photo {}" loading="lazy"></a>'
        '{} <a class="photo-original" href="{}">original file</a>',
        photo, photo, width, file_name(template), name,
        reverse("admin:identity_facetemplate_original", args=[template.pk]),
    )


def _shows_as_an_image(template: FaceTemplate) -> bool:
    try:
        with template.source_image.open("rb") as stream:
            return looks_like_an_image(stream.read(16))
    except (FileNotFoundError, ValueError):
        return False


def outcome(template: FaceTemplate) -> str:
    """What happened to the photo, in plain words: the rejection reason says what to do."""
    if template.status == REJECTED:
        boxed = " The faces found are boxed on the photo." if len(template.found_boxes or ()) > 1 else ""
        return format_html('<span class="template-rejected">Rejected: {}{}</span>', template.reason, boxed)
    if template.status == PENDING:
        if views.waits_for_worker(template):
            return format_html('<span class="template-waiting">{}</span>', WAITING_FOR_WORKER)
        return "Being checked…"
    if template.possible_duplicate_of_id and template.duplicate_decision == UNDECIDED:
        return format_html('<span class="duplicate-warning">{}</span>', HELD_FOR_REVIEW)
    return "Ready: this face is used for recognition." if template.employee.is_active else (
        "Ready, but not used while the employee is inactive."
    )


def quality_figures(template: FaceTemplate) -> str:
    if not template.quality:
        return EMPTY
    return format_html(
        '<ul class="quality-figures">{}</ul>',
        format_html_join(
            "",
            '<li>{} {} <span class="reading reading-{}">{}</span></li>',
            ((figure.label, figure.shown, figure.reading, figure.reading)
             for figure in quality.figures(template.quality)),
        ),
    )


def duplicate_warning(template: FaceTemplate, back_to: str = "", advice: bool = True) -> str:
    """The possible duplicate, what to do about it while undecided, and the decision once made."""
    other = template.possible_duplicate_of
    if template.duplicate_decision != UNDECIDED:
        decided_by = template.duplicate_decided_by
        return format_html(
            '<span class="duplicate-decided">{}{}</span>',
            template.get_duplicate_decision_display().capitalize(),
            f" (by {decided_by.get_username() if decided_by else 'a removed user'}, "
            f"{local_time(template.duplicate_decided_at)})" if template.duplicate_decided_at else "",
        )
    if other is None:
        return EMPTY
    distance = f"{template.duplicate_distance:.3f}" if template.duplicate_distance is not None else "?"
    return format_html(
        '<span class="duplicate-warning">⚠ Possible duplicate of <a href="{}">{}</a> (distance {}).</span> '
        '{}<a class="button duplicate-review-link" href="{}">Review and decide</a>',
        employee_url(other.pk), str(other), distance,
        format_html('<span class="duplicate-advice">{}</span> ', DUPLICATE_ADVICE) if advice else "",
        review_url(template.pk, back_to),
    )


def duplicate_flag(template_id: int, other: Employee | tuple[int, str], back_to: str) -> str:
    """The short warning of a list row: who it may duplicate, and the link to decide."""
    other_id, other_name = (other.pk, other.name) if isinstance(other, Employee) else other
    return format_html(
        '<span class="duplicate-warning">⚠ Possible duplicate of <a href="{}">{}</a></span> '
        '<a class="duplicate-review-link" href="{}">review</a>',
        employee_url(other_id), other_name, review_url(template_id, back_to),
    )


def source_description(template: FaceTemplate) -> str:
    """Where the template came from: HR's photo, or a verified capture (linking to its attempt)."""
    if template.source != CAPTURE:
        return "HR photo"
    # FRID made it itself: HR may delete it (FaceTemplateAdmin.has_delete_permission).
    delete = format_html(
        ' <a class="deletelink" href="{}">delete</a>', reverse("admin:identity_facetemplate_delete", args=[template.pk])
    )
    if template.from_attempt_id is None:
        return format_html("automatic, from a verified capture{}", delete)
    return format_html(
        'automatic, from <a href="{}">a verified capture</a>{}',
        reverse("admin:identity_verificationattempt_change", args=[template.from_attempt_id]), delete,
    )


def checked(template: FaceTemplate) -> str:
    if template.processed_at is None:
        return EMPTY
    version = f", {template.model_version}" if template.model_version_id else ""
    return f"{local_time(template.processed_at)}{version}"


def with_photo_permission(templates: QuerySet, request: HttpRequest) -> QuerySet:
    """Rows that know whether this user may see uploaded photos (a column has no request)."""
    allowed = request.user.has_perm(PHOTO_PERMISSION)
    return templates.annotate(photo_allowed=Value(allowed, output_field=BooleanField()))


class _TemplateColumns:
    """The columns a face template shows, on the employee page and in the template list."""

    @admin.display(description="face")
    def face(self, template: FaceTemplate) -> str:
        return face_thumbnail(template)

    @admin.display(description="uploaded photo")
    def photo(self, template: FaceTemplate) -> str:
        return format_html(
            '{}<span class="template-source">{}</span>', uploaded_photo(template, 120), source_description(template)
        )

    @admin.display(description="file", ordering="original_filename")
    def file(self, template: FaceTemplate) -> str:
        return file_name(template)

    @admin.display(description="result")
    def result(self, template: FaceTemplate) -> str:
        return outcome(template)

    @admin.display(description="quality")
    def measurements(self, template: FaceTemplate) -> str:
        return quality_figures(template)

    @admin.display(description="possible duplicate")
    def duplicate(self, template: FaceTemplate) -> str:
        return duplicate_warning(template, employee_url(template.employee_id))

    @admin.display(description="source")
    def origin(self, template: FaceTemplate) -> str:
        return source_description(template)

    @admin.display(description="checked")
    def checked(self, template: FaceTemplate) -> str:
        return checked(template)

    @admin.display(description="result")
    def checked_result(self, template: FaceTemplate) -> str:
        if template.processed_at is None:
            return outcome(template)
        return format_html('{}<span class="template-checked">checked {}</span>', outcome(template), checked(template))


class FaceTemplateInline(_TemplateColumns, admin.TabularInline):
    """The employee's templates, read-only; HR can only delete one."""

    model = FaceTemplate
    fk_name = "employee"
    extra = 0
    fields = ("photo", "face", "checked_result", "measurements", "duplicate")
    readonly_fields = fields
    verbose_name = "face photo"
    verbose_name_plural = "face photos"
    empty_value_display = EMPTY

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # photos come in through the employee form, checked by add_photo

    @admin.display(description="possible duplicate")
    def duplicate(self, template: FaceTemplate) -> str:
        # The banner on top of the page says what to do; the row keeps the warning and the link.
        return duplicate_warning(template, employee_url(template.employee_id), advice=False)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        templates = super().get_queryset(request).select_related(
            "employee", "model_version", "possible_duplicate_of", "duplicate_decided_by"
        )
        return with_photo_permission(templates, request)


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


def _first_held(**link) -> QuerySet:
    return FaceTemplate.objects.held_for_review().filter(**link).order_by("duplicate_distance", "pk")


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    form = EmployeeForm
    change_form_template = "admin/identity/employee/change_form.html"
    # Few, narrow columns: the list fits a 1280 px laptop screen (counts and warnings wrap).
    list_display = ("employee", "department_name", "active", "consent_given", "photo_counts", "duplicate")
    list_display_links = ("employee",)
    search_fields = ("employee_number", "name", "email")
    list_filter = ("department", "is_active", ConsentFilter, ReadyTemplateFilter)
    readonly_fields = ("consent_record", "training_consent_record")
    empty_value_display = EMPTY
    fieldsets = (
        (None, {"fields": ("employee_number", "name", "email", "department", "is_active")}),
        ("Biometric consent", {"fields": ("consent", "consent_record", "training_consent", "training_consent_record")}),
        ("Photos", {"fields": ("photos",)}),
    )
    inlines = [FaceTemplateInline]
    actions = ["deactivate", "reactivate", "record_consent", "retry_rejected_photos"]

    class Media:
        css = {"all": ["identity/enroll.css", "identity/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # A held duplicate shows on both employees: the one whose photo it is, and the one it resembles.
        own = _first_held(employee=OuterRef("pk"))
        resembling = _first_held(possible_duplicate_of=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                ready_count=Count("templates", filter=Q(templates__status=READY), distinct=True),
                pending_count=Count("templates", filter=Q(templates__status=PENDING), distinct=True),
                rejected_count=Count("templates", filter=Q(templates__status=REJECTED), distinct=True),
                held_id=Subquery(own.values("pk")[:1]),
                held_other_id=Subquery(own.values("possible_duplicate_of")[:1]),
                held_other_name=Subquery(own.values("possible_duplicate_of__name")[:1]),
                resembling_id=Subquery(resembling.values("pk")[:1]),
                resembling_other_id=Subquery(resembling.values("employee")[:1]),
                resembling_other_name=Subquery(resembling.values("employee__name")[:1]),
            )
        )

    # Columns and read-only fields

    @admin.display(description="employee", ordering="name")
    def employee(self, employee: Employee) -> str:
        return format_html('{}<span class="employee-number">{}</span>', employee.name, employee.employee_number)

    @admin.display(description="active", boolean=True, ordering="is_active")
    def active(self, employee: Employee) -> bool:
        return employee.is_active

    @admin.display(description="department", ordering="department")
    def department_name(self, employee: Employee) -> str:
        return employee.department or EMPTY

    @admin.display(description="consent", boolean=True, ordering="consent_recorded_at")
    def consent_given(self, employee: Employee) -> bool:
        return employee.consent_recorded_at is not None

    @admin.display(description="photos", ordering="ready_count")
    def photo_counts(self, employee: Employee) -> str:
        others = []
        if employee.pending_count:
            others.append(f"{employee.pending_count} being checked")
        if employee.rejected_count:
            others.append(f"{employee.rejected_count} rejected")
        if employee.ready_count:
            return ", ".join([f"{employee.ready_count} ready", *others])
        return format_html(
            '<span class="not-enrolled">not enrolled yet</span>{}', f" ({', '.join(others)})" if others else ""
        )

    @admin.display(description="warning")
    def duplicate(self, employee: Employee) -> str:
        if employee.held_id is not None:
            template_id, other_id, other_name = employee.held_id, employee.held_other_id, employee.held_other_name
        elif employee.resembling_id is not None:
            template_id, other_id = employee.resembling_id, employee.resembling_other_id
            other_name = employee.resembling_other_name
        else:
            return EMPTY
        return duplicate_flag(template_id, (other_id, other_name), reverse("admin:identity_employee_changelist"))

    @admin.display(description="consent record")
    def consent_record(self, employee: Employee) -> str:
        if employee.consent_recorded_at is None:
            return "Not recorded: photos are refused until consent is recorded."
        recorded_by = employee.consent_recorded_by
        by = f" by {recorded_by.get_username()}" if recorded_by else ""
        return f"Recorded {local_time(employee.consent_recorded_at)}{by}."

    @admin.display(description="training consent record")
    def training_consent_record(self, employee: Employee) -> str:
        if employee.training_consent_recorded_at is None:
            return "Not recorded: their faces are not used to improve recognition."
        recorded_by = employee.training_consent_recorded_by
        by = f" by {recorded_by.get_username()}" if recorded_by else ""
        return f"Recorded {local_time(employee.training_consent_recorded_at)}{by}."

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
                format_html(
                    "Consent withdrawn: no new photo will be accepted. The photos already enrolled are still "
                    "used until you erase them: {} (every photo, face, embedding and captured frame of theirs; "
                    "attendance stays).", _erasure_link(employee, "consent withdrawn"),
                ),
                messages.WARNING,
            )
        self._record_training_consent(request, employee, form)
        super().save_model(request, employee, form, change)

    def _record_training_consent(self, request: HttpRequest, employee: Employee, form) -> None:
        agreed = form.cleaned_data.get("training_consent")
        if agreed and employee.training_consent_recorded_at is None:
            employee.training_consent_recorded_at = timezone.now()
            employee.training_consent_recorded_by = request.user
        elif not agreed and employee.training_consent_recorded_at is not None:
            employee.training_consent_recorded_at = None
            employee.training_consent_recorded_by = None
            self.message_user(
                request,
                format_html(
                    "Training consent withdrawn: their photos and captures are no longer used to improve "
                    "recognition. What was already made from them (automatic templates, training caches) stays "
                    "until you erase it: {} (all of their faces; attendance stays).",
                    _erasure_link(employee, "training consent withdrawn"),
                ),
                messages.WARNING,
            )

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
            return HttpResponseRedirect(employee_url(employee.pk))
        return response

    # The change page's progress panel, duplicate reviews and camera

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
            extra_context["duplicate_reviews"] = self._duplicate_reviews(int(object_id))
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _duplicate_reviews(self, employee_id: int) -> list[dict]:
        """The held duplicates this employee is part of, for the banner on top of the page."""
        employee = Employee.objects.filter(pk=employee_id).first()
        if employee is None:
            return []
        reviews = []
        for template in duplicates.held_for(employee):
            own = template.employee_id == employee_id
            other = template.possible_duplicate_of if own else template.employee
            reviews.append({
                "own": own,
                "other": other,
                "other_url": employee_url(other.pk),
                "review_url": review_url(template.pk, employee_url(employee_id)),
            })
        return reviews

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
class FaceTemplateAdmin(_TemplateColumns, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every template, to find the rejected or stuck ones; read-only, no adding (photos come
    through the employee page), and never the embedding. Its own views: the uploaded photo, the
    original file, and the review of a possible duplicate."""
    # Never added or changed here (ReadOnlyAdminMixin): what a template holds comes from its photo;
    # retry or delete instead. Deleting differs from the mixin's "never": see has_delete_permission.

    # Few columns, so that the list fits a 1280 px laptop screen: the file and the source go under
    # the employee, the duplicate's advice is on the employee page.
    list_display = ("small_face", "employee_and_file", "status_and_time", "short_result", "listed_duplicate")
    list_display_links = ("status_and_time",)  # the face and the employee columns hold links of their own
    list_filter = ("status", "source", "model_version", "employee__is_active")
    search_fields = ("employee__name", "employee__employee_number", "employee__email", "original_filename")
    list_select_related = ("employee", "model_version", "possible_duplicate_of", "duplicate_decided_by")
    exclude = ("embedding",)
    fields = (
        "employee_link",
        "photo_large",
        "face_large",
        "status",
        "result",
        "measurements",
        "duplicate",
        "origin",
        "model_version",
        "attempts",
        "queued_at",
        "processed_at",
        "created_at",
    )
    readonly_fields = fields
    empty_value_display = EMPTY
    actions = ["retry_templates"]

    class Media:
        css = {"all": ["identity/enroll.css", "identity/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_photo_permission(super().get_queryset(request), request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # HR, who may change templates, may also delete the ones FRID made itself from captures and
        # the ones held as possible duplicates; any other needs the delete permission (Django's own
        # answer, asked of admin.ModelAdmin by name: super() would be the mixin's "never").
        if admin.ModelAdmin.has_delete_permission(self, request, obj):
            return True
        return bool(
            obj is not None and request.user.has_perm("identity.change_facetemplate")
            and (obj.source == CAPTURE or obj.duplicate_decision == UNDECIDED and obj.possible_duplicate_of_id)
        )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("identity.change_facetemplate")

    def get_urls(self):
        own = [
            path("<int:pk>/photo/", self.admin_site.admin_view(self.photo_view), name="identity_facetemplate_photo"),
            path("<int:pk>/original/", self.admin_site.admin_view(self.original_view),
                 name="identity_facetemplate_original"),
            path("<int:pk>/duplicate/", self.admin_site.admin_view(self.duplicate_view),
                 name="identity_facetemplate_duplicate"),
        ]
        return own + super().get_urls()

    @admin.display(description="employee", ordering="employee__name")
    def employee_link(self, template: FaceTemplate) -> str:
        return format_html('<a href="{}">{}</a>', employee_url(template.employee_id), str(template.employee))

    @admin.display(description="face")
    def small_face(self, template: FaceTemplate) -> str:
        return face_thumbnail(template, size=50)

    @admin.display(description="employee and file", ordering="employee__name")
    def employee_and_file(self, template: FaceTemplate) -> str:
        return format_html(
            '{}<span class="photo-file-name">{}</span><span class="template-source">{}</span>',
            self.employee_link(template), file_name(template), source_description(template),
        )

    @admin.display(description="status", ordering="status")
    def status_and_time(self, template: FaceTemplate) -> str:
        if template.processed_at is None:
            return template.get_status_display()
        return format_html(
            '{}<span class="template-checked">{}</span>',
            template.get_status_display(), local_time(template.processed_at),
        )

    @admin.display(description="duplicate")
    def listed_duplicate(self, template: FaceTemplate) -> str:
        if template.duplicate_decision != UNDECIDED or template.possible_duplicate_of is None:
            return duplicate_warning(template)
        return duplicate_flag(
            template.pk, template.possible_duplicate_of, reverse("admin:identity_facetemplate_changelist")
        )

    @admin.display(description="uploaded photo")
    def photo_large(self, template: FaceTemplate) -> str:
        return uploaded_photo(template, 480) or "None kept: the face was taken from a verified capture."

    @admin.display(description="face")
    def face_large(self, template: FaceTemplate) -> str:
        return face_thumbnail(template, size=150)

    @admin.display(description="result")
    def short_result(self, template: FaceTemplate) -> str:
        return Truncator(template.reason).chars(90) if template.status == REJECTED else EMPTY

    @admin.action(description="Check the selected photos again", permissions=["retry"])
    def retry_templates(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = tasks.retry_templates(queryset)
        ready = queryset.filter(status=READY).count()
        note = f" {plural(ready, 'ready photo was', 'ready photos were')} left as they are." if ready else ""
        self.message_user(request, f"{plural(count, 'photo')} sent to be checked again.{note}")

    # The uploaded photo: personal data, for staff with its own permission, never cached.

    def photo_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The uploaded photo, upright and scaled down, with the face boxes found drawn on it."""
        template = self._with_photo(request, pk)
        side = LARGE_PHOTO_SIDE if request.GET.get("side") == "large" else SMALL_PHOTO_SIDE
        with template.source_image.open("rb") as stream:
            preview = previews.photo_preview(stream.read(), template.found_boxes or (), side)
        if preview is None:
            raise Http404("This file cannot be shown as a photo.")
        return _private(HttpResponse(preview, content_type="image/jpeg"))

    def original_view(self, request: HttpRequest, pk: int) -> FileResponse:
        """The file exactly as uploaded, as a download (never shown inline: it may be no image)."""
        template = self._with_photo(request, pk)
        response = FileResponse(
            template.source_image.open("rb"), as_attachment=True, filename=file_name(template),
            content_type="application/octet-stream",
        )
        return _private(response)

    def _with_photo(self, request: HttpRequest, pk: int) -> FaceTemplate:
        if not request.user.has_perm(PHOTO_PERMISSION):
            raise PermissionDenied
        template = get_object_or_404(FaceTemplate, pk=pk)
        if not template.source_image or not template.source_image.storage.exists(template.source_image.name):
            raise Http404("The uploaded photo is missing from storage.")
        return template

    # A possible duplicate: HR's decision

    def duplicate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the two employees side by side and what each choice does; POST: the decision."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        template = get_object_or_404(
            FaceTemplate.objects.select_related("employee", "possible_duplicate_of", "duplicate_decided_by"), pk=pk
        )
        back_to = self._back_to(request, template)
        if request.method == "POST":
            return self._decide(request, template, request.POST.get("decision", ""), back_to)
        try:
            plan = duplicates.merge_plan(template)
        except duplicates.AlreadyDecided as error:
            self.message_user(request, str(error), messages.WARNING)
            return HttpResponseRedirect(back_to)
        template.photo_allowed = request.user.has_perm(PHOTO_PERMISSION)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Possible duplicate: same person or not?",
            "template": template,
            "other": template.possible_duplicate_of,
            "photo": uploaded_photo(template, 240),
            "face": face_thumbnail(template, 150),
            "other_faces": [
                face_thumbnail(face, 150)
                for face in template.possible_duplicate_of.templates.filter(status=READY).select_related("employee")[:3]
            ],
            "plan": plan,
            "back_to": back_to,
            "may_merge": self._may_merge(request),
            "may_decide": request.user.has_perm("identity.change_facetemplate"),
            "may_delete": self.has_delete_permission(request, template),
        }
        return TemplateResponse(request, "admin/identity/facetemplate/duplicate_review.html", context)

    def _decide(self, request: HttpRequest, template: FaceTemplate, decision: str, back_to: str) -> HttpResponse:
        try:
            if decision == "merge" and self._may_merge(request):
                merged = duplicates.merge(template, request.user)
                self.message_user(request, merge_message(merged))
                self.log_change(request, merged.plan.older, f"Merged {merged.plan.newer} into this record.")
                return HttpResponseRedirect(employee_url(merged.plan.older.pk))
            if decision == "keep_both" and request.user.has_perm("identity.change_facetemplate"):
                decided = duplicates.keep_both(template, request.user)
                self.message_user(
                    request,
                    f"Recorded: {template.employee} and {template.possible_duplicate_of} are different people. "
                    f"{plural(decided, 'photo is', 'photos are')} used for recognition again.",
                )
                self.log_change(request, template, "Possible duplicate: different people, both kept.")
                return HttpResponseRedirect(back_to)
            if decision == "delete" and self.has_delete_permission(request, template):
                self.log_deletions(request, FaceTemplate.objects.filter(pk=template.pk))
                duplicates.delete(template)
                self.message_user(request, f"The photo {file_name(template)} of {template.employee} was deleted.")
                return HttpResponseRedirect(back_to)
        except duplicates.AlreadyDecided as error:
            self.message_user(request, str(error), messages.WARNING)
            return HttpResponseRedirect(back_to)
        raise PermissionDenied

    def _may_merge(self, request: HttpRequest) -> bool:
        return request.user.has_perm("identity.change_facetemplate") and request.user.has_perm(
            "identity.change_employee"
        )

    @staticmethod
    def _back_to(request: HttpRequest, template: FaceTemplate) -> str:
        back_to = request.POST.get("next") or request.GET.get("next") or ""
        if back_to and url_has_allowed_host_and_scheme(back_to, {request.get_host()}, request.is_secure()):
            return back_to
        return employee_url(template.employee_id)


def _erasure_link(employee: Employee, reason: str) -> str:
    """The offer to erase, where HR records a withdrawal of consent (identity.admin_erasure)."""
    url = reverse("admin:identity_erasure_erase", args=[employee.pk])
    return format_html('<a class="erase-link" href="{}?{}">Erase biometric data</a>', url, urlencode({"reason": reason}))


def merge_message(merged: duplicates.Merged) -> str:
    """What a merge did, in plain words: where the photos went and what became of the newer record."""
    plan = merged.plan
    belong = "belongs" if plan.photos == 1 else "belong"
    moved = f"{plural(plan.photos, 'photo')} of {plan.newer} now {belong} to {plan.older}."
    if plan.deletes_newer:
        fate = f"{plan.newer} had no attendance or verification attempts, so the record was deleted."
    else:
        events = plural(plan.history.attendance_events, "attendance event")
        attempts = plural(plan.history.attempts, "verification attempt")
        fate = f"{plan.newer} was kept, deactivated, with its {events} and {attempts}: they stay on that record."
    account = f" Its login now belongs to {plan.older}." if merged.account_moved else ""
    return f"Merged: {moved} {fate}{account}"


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    return response


from identity import admin_imports  # noqa: F401,E402
from identity import admin_audit  # noqa: F401,E402
from identity import admin_versions  # noqa: F401,E402
from identity import admin_erasure  # noqa: F401,E402
from identity import admin_lockouts  # noqa: F401,E402
