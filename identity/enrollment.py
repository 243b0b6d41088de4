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
from django.db.models import Exists, F, Q
from django.utils import timezone

from identity import matching
from identity.images import NOT_A_PHOTO, ImageProblem, inspect_image
from identity.models import Employee, FaceTemplate
from training.models import ModelVersion

logger = logging.getLogger(__name__)

BROKER_DOWN_REASON = (
    "Waiting for the background worker: the task queue could not be reached. The photo is kept "
    "and will be processed automatically as soon as the queue is back."
)
NO_MODEL_REASON = "No active model version. An administrator must run `manage.py import_base_model`."
# A whole photo narrower than the smallest face enrollment takes (training.faces.MIN_FACE_SIZE)
# cannot hold a usable face, so "no face found" would send HR looking for the wrong problem.
PHOTO_TOO_SMALL_REASON = (
    "The photo is only {width}×{height} pixels, too small to find a face in. Use a photo of at least "
    "{working}×{working} pixels, where the face is at least {face} pixels across."
)
# The size that works: LFW's 250x250 portraits, whose faces are 87-150 px across, pass the
# enrollment checks (38 of 40 tried); shrunk to 200x200, only 29 of 40 still do.
WORKING_PHOTO_SIDE = 250


# What inspect_image found, in the words of an upload (the worker's words for the same problems).
DAMAGED_PHOTO = (
    "{filename} is damaged or incomplete (perhaps the upload was cut off), so it cannot be read. "
    "Upload the original file again."
)
TOO_MANY_PIXELS = (
    "{filename} is {size}; photos up to {limit:g} million pixels are accepted. Resize it or upload a "
    "smaller copy."
)
# ValidationError codes, which the API turns into HTTP statuses.
TOO_LARGE_CODE, NOT_AN_IMAGE_CODE, DAMAGED_CODE, EMPTY_CODE = "too_large", "not_an_image", "damaged", "empty"


def add_photo(employee: Employee, data: bytes, filename: str) -> FaceTemplate:
    """Keep an uploaded photo as a pending template (identity.tasks queues its embedding; bulk
    imports process their templates themselves, in batches). Every way in (the admin's form, the
    API, bulk imports) calls check_upload on the file first."""
    check_photo(data, filename)
    template = FaceTemplate(employee=employee, original_filename=filename[-255:])
    template.source_image.save(filename, ContentFile(data), save=False)
    template.save()
    return template


def check_photo(data: bytes, filename: str) -> None:
    """Refuse an upload that is empty or too large, naming the file (forms check before saving)."""
    check_size(len(data), filename)


def check_size(size: int, filename: str) -> None:
    """check_photo from the size alone, so that an API upload over the limit is refused unread."""
    if size > settings.FRID_MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"{filename} is {size / 1e6:.1f} MB; photos up to "
            f"{settings.FRID_MAX_UPLOAD_BYTES / 1e6:.0f} MB are accepted. Use a smaller photo.",
            code=TOO_LARGE_CODE,
        )
    if not size:
        raise ValidationError(f"{filename} is empty. Choose the photo again.", code=EMPTY_CODE)


def check_upload(data: bytes, filename: str) -> None:
    """What every upload is checked for as it arrives: check_photo, then its content, never its
    name (identity.images.inspect_image): an image's first bytes, at most FRID_MAX_IMAGE_PIXELS
    pixels, and a whole file. The worker checks the rest (the face)."""
    check_photo(data, filename)
    try:
        inspect_image(data, settings.FRID_MAX_IMAGE_PIXELS)
    except ImageProblem as problem:
        raise _refusal(problem, filename) from problem


def _refusal(problem: ImageProblem, filename: str) -> ValidationError:
    if problem.kind == ImageProblem.TOO_MANY_PIXELS:
        size = f"{problem.size[0]}×{problem.size[1]} pixels" if problem.size else "far too many pixels"
        message = TOO_MANY_PIXELS.format(filename=filename, size=size, limit=settings.FRID_MAX_IMAGE_PIXELS / 1e6)
        return ValidationError(message, code=TOO_LARGE_CODE)
    if problem.kind == ImageProblem.DAMAGED:
        return ValidationError(DAMAGED_PHOTO.format(filename=filename), code=DAMAGED_CODE)
    return ValidationError(NOT_A_PHOTO.format(filename=filename), code=NOT_AN_IMAGE_CODE)


def mark_waiting_for_broker(template_ids: list[int]) -> None:
    """The templates' task could not be sent: say so on those still pending."""
    FaceTemplate.objects.filter(pk__in=template_ids, status=FaceTemplate.Status.PENDING).update(
        reason=BROKER_DOWN_REASON
    )


def clear_broker_reason(template_ids: list[int]) -> None:
    FaceTemplate.objects.filter(pk__in=template_ids, reason=BROKER_DOWN_REASON).update(reason="")


