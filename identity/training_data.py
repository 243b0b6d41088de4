"""The faces a training run may learn from, and only those: employees who agreed to their photos
being used to improve recognition (a consent of its own, apart from the biometric one).

Each such employee is one identity: the aligned chips of their ready templates, plus faces from
their verified kiosk captures (the organisation's own camera and light, many over weeks). Runs in
the training worker (training.runs asks through the training_data_requested signal).
"""

from __future__ import annotations

import io
import logging

import numpy
from django.dispatch import receiver

from identity.models import AttemptCapture, Employee, FaceTemplate, VerificationAttempt
from training import signals

logger = logging.getLogger(__name__)

# Captures per employee, newest first: enough positives from the kiosk without one person's many
# check-ins outweighing everybody else in the batches.
CAPTURES_PER_EMPLOYEE = 20


def consenting_employees():
    return Employee.objects.active().filter(training_consent_recorded_at__isnull=False)


def employee_faces():
    """training.data.LabelledChips of consenting employees' templates and verified captures."""
    from training import data

    chips, labels, names, sources = [], [], [], []
    for employee in consenting_employees().order_by("pk"):
        found = [(chip, f"template {pk}") for pk, chip in _template_chips(employee)]
        found += [(chip, f"capture of attempt {attempt}") for attempt, chip in _capture_chips(employee)]
        if not found:
            continue
        label = len(names)
        names.append(f"employee-{employee.pk}")
        for chip, source in found:
            chips.append(chip)
            labels.append(label)
            sources.append(source)
    if not chips:
        return data.empty()
    return data.LabelledChips(numpy.stack(chips), numpy.array(labels), names, sources)


def _template_chips(employee: Employee):
    templates = FaceTemplate.objects.filter(employee=employee, status=FaceTemplate.Status.READY).exclude(chip="")
    for template in templates.order_by("pk"):
        try:
            with template.chip.open("rb") as stream:
                yield template.pk, _decode(stream.read())
        except (FileNotFoundError, OSError, ValueError) as error:
            logger.warning("skipping the chip of template %s: %s", template.pk, error)


def _capture_chips(employee: Employee):
    from training import faces

    attempts = VerificationAttempt.objects.filter(
        matched_employee=employee, decision=VerificationAttempt.Decision.VERIFIED
    ).order_by("-created_at").values_list("pk", flat=True)[:CAPTURES_PER_EMPLOYEE]
    for capture in AttemptCapture.objects.filter(attempt_id__in=list(attempts)).order_by("-created_at"):
        try:
            image = faces.decode_image(bytes(capture.image))
        except faces.ImageError:
            continue
        found = faces.detect_faces(image, use_cnn_fallback=False, quick=True)
        if found:  # the person at the camera: the largest face
            face = max(found, key=lambda face: face.box[2] - face.box[0])
            yield capture.attempt_id, numpy.asarray(face.chip)


def _decode(data: bytes) -> numpy.ndarray:
    from PIL import Image

    return numpy.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@receiver(signals.training_data_requested)
def _answer_training_data_request(sender=None, run=None, **kwargs):
    faces = employee_faces()
    logger.info("training run %s: %d faces of %d consenting employees", getattr(run, "pk", None),
                len(faces), faces.identities)
    return faces
