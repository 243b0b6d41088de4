"""Admin pages for kiosks, the audit of verification attempts, and attendance events.

- Kiosks: a token is generated when a kiosk is added (and on "new token"), shown once in a message,
  and only its SHA-256 is kept; the hash itself is never shown. Disabling takes effect at the
  kiosk's next request. Kiosks are never deleted here: their attempts keep naming them.
- Verification attempts: read-only for everyone, superusers included (the database refuses changes
  anyway). The captured frames are shown only to users allowed to see them, through a staff view.
- Attendance events: read-only for auditors; HR may correct the direction, never add an event
  (events come from verified attempts only).
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from frid_site.admin_read_only import ReadOnlyAdminMixin
from identity import roles
from identity.admin import plural
from identity.models import AttendanceEvent, Kiosk, VerificationAttempt

TOKEN_MESSAGE = (
    "The token of kiosk “{}” is <code class=\"kiosk-token\">{}</code> — enter it in the kiosk's settings. "
    "Copy it now: it will not be shown again."
)
FRAME_PERMISSION = "identity.view_attemptcapture_image"


# --- Kiosks -------------------------------------------------------------------------------------


@admin.register(Kiosk)
class KioskAdmin(admin.ModelAdmin):
    list_display = ("name", "location", "enabled", "last_seen_at")
    list_filter = ("is_active",)
    search_fields = ("name", "location")
    fields = ("name", "location", "is_active", "liveness_required", "created_at", "created_by", "last_seen_at")
    readonly_fields = ("created_at", "created_by", "last_seen_at")
    actions = ["disable", "enable", "new_token"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # its attempts keep naming it: disable it instead

    @admin.display(description="enabled", boolean=True, ordering="is_active")
    def enabled(self, kiosk: Kiosk) -> bool:
        return kiosk.is_active

    def save_model(self, request: HttpRequest, kiosk: Kiosk, form, change: bool) -> None:
        token = None
        if not change:
            token = kiosk.new_token()
            kiosk.created_by = request.user
        super().save_model(request, kiosk, form, change)
        if token:
            self._show_token_once(request, kiosk, token)

    def _show_token_once(self, request: HttpRequest, kiosk: Kiosk, token: str) -> None:
        self.message_user(request, format_html(TOKEN_MESSAGE, kiosk.name, token), messages.WARNING)

    @admin.action(description="Disable the selected kiosks (their token is refused at once)", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, f"{plural(count, 'kiosk')} disabled: their checks are refused from now on.")

    @admin.action(description="Enable the selected kiosks", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, f"{plural(count, 'kiosk')} enabled: they can verify again.")

    @admin.action(description="Give the selected kiosks a new token (the old one stops working)",
                  permissions=["change"])
    def new_token(self, request: HttpRequest, queryset: QuerySet) -> None:
        for kiosk in queryset:
            token = kiosk.new_token()
            kiosk.save(update_fields=["token_hash"])
            self._show_token_once(request, kiosk, token)


# --- Verification attempts ----------------------------------------------------------------------


def _shown(attempt: VerificationAttempt, field: str, admin_view: str | None = None) -> str:
    """A related row of an attempt, linked when it has an admin page, or "#id (deleted)": an
    attempt outlives the employees, kiosks and users it names (its links have no constraint)."""
    related_id = getattr(attempt, f"{field}_id")
    if related_id is None:
        return "—"
    try:
        related = getattr(attempt, field)
    except ObjectDoesNotExist:
        related = None
    if related is None:
        return f"#{related_id} (deleted)"
    if admin_view is None:
        return str(related)
    return format_html('<a href="{}">{}</a>', reverse(admin_view, args=[related_id]), str(related))


@admin.register(VerificationAttempt)
class VerificationAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # An audit record: never added, changed or deleted here, by anyone (ReadOnlyAdminMixin).
    list_display = ("created_at", "mode", "decision", "kiosk_shown", "employee_shown", "distance_shown",
                    "http_status", "latency_ms")
    list_filter = ("decision", "mode", "kiosk")
    date_hierarchy = "created_at"
    search_fields = (
        "=claimed_employee__employee_number",
        "=matched_employee__employee_number",
        "=nearest_employee__employee_number",
    )
    search_help_text = "Employee number: attempts that claimed, matched or came nearest to that employee."
    list_select_related = ("kiosk", "claimed_employee", "matched_employee", "nearest_employee")
    _decision = ("created_at", "mode", "decision", "reason", "http_status", "direction", "event_shown",
                 "liveness_passed", "liveness_reason")
    _who = ("kiosk_shown", "user_shown", "client_address", "claimed_shown", "matched_shown", "nearest_shown")
    _figures = ("distance", "second_distance", "threshold", "margin", "gallery_size", "version_shown",
                "latency_ms")
    readonly_fields = (*_decision, *_who, *_figures, "frames", "quality_shown", "captured_frames",
                       "captured_frames_hidden")

    def get_fieldsets(self, request: HttpRequest, obj=None):
        frames = "captured_frames" if request.user.has_perm(FRAME_PERMISSION) else "captured_frames_hidden"
        return (
            ("Decision", {"fields": self._decision}),
            ("Who and where", {"fields": self._who}),
            ("Distances and model", {"fields": self._figures}),
            ("Frames", {"fields": ("frames", "quality_shown", frames)}),
        )

    @admin.display(description="kiosk", ordering="kiosk__name")
    def kiosk_shown(self, attempt: VerificationAttempt) -> str:
        return _shown(attempt, "kiosk", "admin:identity_kiosk_change")

    @admin.display(description="user")
    def user_shown(self, attempt: VerificationAttempt) -> str:
        return _shown(attempt, "user")

    @admin.display(description="claimed employee")
    def claimed_shown(self, attempt: VerificationAttempt) -> str:
        return _shown(attempt, "claimed_employee", "admin:identity_employee_change")

    @admin.display(description="matched employee")
    def matched_shown(self, attempt: VerificationAttempt) -> str:
        return _shown(attempt, "matched_employee", "admin:identity_employee_change")

    @admin.display(description="nearest employee")
    def nearest_shown(self, attempt: VerificationAttempt) -> str:
        return _shown(attempt, "nearest_employee", "admin:identity_employee_change")

    @admin.display(description="model version")
    def version_shown(self, attempt: VerificationAttempt) -> str:
        return _shown(attempt, "model_version")

    @admin.display(description="employee")
    def employee_shown(self, attempt: VerificationAttempt) -> str:
        """The employee the attempt was about: matched, else claimed, else nearest."""
        for field in ("matched_employee", "claimed_employee", "nearest_employee"):
            if getattr(attempt, f"{field}_id") is not None:
                return _shown(attempt, field)
        return "—"

    @admin.display(description="distance / threshold")
    def distance_shown(self, attempt: VerificationAttempt) -> str:
        if attempt.distance is None:
            return "—"
        threshold = f"{attempt.threshold:.3f}" if attempt.threshold is not None else "?"
        return f"{attempt.distance:.3f} / {threshold}"

    @admin.display(description="attendance event")
    def event_shown(self, attempt: VerificationAttempt) -> str:
        try:
            event = attempt.event
        except ObjectDoesNotExist:
            return "None" if attempt.decision != VerificationAttempt.Decision.VERIFIED else (
                "None: the same check was already recorded a few minutes before."
            )
        return format_html('<a href="{}">{}</a>', reverse("admin:identity_attendanceevent_change", args=[event.pk]),
                           str(event))

    @admin.display(description="quality per frame")
    def quality_shown(self, attempt: VerificationAttempt) -> str:
        if not attempt.quality:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(attempt.quality, indent=2))

    @admin.display(description="captured frames")
    def captured_frames(self, attempt: VerificationAttempt) -> str:
        indexes = list(attempt.captures.order_by("index").values_list("index", flat=True))
        if not indexes:
            return self._no_frames(attempt)
        return format_html_join(
            " ",
            '<a href="{0}"><img class="attempt-frame" src="{0}" width="240" alt="Frame {1} of attempt {2}"></a>',
            ((reverse("identity:attempt-frame", args=[attempt.pk, index]), index + 1, attempt.pk) for index in indexes),
        )

    @admin.display(description="captured frames")
    def captured_frames_hidden(self, attempt: VerificationAttempt) -> str:
        count = attempt.captures.count()
        if not count:
            return self._no_frames(attempt)
        return (f"{plural(count, 'frame')} kept. Seeing them needs the permission "
                "“Can view the captured frames of attempts”: ask an administrator.")

    def _no_frames(self, attempt: VerificationAttempt) -> str:
        days = settings.FRID_CAPTURE_RETENTION_DAYS
        if attempt.frames and timezone.now() - attempt.created_at > timedelta(days=days):
            return f"Deleted: captured frames are kept for {days} days."
        return "None kept for this attempt."


# --- Attendance events --------------------------------------------------------------------------


@admin.register(AttendanceEvent)
class AttendanceEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "employee", "direction", "kiosk", "attempt_shown")
    list_filter = ("direction", "kiosk", ("occurred_at", admin.DateFieldListFilter))
    date_hierarchy = "occurred_at"
    search_fields = ("=employee__employee_number", "employee__name")
    list_select_related = ("employee", "kiosk")
    fields = ("employee", "direction", "occurred_at", "kiosk", "attempt_shown")
    # Only the direction can be corrected (someone who pressed "check-in" on their way out).
    readonly_fields = ("employee", "occurred_at", "kiosk", "attempt_shown")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # events come from verified attempts only

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # HR corrects directions (as through the API's switch); auditors only read.
        return roles.is_hr(request.user) or super().has_change_permission(request, obj)

    @admin.display(description="attempt")
    def attempt_shown(self, event: AttendanceEvent) -> str:
        return format_html(
            '<a href="{}">Attempt {}</a>',
            reverse("admin:identity_verificationattempt_change", args=[event.attempt_id]),
            event.attempt_id,
        )
