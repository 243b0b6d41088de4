"""The network's versions in the admin: read-only, with activation and roll-back as explicit,
audited actions. Here rather than in training/admin.py because switching a version re-embeds the
employees' photos (identity.switching), and training knows nothing of employees."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from frid_site.admin_read_only import ReadOnlyAdminMixin
from identity import switching, tasks
from training.models import ModelVersion, ModelVersionEvent

Action = ModelVersionEvent.Action


class ModelVersionEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ModelVersionEvent
    fk_name = "version"
    fields = ("created_at", "action", "by_name", "previous", "details")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "history (who did what, and when)"


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Read-only (ReadOnlyAdminMixin): versions come from import_base_model and training runs, the
    # change page is a view page, and templates and attempts name their version (never deleted).
    list_display = ("name", "is_active", "threshold", "calibrated_on", "parent", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "notes")
    # Nothing here is typed in: thresholds come from calibration (calibrate_model, training runs),
    # with who and when in the history below.
    fields = ("name", "is_active", "threshold", "threshold_source", "parent", "file", "sha256",
              "embedding_size", "alignment", "mirror", "gate_verdict", "notes", "created_at")
    readonly_fields = fields
    inlines = [ModelVersionEventInline]
    change_form_template = "admin/training/modelversion/change_form.html"

    @admin.display(description="calibrated on")
    def calibrated_on(self, version: ModelVersion) -> str:
        return version.threshold_source

    @admin.display(description="the gate's verdict")
    def gate_verdict(self, version: ModelVersion) -> str:
        gate = version.metrics.get("gate")
        if not gate:
            return "—"
        return format_html("<strong>{}</strong> {}", "accepted:" if gate.get("accepted") else "rejected:",
                           " ".join(gate.get("reasons", [])))

    def get_urls(self):
        return [
            path("<int:pk>/switch/<str:action>/", self.admin_site.admin_view(self.switch_view),
                 name="training_modelversion_switch"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = get_object_or_404(ModelVersion, pk=object_id)
        context = {**(extra_context or {}), "switch_offer": self.switch_offer(request, version)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def switch_offer(self, request, version: ModelVersion) -> dict | None:
        """The activate or roll-back button this version offers, or why it offers none."""
        if version.is_active or not request.user.has_perm("training.activate_modelversion"):
            return None
        was_active = version.events.filter(action__in=[Action.ACTIVATED, Action.ROLLED_BACK]).exists()
        action = Action.ROLLED_BACK if was_active else Action.ACTIVATED
        refusal = activation_refusal(version, was_active)
        missing = switching.missing_embeddings(version).count()
        return {"action": action, "label": "Roll back to this version" if was_active else "Activate this version",
                "refusal": refusal, "missing": missing,
                "url": reverse("admin:training_modelversion_switch", args=[version.pk, action])}

    def switch_view(self, request, pk: int, action: str):
        if not request.user.has_perm("training.activate_modelversion"):
            raise PermissionDenied
        version = get_object_or_404(ModelVersion, pk=pk)
        offer = self.switch_offer(request, version)
        change_url = reverse("admin:training_modelversion_change", args=[pk])
        if offer is None or offer["action"] != action or offer["refusal"]:
            messages.error(request, (offer or {}).get("refusal") or f"{version.name} cannot be switched to now.")
            return redirect(change_url)
        if request.method != "POST":
            return TemplateResponse(request, "admin/training/modelversion/switch_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta, "version": version,
                "offer": offer, "active": ModelVersion.objects.filter(is_active=True).first(),
                "title": f"{offer['label']}: {version.name}",
            })
        if not tasks.send_switch(version, by=request.user, action=action):
            messages.error(request, "The switch could not be queued: the task broker is unreachable. Nothing "
                                    "changed and search keeps the active version; try again once it is back.")
            return redirect(change_url)
        messages.success(request, (
            f"Switching to {version.name}: {offer['missing']} photo(s) are being embedded with it in the "
            f"background; search keeps using the active version until every photo has an embedding, then "
            f"switches at once. Reload this page to see it become active."
        ))
        return redirect(change_url)


def activation_refusal(version: ModelVersion, was_active: bool) -> str:
    """Why HR may not switch to this version, in plain words ("" when it may)."""
    if was_active:
        return ""
    gate = version.metrics.get("gate")
    if gate is not None and not gate.get("accepted"):
        return (f"{version.name} was rejected by the quality gate and is kept for inspection only: "
                f"{' '.join(gate.get('reasons', []))}")
    if not version.events.filter(action__in=[Action.CALIBRATED, Action.IMPORTED]).exists():
        return f"{version.name}'s thresholds have not been calibrated yet: it cannot be searched with."
    return ""