def claim_pending_for_requeue(older_than: timedelta | None = None) -> list[int]:
    """The pending templates queued before ``older_than`` ago (if given), and those whose task
    could not be sent at all (no task is in flight to wait for), marked as queued now."""
    pending = FaceTemplate.objects.filter(status=FaceTemplate.Status.PENDING)
    if older_than is not None:
        pending = pending.filter(Q(queued_at__lt=timezone.now() - older_than) | Q(reason=BROKER_DOWN_REASON))
    template_ids = list(pending.values_list("pk", flat=True))
    if template_ids:
        FaceTemplate.objects.filter(pk__in=template_ids).update(queued_at=timezone.now())
    return template_ids


def mark_for_retry(template_ids: list[int]) -> int:
    """Make rejected (or stuck) templates pending again, e.g. after a model change."""
    return FaceTemplate.objects.filter(pk__in=template_ids).exclude(status=FaceTemplate.Status.READY).update(
        status=FaceTemplate.Status.PENDING, reason="", found_boxes=None, box=None, quality=None,
        queued_at=timezone.now(),
    )


def process_templates(template_ids: list[int], _again: bool = True) -> list[FaceTemplate]:
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
        except (FileNotFoundError, ValueError):  # ValueError: no file kept (deleted by retention)
            _reject(template, "The uploaded photo is missing from storage. Upload it again.")
    overtaken = []
    for template, photo, analysis in zip(readable, photos, version.engine().analyse_photos(photos)):
        if analysis.problem:
            _reject(template, _reason(analysis, photo), found=analysis.faces)
        elif not _accept(template, analysis.face, analysis.embedding, version, found=analysis.faces):
            overtaken.append(template.pk)
    if overtaken and _again:
        # Search switched to another version while these were embedded: an embedding of the old
        # one would never be searched, so embed them again with the version now active.
        process_templates(overtaken, _again=False)
    return templates


def _reason(analysis, photo: bytes) -> str:
    """The analysis's problem, or that the whole photo is too small when no face was found in it."""
    from training import engine, faces  # dlib: workers only

    if analysis.faces or analysis.problem != engine.NO_FACE_REASON:
        return analysis.problem
    width, height = _upright_size(photo)
    if min(width, height) >= faces.MIN_FACE_SIZE:
        return analysis.problem
    return PHOTO_TOO_SMALL_REASON.format(
        width=width, height=height, working=WORKING_PHOTO_SIDE, face=faces.MIN_FACE_SIZE
    )


def _upright_size(photo: bytes) -> tuple[int, int]:
    """Width and height as people see the photo (EXIF orientation applied), from its header."""
    from PIL import Image

    with Image.open(io.BytesIO(photo)) as image:
        width, height = image.size
        turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # the Orientation tag: a quarter turn
    return (height, width) if turned else (width, height)


def _accept(template: FaceTemplate, face, embedding, version: ModelVersion, found=()) -> bool:
    """Store the template as ready with its embedding, unless it is no longer pending or search
    has meanwhile switched away from ``version`` (then False: embed it again with the active one).
    The check is part of the UPDATE, which waits for a switch in progress (it locks the table)."""
    from training.engine import quality_figures  # dlib: workers only

    duplicate = matching.best_match(embedding, version, exclude_employee=template.employee_id)
    chip_name = f"{template.employee_id}-{template.pk}.jpg"
    template.chip.save(chip_name, ContentFile(_jpeg(face.chip)), save=False)
    still_active = ModelVersion.objects.filter(pk=version.pk, is_active=True)
    updated = FaceTemplate.objects.filter(
        Exists(still_active), pk=template.pk, status=FaceTemplate.Status.PENDING,
    ).update(
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
        found_boxes=_boxes(found),
        processed_at=timezone.now(),
    )
    if not updated:
        template.chip.delete(save=False)  # another worker finished it first, or the version changed
        return False
    return True


def _reject(template: FaceTemplate, reason: str, found=()) -> None:
    """Reject in plain words, keeping every face box found (drawn on the photo for HR) and, for a
    single face refused for its quality, the figures that explain why."""
    single = found[0] if len(found) == 1 else None
    quality = None
    if single is not None:
        from training.engine import quality_figures  # dlib: workers only

        quality = quality_figures(single.quality)
    FaceTemplate.objects.filter(pk=template.pk, status=FaceTemplate.Status.PENDING).update(
        status=FaceTemplate.Status.REJECTED,
        reason=reason,
        found_boxes=_boxes(found),
        box=list(single.box) if single else None,
        quality=quality,
        processed_at=timezone.now(),
    )


def _boxes(found) -> list[list[int]] | None:
    return [[int(value) for value in face.box] for face in found] or None


def _jpeg(chip) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()

