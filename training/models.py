"""Versions of the embedding network.

Embeddings made by different versions (or different alignments) live side by side but are never
compared with each other: every template and every query names its model version.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

# How chips are cut: dlib's 5-point alignment to 150x150 with 25% padding (get_face_chip).
DLIB_ALIGNMENT = "dlib-5point-150-pad25"
# The chance that a stranger matches SOMEONE among all enrolled faces that FRID aims for.
OPEN_SET_FALSE_MATCH_RATE = 1e-2
# The margin rule of 1:N searches: the nearest employee must be nearer than the second-nearest by
# this much. Calibrated together with the thresholds (calibrate_model --open-set): on LFW DevTrain at
# 1% of strangers accepted, margins of 0, 0.04, 0.06, 0.08 and 0.10 find 74%, 78%, 82%, 84% and 82%
# of 200 enrolled people (scratch simulation, 2026-12-02; the command reports its own figures).
DEFAULT_OPEN_SET_MARGIN = 0.08
# What a calibration stores in ModelVersion.metrics (training.calibration).
CALIBRATION_KEYS = ("calibration_points", "calibration", "open_set")


class ModelVersionQuerySet(models.QuerySet):
    def active(self) -> "ModelVersion":
        """The version that enrollment and verification use now."""
        version = self.filter(is_active=True).first()
        if version is None:
            raise ModelVersion.DoesNotExist(
                "No active model version. Run `python manage.py import_base_model` to import the "
                "base network."
            )
        return version


class ModelVersion(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    file = models.CharField(max_length=255, help_text="Saved Keras network, relative to the model store.")
    sha256 = models.CharField(max_length=64)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    embedding_size = models.PositiveSmallIntegerField(default=128)
    alignment = models.CharField(max_length=50, default=DLIB_ALIGNMENT)
    mirror = models.BooleanField(
        default=True, help_text="Embeddings average the chip and its mirror image."
    )
    threshold = models.FloatField(help_text="Euclidean distance at or below which two faces match.")
    threshold_source = models.CharField(max_length=255, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("activate_modelversion", "Can activate a model version or roll back to one")]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_model_version"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def path(self) -> Path:
        return Path(settings.FRID_MODEL_DIR) / self.file

    def activate(self, *, by=None, by_name: str = "", action: str = "activated", details: dict | None = None) -> None:
        """Make this the version enrollment and verification use, recording who did it. Stored
        embeddings must already be of this version (identity.switching does that first)."""
        with transaction.atomic():
            previous = ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=self.pk).first()
            ModelVersion.objects.filter(is_active=True).exclude(pk=self.pk).update(is_active=False)
            ModelVersion.objects.filter(pk=self.pk).update(is_active=True)
            self.record(action, by=by, by_name=by_name, previous=previous, details=details)
        self.is_active = True

    def save_calibration(self, calibration: dict, *, by=None, by_name: str = "") -> None:
        """Store thresholds chosen by calibration (training.calibration), never typed in by hand."""
        self.threshold = round(calibration["threshold"], 4)
        self.threshold_source = calibration["threshold_source"][:255]
        self.metrics = {**self.metrics, **{key: calibration[key] for key in CALIBRATION_KEYS if key in calibration}}
        with transaction.atomic():
            self.save(update_fields=["threshold", "threshold_source", "metrics"])
            self.record(ModelVersionEvent.Action.CALIBRATED, by=by, by_name=by_name,
                        details={"threshold": self.threshold, "source": self.threshold_source})

    def record(self, action: str, *, by=None, by_name: str = "", previous=None, details: dict | None = None):
        return ModelVersionEvent.objects.create(
            version=self, action=action, previous=previous, by=by,
            by_name=by_name or (by.get_username() if by is not None else "FRID"), details=details or {},
        )

    @property
    def open_set_margin(self) -> float | None:
        """The margin of the 1:N margin rule this version was calibrated with (None: no rule)."""
        calibrated = self.metrics.get("open_set") or {}
        return calibrated.get("margin")

    def threshold_for_gallery(self, templates: int, false_match_rate: float = OPEN_SET_FALSE_MATCH_RATE,
                              margin: float | None = None) -> float:
        """The threshold for searching ``templates`` faces at once (1:N), never above ``threshold``.

        With ``margin`` (the version's calibrated ``open_set_margin``), the threshold comes from
        ``metrics["open_set"]["points"]`` ([[gallery size, threshold], ...], simulated searches of
        galleries that accept 1% of strangers under the margin rule: calibrate_model --open-set),
        interpolated in log gallery size; beyond the largest calibrated gallery it tightens as the
        bound below does.

        Without a margin (duplicate warnings), a stranger compared with N templates matches one of
        them with probability up to N times the per-comparison false-match rate, so each comparison
        must meet ``false_match_rate / N``: the threshold for that rate is interpolated (in log rate)
        between ``metrics["calibration_points"]`` ([[rate, threshold], ...]); beyond the smallest
        calibrated rate the smallest threshold is used.
        """
        if templates <= 1:
            return self.threshold
        calibrated = self.metrics.get("open_set") or {}
        if margin is not None and calibrated.get("margin") == margin and calibrated.get("points"):
            return min(self.threshold, self._open_set_threshold(templates, calibrated["points"], false_match_rate))
        return self._bound_threshold(templates, false_match_rate)

    def _open_set_threshold(self, templates: int, points: list, false_match_rate: float) -> float:
        points = sorted(points)
        sizes = [math.log10(size) for size, _ in points]
        thresholds = [threshold for _, threshold in points]
        wanted = math.log10(templates)
        if wanted <= sizes[0]:
            return thresholds[0]
        if wanted >= sizes[-1]:
            largest = points[-1][0]
            tightening = self._bound_threshold(largest, false_match_rate) - self._bound_threshold(templates, false_match_rate)
            return thresholds[-1] - tightening
        return float(numpy.interp(wanted, sizes, thresholds))

    def _bound_threshold(self, templates: int, false_match_rate: float) -> float:
        points = sorted(self.metrics.get("calibration_points") or [])
        if not points or templates <= 1:
            return self.threshold
        wanted = math.log10(false_match_rate / templates)
        rates = [math.log10(rate) for rate, _ in points]
        thresholds = [threshold for _, threshold in points]
        if wanted <= rates[0]:
            return min(self.threshold, thresholds[0])
        for (low_rate, low), (high_rate, high) in zip(zip(rates, thresholds), zip(rates[1:], thresholds[1:])):
            if wanted <= high_rate:
                share = (wanted - low_rate) / (high_rate - low_rate)
                return min(self.threshold, low + share * (high - low))
        return self.threshold

    def embedder(self):
        """This version's network, loaded once per process (imports TensorFlow on first use)."""
        from training.embedder import cached_embedder

        return cached_embedder(str(self.path), self.mirror)

    def engine(self, live: bool = False):
        """The face engine (detection, alignment, quality, this version's network); ``live`` for
        camera frames at a kiosk (training.engine.FaceEngine)."""
        from training.engine import FaceEngine

        return FaceEngine(self.embedder(), live=live)


class ModelVersionEvent(models.Model):
    """What happened to a model version and who did it: imported, trained, calibrated, activated,
    rolled back. Versions are read-only in the admin; these rows are their history."""

    class Action(models.TextChoices):
        IMPORTED = "imported", "imported"
        TRAINED = "trained", "trained"
        CALIBRATED = "calibrated", "thresholds calibrated"
        ACTIVATED = "activated", "activated"
        ROLLED_BACK = "rolled_back", "rolled back to"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20, choices=Action.choices)
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The version that was active before (activation and roll-back).",
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    by_name = models.CharField(
        max_length=150, blank=True, help_text="Who or what did it: a user name, or the command or task."
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.version} {self.get_action_display()} by {self.by_name or 'FRID'}"


