"""People and their faces: employees and the face templates they are recognised by."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from pgvector.django import HnswIndex, L2Distance, VectorField

from training.models import ModelVersion


class EmployeeQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Employee(models.Model):
    employee_number = models.CharField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    department = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive employees keep their templates but are never recognised."
    )
    consent_recorded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the employee's consent to biometric processing was recorded."
    )
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EmployeeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.employee_number})"

    def record_consent(self, user) -> None:
        self.consent_recorded_at = timezone.now()
        self.consent_recorded_by = user
        self.save(update_fields=["consent_recorded_at", "consent_recorded_by"])


class FaceTemplateQuerySet(models.QuerySet):
    def searchable(self, version: ModelVersion):
        """Templates a face may be matched against: ready, of active employees, of this version."""
        return self.filter(status=FaceTemplate.Status.READY, employee__is_active=True, model_version=version)

    def nearest(self, embedding, version: ModelVersion):
        """Searchable templates ordered by Euclidean distance to ``embedding`` (HNSW index)."""
        return (
            self.searchable(version)
            .annotate(distance=L2Distance("embedding", list(map(float, embedding))))
            .order_by("distance")
        )


def _source_path(template: "FaceTemplate", filename: str) -> str:
    return f"faces/{template.employee_id}/{timezone.now():%Y%m%d%H%M%S}-{filename[-60:]}"


class FaceTemplate(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        READY = "ready", "ready"
        REJECTED = "rejected", "rejected"

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="templates")
    source_image = models.FileField(upload_to=_source_path, max_length=255)
    chip = models.FileField(upload_to="chips/", blank=True, max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Why the photo was rejected, and what to do.")
    box = models.JSONField(null=True, blank=True)  # [left, top, right, bottom] in the source photo
    landmarks = models.JSONField(null=True, blank=True)  # five [x, y] points
    quality = models.JSONField(null=True, blank=True)  # face_size, sharpness, brightness, yaw, pitch, roll
    embedding = VectorField(dimensions=128, null=True, blank=True)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    possible_duplicate_of = models.ForeignKey(
        Employee, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Another employee whose face this one matches.",
    )
    duplicate_distance = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = FaceTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            HnswIndex(
                name="facetemplate_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_l2_ops"],
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="ready") | (Q(embedding__isnull=False) & Q(model_version__isnull=False)),
                name="ready_template_has_embedding",
            )
        ]

    def __str__(self) -> str:
        return f"{self.employee.name}: {self.get_status_display()}"


class BulkImport(models.Model):
    """A zip of employees' photos uploaded in the admin, imported in the background."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    archive = models.FileField(upload_to="imports/", max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_photos = models.PositiveIntegerField(default=0)
    processed_photos = models.PositiveIntegerField(default=0)
    enrolled_photos = models.PositiveIntegerField(default=0)
    rejected_photos = models.PositiveIntegerField(default=0)
    employees_created = models.PositiveIntegerField(default=0)
    report = models.TextField(blank=True, help_text="What was enrolled and rejected, photo by photo.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.get_status_display()})"

    @property
    def percent_done(self) -> int:
        return round(100 * self.processed_photos / self.total_photos) if self.total_photos else 0


@receiver(post_delete, sender=FaceTemplate)
def _delete_face_files(sender, instance: FaceTemplate, **kwargs) -> None:
    # Photos of faces are personal data: they go with their template (and so with the employee),
    # once the deletion is committed.
    names = [field.name for field in (instance.source_image, instance.chip) if field]
    storage = instance.source_image.storage
    transaction.on_commit(lambda: [storage.delete(name) for name in names])
