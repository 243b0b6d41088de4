"""A photo's way to a face template: kept as pending, embedded by a worker, ready or rejected.

Web processes only store the photo and queue its task (after the transaction commits, so a
worker never looks for a row that is not there yet). Workers run ``process_templates``: it
claims each pending template, finds the face, checks it is usable, embeds it with the active
model version and stores the result. Nothing here is lost when a worker dies or the broker is
down: the photo and its pending row are already committed, and ``requeue_pending`` (at worker
start and every minute from beat) queues again whatever is still pending.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from identity.models import Employee, FaceTemplate
from training.models import ModelVersion

logger = logging.getLogger(__name__)

BROKER_DOWN_REASON = (
    "Waiting for the background worker: the task queue could not be reached. The photo is kept "
    "and will be processed automatically as soon as the queue is back."
)
NO_FACE_REASON = (
    "No face was found in this photo. Use a photo where the face is clearly visible, facing the "
    "camera, in good light."
)
SEVERAL_FACES_REASON = (
    "This photo shows {count} faces. Use a photo of the employee alone, or crop the others out."
)
NO_MODEL_REASON = "No active model version. An administrator must run `manage.py import_base_model`."


def add_photo(employee: Employee, data: bytes, filename: str, *, queue: bool = True) -> FaceTemplate:
    """Keep an uploaded photo as a pending template and queue its embedding (unless ``queue`` is
    False: bulk imports process their templates themselves, in batches)."""
    check_photo(data, filename)
    template = FaceTemplate(employee=employee)
    template.source_image.save(filename, ContentFile(data), save=False)
    template.save()
    if queue:
        queue_embedding([template.pk])
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


def queue_embedding(template_ids: list[int]) -> None:
    """Queue the templates' task once the current transaction has committed."""
    transaction.on_commit(lambda: _send(template_ids))


def _send(template_ids: list[int]) -> bool:
    from identity.tasks import embed_templates

    try:
        embed_templates.apply_async(args=[template_ids], retry=False)
    except Exception as error:  # any broker failure: the templates stay pending, requeue_pending retries
        logger.warning("could not queue templates %s, the broker is unreachable: %s", template_ids, error)
        FaceTemplate.objects.filter(pk__in=template_ids, status=FaceTemplate.Status.PENDING).update(
            reason=BROKER_DOWN_REASON
        )
        return False
    return True


def requeue_pending(older_than: timedelta | None = None) -> int:
    """Queue again the pending templates (those queued before ``older_than`` ago, if given)."""
    pending = FaceTemplate.objects.filter(status=FaceTemplate.Status.PENDING)
    if older_than is not None:
        pending = pending.filter(queued_at__lt=timezone.now() - older_than)
    template_ids = list(pending.values_list("pk", flat=True))
    if template_ids:
        FaceTemplate.objects.filter(pk__in=template_ids).update(queued_at=timezone.now())
        for start in range(0, len(template_ids), 32):
            if _send(template_ids[start:start + 32]):
                FaceTemplate.objects.filter(pk__in=template_ids[start:start + 32], reason=BROKER_DOWN_REASON).update(
                    reason=""
                )
    return len(template_ids)


def retry(templates: Iterable[FaceTemplate]) -> int:
    """Send rejected (or stuck) templates through processing again, e.g. after a model change."""
    template_ids = [template.pk for template in templates]
    updated = FaceTemplate.objects.filter(pk__in=template_ids).exclude(status=FaceTemplate.Status.READY).update(
        status=FaceTemplate.Status.PENDING, reason="", queued_at=timezone.now()
    )
    queue_embedding(template_ids)
    return updated


def process_templates(template_ids: list[int]) -> list[FaceTemplate]:
    """Embed pending templates (the worker's job); templates no longer pending are skipped."""
    from training import faces

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

    usable = []
    for template in templates:
        face_or_reason = _single_usable_face(template, faces)
        if isinstance(face_or_reason, str):
            _reject(template, face_or_reason)
        else:
            usable.append((template, face_or_reason))
    if usable:
        import numpy

        embeddings = version.embedder().embed(numpy.stack([face.chip for _, face in usable]))
        for (template, face), embedding in zip(usable, embeddings):
            _accept(template, face, embedding, version)
    return templates


def _single_usable_face(template: FaceTemplate, faces):
    try:
        with template.source_image.open("rb") as stream:
            image = faces.decode_image(stream.read())
    except faces.ImageError as error:
        return str(error)
    except FileNotFoundError:
        return "The uploaded photo is missing from storage. Upload it again."
    found = faces.detect_faces(image)
    if not found:
        return NO_FACE_REASON
    if len(found) > 1:
        return SEVERAL_FACES_REASON.format(count=len(found))
    problems = faces.assess(found[0])
    return " ".join(problems) if problems else found[0]


def _accept(template: FaceTemplate, face, embedding, version: ModelVersion) -> None:
    others = FaceTemplate.objects.searchable(version).exclude(employee_id=template.employee_id)
    duplicate = (
        others.nearest(embedding, version)
        .filter(distance__lte=version.threshold_for_gallery(others.count()))
        .first()
    )
    chip_name = f"{template.employee_id}-{template.pk}.jpg"
    template.chip.save(chip_name, ContentFile(_jpeg(face.chip)), save=False)
    quality = face.quality
    updated = FaceTemplate.objects.filter(pk=template.pk, status=FaceTemplate.Status.PENDING).update(
        status=FaceTemplate.Status.READY,
        reason="",
        embedding=[float(value) for value in embedding],
        model_version=version,
        box=list(face.box),
        landmarks=[list(point) for point in face.landmarks],
        quality={
            "face_size": quality.face_size,
            "sharpness": round(quality.sharpness, 1),
            "brightness": round(quality.brightness, 1),
            "yaw": round(quality.yaw, 1),
            "pitch": round(quality.pitch, 1),
            "roll": round(quality.roll, 1),
        },
        chip=template.chip.name,
        possible_duplicate_of=duplicate.employee if duplicate else None,
        duplicate_distance=duplicate.distance if duplicate else None,
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

