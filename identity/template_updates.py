"""Templates that follow faces: a verified kiosk capture becomes an extra template of its employee.

Faces change (hair, glasses, age, the kiosk's own light), and one enrollment photo from HR slowly
stops looking like the person at the door. So a kiosk capture that was verified far inside the
threshold (distance at most threshold - FRID_AUTO_TEMPLATE_MARGIN) of an employee who agreed to
their captures improving recognition (Employee.agreed_to_training) is kept as a READY template of
theirs: source CAPTURE, ``from_attempt`` naming the attempt, the aligned chip and its embedding by
the active model version, stored as enrollment stores them. At most FRID_AUTO_TEMPLATES_PER_PERSON
per employee (the oldest automatic one replaced first), never replacing HR's photos, and at most one
per FRID_AUTO_TEMPLATE_MIN_HOURS. Deleting such a template (admin) removes it and its chip.

Two halves, so that a check never waits: ``worth_keeping`` runs on the web side right after the
decision (a few comparisons and one indexed query) and says whether to send
``identity.tasks.keep_capture_as_template``; ``keep_capture`` runs on an embeddings worker: it
re-analyses the attempt's captured frames, takes the frame nearest their mean, and keeps it only if
that frame alone is still verified as the same employee far inside the threshold.

The policy (``should_keep``, ``templates_to_replace``, ``due``) is pure: bench/template_updates.py
measures it on LFW without a database.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from identity import matching
from identity.models import AttemptCapture, Employee, FaceTemplate, VerificationAttempt
from training.models import ModelVersion

logger = logging.getLogger(__name__)

CAPTURE = FaceTemplate.Source.CAPTURE


# --- The policy (pure) --------------------------------------------------------------------------


class Aged(Protocol):
    source: str
    created_at: datetime


def should_keep(distance: float | None, threshold: float | None, margin: float) -> bool:
    """Whether a verified capture is far enough inside the threshold to become a template: a
    stranger who only just passed must never become one (tie: kept)."""
    if distance is None or threshold is None:
        return False
    return bool(distance <= threshold - margin)


def templates_to_replace(templates: Sequence[Aged], cap: int) -> list:
    """Which of an employee's templates to delete so that one more automatic template keeps them
    within ``cap`` automatic ones: the oldest automatic first; HR's photos never."""
    automatic = sorted((template for template in templates if template.source == CAPTURE),
                       key=lambda template: template.created_at)
    surplus = len(automatic) + 1 - cap
    return automatic[:surplus] if surplus > 0 else []


def due(last_added: datetime | None, now: datetime, min_hours: float) -> bool:
    """Whether enough time has passed since the employee's last automatic template, so that their
    templates span days and light, not one morning's checks."""
    return last_added is None or now - last_added >= timedelta(hours=min_hours)


# --- Web side: right after the decision ---------------------------------------------------------


def worth_keeping(attempt: VerificationAttempt, employee: Employee | None) -> bool:
    """Whether a recorded attempt may become an automatic template of ``employee`` (the one it
    matched): a verified kiosk check of an employee who agreed, far inside the threshold, and the
    last automatic template of theirs old enough. Cheap: the web process calls it on every check."""
    if (
        settings.FRID_AUTO_TEMPLATES_PER_PERSON <= 0
        or employee is None
        or attempt.decision != VerificationAttempt.Decision.VERIFIED
        or attempt.mode != VerificationAttempt.Mode.KIOSK
        or not employee.agreed_to_training
        or not should_keep(attempt.distance, attempt.threshold, settings.FRID_AUTO_TEMPLATE_MARGIN)
    ):
        return False
    return due(_last_added(employee), timezone.now(), settings.FRID_AUTO_TEMPLATE_MIN_HOURS)


def _last_added(employee: Employee) -> datetime | None:
    return (FaceTemplate.objects.filter(employee=employee, source=CAPTURE)
            .order_by("-created_at").values_list("created_at", flat=True).first())


# --- Worker side ---------------------------------------------------------------------------------


def keep_capture(attempt_id: int) -> FaceTemplate | None:
    """Keep a verified attempt's capture as an automatic template of its employee, if it still
    qualifies; None when it does not (or no longer: consent withdrawn, frames purged, model
    switched, already kept). Idempotent."""
    attempt = VerificationAttempt.objects.filter(pk=attempt_id).first()
    if attempt is None or attempt.matched_employee_id is None:
        return None
    try:
        version = ModelVersion.objects.active()
    except ModelVersion.DoesNotExist:
        return None
    if attempt.model_version_id != version.pk:
        return None  # the decision was made in another version's space
    frames = [bytes(capture.image) for capture in AttemptCapture.objects.filter(attempt=attempt)]
    if not frames:
        return None  # purged
    face, embedding = _central_frame(version.engine(live=True).analyse_photos(frames))
    if face is None:
        return None
    with transaction.atomic():
        # One capture at a time per employee, so two workers never both fill the last place.
        employee = Employee.objects.select_for_update().filter(pk=attempt.matched_employee_id).first()
        if not _still_qualifies(employee, attempt, embedding, version):
            return None
        for old in templates_to_replace(list(employee.templates.filter(source=CAPTURE)),
                                        settings.FRID_AUTO_TEMPLATES_PER_PERSON):
            old.delete()
        return _store(employee, attempt, face, embedding, version)


def _central_frame(analyses) -> tuple:
    """The face and embedding of the frame nearest the frames' mean (the decision was made on the
    mean; one chip, and the embedding of that very chip, is what a template holds)."""
    usable = [analysis for analysis in analyses if analysis.face is not None and not analysis.problem]
    if not usable or len(usable) != len(analyses):
        return None, None
    embeddings = numpy.stack([analysis.embedding for analysis in usable])
    nearest = int(numpy.argmin(numpy.linalg.norm(embeddings - embeddings.mean(axis=0), axis=1)))
    return usable[nearest].face, usable[nearest].embedding


def _still_qualifies(employee: Employee | None, attempt: VerificationAttempt, embedding, version) -> bool:
    if employee is None or not employee.is_active or not employee.agreed_to_training:
        return False
    if FaceTemplate.objects.filter(from_attempt=attempt).exists():
        return False  # kept already (the task ran twice)
    if not due(_last_added(employee), timezone.now(), settings.FRID_AUTO_TEMPLATE_MIN_HOURS):
        return False
    # The kept frame alone must pass the kiosk's rule as this employee, far inside the threshold.
    match = matching.identify(embedding, version)
    return match.employee is not None and match.employee.pk == employee.pk and should_keep(
        match.distance, match.threshold, settings.FRID_AUTO_TEMPLATE_MARGIN
    )


def _store(employee: Employee, attempt: VerificationAttempt, face, embedding, version) -> FaceTemplate:
    from training.engine import quality_figures  # dlib: workers only

    template = FaceTemplate.objects.create(
        employee=employee,
        source=CAPTURE,
        from_attempt=attempt,
        status=FaceTemplate.Status.READY,
        embedding=[float(value) for value in embedding],
        model_version=version,
        box=[int(value) for value in face.box],
        landmarks=[list(point) for point in face.landmarks],
        quality=quality_figures(face.quality),
        processed_at=timezone.now(),
    )
    # Named and encoded as enrollment names and encodes chips; no source photo is kept: the
    # captured frame (and whoever else it shows) is purged with the attempt's captures.
    template.chip.save(f"{employee.pk}-{template.pk}.jpg", ContentFile(_jpeg(face.chip)), save=True)
    logger.info("kept attempt %s's capture as template %s of employee %s", attempt.pk, template.pk, employee.pk)
    return template


def _jpeg(chip) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