class TrainingRunQuerySet(models.QuerySet):
    def unfinished(self):
        return self.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING])


class TrainingRun(models.Model):
    """One fine-tuning of the network: queued (admin, schedule or command), claimed by one worker
    at a time, and ended accepted (succeeded: the candidate became active), rejected by the gate,
    or failed (retryable)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        REJECTED = "rejected", "rejected by the gate"
        FAILED = "failed", "failed"

    class Trigger(models.TextChoices):
        ADMIN = "admin", "train now (admin)"
        SCHEDULE = "schedule", "schedule"
        COMMAND = "command", "train_model command"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.ADMIN)
    parameters = models.JSONField(default=dict, blank=True)
    phase = models.CharField(max_length=100, blank=True, help_text="What the run is doing now.")
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    losses = models.JSONField(
        default=list, blank=True, help_text="Per epoch: {epoch, loss, validation_loss}."
    )
    metrics_before = models.JSONField(default=dict, blank=True)
    metrics_after = models.JSONField(default=dict, blank=True)
    gate = models.JSONField(default=dict, blank=True, help_text="The gate's verdict and its reasons.")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    base_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The version training started from.",
    )
    candidate = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs",
        help_text="The trained version (kept for inspection when rejected).",
    )
    worker = models.CharField(max_length=200, blank=True, help_text="The host and process that ran it.")
    task_id = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One run at a time: a second worker's claim fails on this index.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="running"), name="one_running_training_run"
            )
        ]

    def __str__(self) -> str:
        return f"Training run {self.pk} ({self.get_status_display()})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()
