"""A photo's way to a face template: kept as pending, embedded by a worker, ready or rejected.

Web processes only store the photo; ``identity.tasks`` queues its task (after the transaction
commits, so a worker never looks for a row that is not there yet). Workers run ``process_templates``: it
claims each pending template, finds the face, checks it is usable, embeds it with the active
model version and stores the result. Nothing here is lost when a worker dies or the broker is
down: the photo and its pending row are already committed, and the requeue task (at worker
start and every minute from beat) queues again whatever is still pending.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import F
from django.utils import timezone

from identity import matching
from identity.models import Employee, FaceTemplate
from training.models import ModelVersion

logger = logging.getLogger(__name__)

BROKER_DOWN_REASON = (
    "Waiting for the background worker: the task queue could not be reached. The photo is kept "
    "and will be processed automatically as soon as the queue is back."
)
NO_MODEL_REASON = "No active model version. An administrator must run `manage.py import_base_model`."


def add_photo(employee: Employee, data: bytes, filename: str) -> FaceTemplate:
    """Keep an uploaded photo as a pending template (identity.tasks queues its embedding; bulk
    imports process their templates themselves, in batches)."""
    check_photo(data, filename)
    template = FaceTemplate(employee=employee)
    template.source_image.save(filename, ContentFile(data), save=False)
    template.save()
    return template


def check_photo(data: bytes, filename: str) -> None:
    """Refuse an upload that is empty or too large, naming the file (forms check before saving)."""
    if len(data) > settings.FRID_MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"{filename} is {len(data) / 1e6:.1f} MB; photos up to "
            f"{settings.FRID_MAX_UPLOAD_BYTES / 1e6:.0f} MB are accepted. Use a smaller photo."
        )
    if not data:
        raise ValidationError(f"{filename} is empty. Choose the photo again.")


def mark_waiting_for_broker(template_ids: list[int]) -> None:
    """The templates' task could not be sent: say so on those still pending."""
    FaceTemplate.objects.filter(pk__in=template_ids, status=FaceTemplate.Status.PENDING).update(
        reason=BROKER_DOWN_REASON
    )


def clear_broker_reason(template_ids: list[int]) -> None:
    FaceTemplate.objects.filter(pk__in=template_ids, reason=BROKER_DOWN_REASON).update(reason="")


def claim_pending_for_requeue(older_than: timedelta | None = None) -> list[int]:
    """The pending templates (queued before ``older_than`` ago, if given), marked as queued now."""
    pending = FaceTemplate.objects.filter(status=FaceTemplate.Status.PENDING)
    if older_than is not None:
        pending = pending.filter(queued_at__lt=timezone.now() - older_than)
    template_ids = list(pending.values_list("pk", flat=True))
    if template_ids:
        FaceTemplate.objects.filter(pk__in=template_ids).update(queued_at=timezone.now())
    return template_ids


def mark_for_retry(template_ids: list[int]) -> int:
    """Make rejected (or stuck) templates pending again, e.g. after a model change."""
    return FaceTemplate.objects.filter(pk__in=template_ids).exclude(status=FaceTemplate.Status.READY).update(
        status=FaceTemplate.Status.PENDING, reason="", queued_at=timezone.now()
    )


def process_templates(template_ids: list[int]) -> list[FaceTemplate]:
    """Embed pending templates (the worker's job); templates no longer pending are skipped."""
    templates = list(
        FaceTemplate.objects.filter(pk__in=template_ids, status=FaceTemplate.Status.PENDING).select_related("employee")
    )
    if not templates:
        return []
    FaceTemplate.objects.filter(pk__in=[t.pk for t in templates]).update(attempts=F("attempts") + 1)
    try:
        version = ModelVersion.objects.active()
    except ModelVersion.DoesNotExist:
        for template in templates:
            _reject(template, NO_MODEL_REASON)
        return templates

    readable, photos = [], []
    for template in templates:
        try:
            with template.source_image.open("rb") as stream:
                photos.append(stream.read())
            readable.append(template)
        except FileNotFoundError:
            _reject(template, "The uploaded photo is missing from storage. Upload it again.")
    for template, analysis in zip(readable, version.engine().analyse_photos(photos)):
        if analysis.problem:
            _reject(template, analysis.problem)
        else:
            _accept(template, analysis.face, analysis.embedding, version)
    return templates


def _accept(template: FaceTemplate, face, embedding, version: ModelVersion) -> None:
    from training.engine import quality_figures  # dlib: workers only

    duplicate = matching.best_match(embedding, version, exclude_employee=template.employee_id)
    chip_name = f"{template.employee_id}-{template.pk}.jpg"
    template.chip.save(chip_name, ContentFile(_jpeg(face.chip)), save=False)
    updated = FaceTemplate.objects.filter(pk=template.pk, status=FaceTemplate.Status.PENDING).update(
        status=FaceTemplate.Status.READY,
        reason="",
        embedding=[float(value) for value in embedding],
        model_version=version,
        box=list(face.box),
        landmarks=[list(point) for point in face.landmarks],
        quality=quality_figures(face.quality),
        chip=template.chip.name,
        possible_duplicate_of=duplicate.employee,
        duplicate_distance=duplicate.distance if duplicate.employee else None,
        processed_at=timezone.now(),
    )
    if not updated:
        template.chip.delete(save=False)  # another worker finished it first


def _reject(template: FaceTemplate, reason: str) -> None:
    FaceTemplate.objects.filter(pk=template.pk, status=FaceTemplate.Status.PENDING).update(
        status=FaceTemplate.Status.REJECTED, reason=reason, processed_at=timezone.now()
    )


def _jpeg(chip) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()

