"""Training runs in the admin: "train now", the schedule, each run's page (progress, loss per epoch
and ROC before/after as plots, the gate's verdict, the log) and "retry" for a failed run.

Model versions are administered in identity/admin_versions.py: switching one re-embeds employees'
photos, which training knows nothing of.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from frid_site.admin_read_only import ReadOnlyAdminMixin
from training import runs, tasks
from training.models import TrainingRun

SCHEDULE_TASK = "training.tasks.train_on_schedule"


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Read-only (ReadOnlyAdminMixin): "train now" queues a run, nothing is typed in; but superusers may
    # delete a run that is not running (has_delete_permission below).
    list_display = ("__str__", "status", "trigger", "phase", "progress_percent", "candidate", "created_at", "duration")
    list_filter = ("status", "trigger")
    fields = ("status", "trigger", "phase", "progress_percent", "created_by", "created_at", "started_at",
              "finished_at", "duration", "worker", "base_version", "candidate", "error", "parameters")
    readonly_fields = fields
    change_list_template = "admin/training/trainingrun/change_list.html"
    change_form_template = "admin/training/trainingrun/change_form.html"

    @admin.display(description="progress")
    def progress_percent(self, run: TrainingRun) -> str:
        return f"{run.progress:.0%}"

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        seconds = run.duration_seconds
        if seconds is None:
            return "—"
        minutes, seconds = divmod(int(seconds), 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"

    def has_delete_permission(self, request, obj=None):
        # Unlike the mixin's "never": superusers may delete a run that is not running.
        return request.user.is_superuser and (obj is None or obj.status not in (TrainingRun.Status.RUNNING,))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("train-now/", view(require_POST(self.train_now_view)), name="training_trainingrun_train_now"),
            path("<int:pk>/retry/", view(require_POST(self.retry_view)), name="training_trainingrun_retry"),
            path("<int:pk>/stop/", view(require_POST(self.stop_view)), name="training_trainingrun_stop"),
            path("<int:pk>/status/", view(self.status_view), name="training_trainingrun_status"),
            path("<int:pk>/losses.png", view(self.losses_plot_view), name="training_trainingrun_losses"),
            path("<int:pk>/roc.png", view(self.roc_plot_view), name="training_trainingrun_roc"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {}), "can_train": request.user.has_perm("training.add_trainingrun"),
                   "schedule": training_schedule(), "unfinished": TrainingRun.objects.unfinished().first()}
        return super().changelist_view(request, extra_context=context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = get_object_or_404(TrainingRun, pk=object_id)
        context = {**(extra_context or {}), "run": run, "figures": figures_table(run),
                   "can_train": request.user.has_perm("training.add_trainingrun"),
                   "unfinished": run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    # --- Actions -------------------------------------------------------------------------------

    def train_now_view(self, request):
        if not request.user.has_perm("training.add_trainingrun"):
            raise PermissionDenied
        run, created = tasks.start_run(TrainingRun.Trigger.ADMIN, by=request.user)
        if created:
            messages.success(request, f"Training run {run.pk} is queued. This page shows its progress; training "
                                      f"runs at low priority, so kiosks stay fast meanwhile.")
        else:
            messages.warning(request, f"Training run {run.pk} is already {run.get_status_display()}: one run at "
                                      f"a time. Here is its progress.")
        return redirect(reverse("admin:training_trainingrun_change", args=[run.pk]))

    def retry_view(self, request, pk: int):
        if not request.user.has_perm("training.add_trainingrun"):
            raise PermissionDenied
        run = get_object_or_404(TrainingRun, pk=pk)
        try:
            again = tasks.retry_run(run, by=request.user)
        except runs.RunFailed as error:
            messages.error(request, str(error))
            return redirect(reverse("admin:training_trainingrun_change", args=[pk]))
        messages.success(request, f"Run {run.pk} is queued again as run {again.pk}, with the same parameters.")
        return redirect(reverse("admin:training_trainingrun_change", args=[again.pk]))

    def stop_view(self, request, pk: int):
        if not request.user.has_perm("training.add_trainingrun"):
            raise PermissionDenied
        run = get_object_or_404(TrainingRun, pk=pk)
        if runs.stop(run, by=request.user):
            messages.success(request, f"Run {run.pk} is stopping; nothing it trained will be used.")
        else:
            messages.error(request, f"Run {run.pk} is {run.get_status_display()}: there is nothing to stop.")
        return redirect(reverse("admin:training_trainingrun_change", args=[pk]))

    # --- What the run page polls and shows -----------------------------------------------------------

    def status_view(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        return JsonResponse({"status": run.status, "status_display": run.get_status_display(), "phase": run.phase,
                             "progress": run.progress, "epochs": len(run.losses),
                             "finished": run.finished_at is not None})

    def losses_plot_view(self, request, pk: int):
        from training import gate

        run = get_object_or_404(TrainingRun, pk=pk)
        return _png(gate.plot_losses(run.losses) if run.losses else None)

    def roc_plot_view(self, request, pk: int):
        from training import gate

        run = get_object_or_404(TrainingRun, pk=pk)
        if not (run.metrics_before and run.metrics_after):
            return _png(None)
        return _png(gate.plot_roc(run.metrics_before, run.metrics_after))


def _png(data: bytes | None) -> HttpResponse:
    if data is None:
        return HttpResponse("Nothing to plot yet.", status=404, content_type="text/plain")
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "no-store"
    return response


def training_schedule():
    """The periodic task that starts scheduled runs (django-celery-beat), for the run list's link."""
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.filter(task=SCHEDULE_TASK).select_related("crontab").first()


FIGURE_ROWS = (
    ("TAR at FAR 1e-3", "tar_at_far_1e-3", "{:.2%}"),
    ("equal error rate", "eer", "{:.2%}"),
    ("images", "images", "{:,}"),
    ("people", "identities", "{:,}"),
    ("genuine pairs", "genuine_pairs", "{:,}"),
    ("impostor pairs", "impostor_pairs", "{:,}"),
)


def figures_table(run: TrainingRun) -> list[dict]:
    """Rows of before/after figures on the validation and reference sets, formatted."""
    rows = []
    for title, key, template in FIGURE_ROWS:
        row = {"title": title, "cells": []}
        for which in ("validation", "reference"):
            for metrics in (run.metrics_before, run.metrics_after):
                value = (metrics.get(which) or {}).get(key)
                row["cells"].append("—" if value is None else template.format(value))
        rows.append(row)
    return rows if run.metrics_before else []

