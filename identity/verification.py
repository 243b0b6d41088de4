"""A verification: frames -> decision -> an audited attempt (+ an attendance event).

The web side validates the request (``check_request``), a verify worker turns the frames into
faces and embeddings (``identity.tasks.verify``, through ``training.engine``), and ``decide``
chooses among the enrolled employees and records the attempt. Every attempt, whatever its outcome
(a bad request, a busy worker, an unusable frame, a stranger), becomes one append-only
``VerificationAttempt``; its frames go to ``AttemptCapture`` rows, purged after the retention period.

Decision rules (ISO/IEC 19795-1 vocabulary: a frame without a usable face is a failure to
acquire, and is "rejected" with what to do):
- every frame must show one usable face, and all frames the same person (pairwise within the
  version's 1:1 threshold); the decision is made on their mean embedding;
- kiosk (1:N): "verified" only when the nearest employee is within the version's threshold for
  the gallery's size AND nearer than the second-nearest employee by at least the version's
  calibrated margin (ModelVersion.open_set_margin, threshold_for_gallery); otherwise "not recognised";
- personal (1:1): "verified" only when the claimed employee is within the version's 1:1 threshold
  and no other employee is nearer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy
from django.conf import settings
from django.db import transaction

from identity import attendance, liveness, lockout, matching, template_updates
from identity.images import ImageProblem, inspect_image
from identity.models import AttemptCapture, AttendanceEvent, Employee, Kiosk, LivenessChallenge, VerificationAttempt
from training.models import ModelVersion

MAX_FRAMES = 5

Decision = VerificationAttempt.Decision
Mode = VerificationAttempt.Mode

NO_FRAMES = "No frames were sent. Send 1 to 5 camera frames in the field \"image\"."
TOO_MANY_FRAMES = "{count} frames were sent; at most 5 are accepted per check. Send 1 to 5 frames."
NOT_AN_IMAGE = "Frame {index} is not a JPEG or PNG image. Send camera frames as JPEG."
# The view reads no more of a frame than shows it is over the limit, so its size is not known here.
FRAME_TOO_LARGE = "Frame {index} is larger than {limit:g} MB, the most accepted per frame. Send smaller frames."
DAMAGED_FRAME = (
    "Frame {index} is damaged or incomplete (perhaps cut off on the way), so it cannot be read. "
    "Send the frames again."
)
FRAME_TOO_MANY_PIXELS = (
    "Frame {index} is {size}; frames up to {limit:g} million pixels are accepted. Send smaller frames "
    "(640×480 is plenty)."
)
BAD_DIRECTION = "direction must be \"in\" or \"out\" (or left out for the usual one), not {value!r}."
UNKNOWN_EMPLOYEE = "There is no active employee with the number {number!r}. Check the number."
KIOSK_DISABLED = "This kiosk has been disabled by an administrator. Ask HR to enable it again."
KIOSK_CLAIM = "A kiosk recognises the face alone: leave employee_number out (it is for personal check-in)."
NOT_YOUR_NUMBER = "You can only verify as yourself ({number})."
NO_EMPLOYEE_RECORD = "Your account is not linked to an employee. Ask HR to link it."
BUSY = "Verification is busy: no worker answered in time. Try again in a moment."
NO_MODEL = "No active model version. An administrator must run `manage.py import_base_model`."
DIFFERENT_PEOPLE = "The frames show different people. Only one person at a time, please, and try again."
NOT_RECOGNISED = "Not recognised. If you work here, ask HR to check your enrollment."
NOT_THE_CLAIMED = "This face is not {name}'s. Try again facing the camera, or ask HR."
NO_ONE_ENROLLED = "Nobody is enrolled yet, so nobody can be recognised. HR enrolls employees in the admin."
# The same words for every lockout (a claimed number, an account, a kiosk), enrolled or not.
LOCKED_OUT = ("Too many failed attempts: checks are paused for up to {minutes:g} minutes. "
              "Try again later, or ask HR to lift the lockout.")


@dataclass
class Check:
    """One verification request, as the API received it."""

    mode: str  # VerificationAttempt.Mode
    frames: list[bytes]
    kiosk: Kiosk | None = None
    user: Any = None  # the logged-in user (personal mode, or HR acting through the API)
    client_address: str | None = None
    employee_number: str = ""  # the claimed employee (1:1); empty for a kiosk's 1:N search
    direction: str = ""  # "in", "out", or "" for the usual one
    started: float = field(default_factory=time.monotonic)
    nonce: str = ""  # a liveness challenge's (identity.liveness), as sent
    challenge: LivenessChallenge | None = None  # that challenge, redeemed by check_request


class Refusal(Exception):
    """A request that cannot be verified at all (a 4xx); the message says what to do."""

    def __init__(self, message: str, http_status: int = 400, decision: str = Decision.REFUSED):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.decision = decision


@dataclass(frozen=True)
class FrameResult:
    """What the verify worker found in one frame (training.engine.PhotoAnalysis, as JSON)."""

    faces: int
    problem: str
    embedding: list[float] | None
    quality: dict | None
    box: list[int] | None

    @classmethod
    def from_json(cls, data: dict) -> "FrameResult":
        return cls(data["faces"], data["problem"], data["embedding"], data["quality"], data["box"])


@dataclass
class Outcome:
    attempt: VerificationAttempt
    event: AttendanceEvent | None = None
    employee: Employee | None = None
    # Whether the capture may become an automatic template (identity.template_updates); the
    # caller sends that work to a worker, after the answer is decided.
    keep_capture: bool = False

    @property
    def http_status(self) -> int:
        return self.attempt.http_status

    def as_json(self) -> dict:
        attempt = self.attempt
        if attempt.decision in (Decision.REFUSED, Decision.BUSY, Decision.LOCKED_OUT):
            return {"detail": attempt.reason, "decision": attempt.decision, "attempt_id": attempt.pk}
        employee = self.employee
        return {
            "decision": attempt.decision,
            "reason": attempt.reason,
            "employee": {"employee_number": employee.employee_number, "name": employee.name} if employee else None,
            "distance": attempt.distance,
            "threshold": attempt.threshold,
            "direction": self.event.direction if self.event else (attempt.direction or None),
            "event_id": self.event.pk if self.event else None,
            "event_time": self.event.occurred_at.isoformat() if self.event else None,
            "attempt_id": attempt.pk,
            "liveness_passed": attempt.liveness_passed,
        }


# --- Before the frames go to a worker ---------------------------------------------------------


def check_request(check: Check, max_frame_bytes: int) -> Employee | None:
    """The claimed employee (personal mode), after checking everything that needs no worker.
    Raises Refusal for a request that cannot be verified."""
    if check.kiosk is not None and not check.kiosk.is_active:
        raise Refusal(KIOSK_DISABLED, 403)
    _refuse_if_locked_out(check)
    if check.mode == Mode.KIOSK and check.employee_number:
        raise Refusal(KIOSK_CLAIM)
    if check.direction not in ("", *VerificationAttempt.Direction.values):
        raise Refusal(BAD_DIRECTION.format(value=check.direction))
    if not check.frames:
        raise Refusal(NO_FRAMES)
    if len(check.frames) > MAX_FRAMES and not check.nonce:  # a liveness check has its own limits
        raise Refusal(TOO_MANY_FRAMES.format(count=len(check.frames)))
    for index, frame in enumerate(check.frames, start=1):
        if len(frame) > max_frame_bytes:
            raise Refusal(FRAME_TOO_LARGE.format(index=index, limit=max_frame_bytes / 1e6), 413)
        _check_frame(index, frame)
    claimed = _claimed_employee(check)
    check.challenge = _redeemed_challenge(check)
    return claimed


def _check_frame(index: int, frame: bytes) -> None:
    """The frame's content, never its name: an image, within the pixel limit, and whole."""
    try:
        inspect_image(frame, settings.FRID_MAX_IMAGE_PIXELS)
    except ImageProblem as problem:
        if problem.kind == ImageProblem.TOO_MANY_PIXELS:
            size = f"{problem.size[0]}×{problem.size[1]} pixels" if problem.size else "far too many pixels"
            limit = settings.FRID_MAX_IMAGE_PIXELS / 1e6
            raise Refusal(FRAME_TOO_MANY_PIXELS.format(index=index, size=size, limit=limit), 413) from problem
        if problem.kind == ImageProblem.DAMAGED:
            raise Refusal(DAMAGED_FRAME.format(index=index)) from problem
        raise Refusal(NOT_AN_IMAGE.format(index=index), 415) from problem


def _redeemed_challenge(check: Check) -> LivenessChallenge | None:
    """The check's liveness challenge, used up now; None where the check needs none. Last of the
    request's checks, so that a request refused for anything else leaves its challenge usable."""
    if not check.nonce:
        if liveness.required_for(check.kiosk):
            raise Refusal(liveness.CHALLENGE_NEEDED)
        return None
    if not liveness.MIN_FRAMES <= len(check.frames) <= liveness.MAX_FRAMES:
        raise Refusal(liveness.WRONG_FRAME_COUNT.format(
            count=len(check.frames), minimum=liveness.MIN_FRAMES, maximum=liveness.MAX_FRAMES))
    try:
        return liveness.redeem(check.nonce, check.kiosk, check.user)
    except liveness.ChallengeRefused as refused:
        raise Refusal(refused.message) from None


def issue_challenge(check: Check) -> liveness.Issued | None:
    """A liveness challenge for the check about to be made (``check`` has no frames yet), or None
    where none is needed. Raises Refusal for a disabled kiosk, audited like its checks."""
    if check.kiosk is not None and not check.kiosk.is_active:
        raise Refusal(KIOSK_DISABLED, 403)
    if not liveness.required_for(check.kiosk):
        return None
    return liveness.issue(kiosk=check.kiosk, user=check.user)


def _refuse_if_locked_out(check: Check) -> None:
    # Before anything is looked up: a locked-out claim is answered alike whether anyone has the number.
    user_id = check.user.pk if getattr(check.user, "is_authenticated", False) else None
    kiosk_id = check.kiosk.pk if check.kiosk is not None else None
    claimed = _claimed_number(check) if check.mode == Mode.PERSONAL else ""
    if lockout.first_lockout(lockout.subjects(kiosk_id=kiosk_id, user_id=user_id, claimed_number=claimed)):
        raise Refusal(LOCKED_OUT.format(minutes=settings.FRID_LOCKOUT_MINUTES), 429, Decision.LOCKED_OUT)


def _claimed_number(check: Check) -> str:
    """The number a check claims: as sent, else (personal check-in) the account's own; as kept."""
    own = getattr(check.user, "employee", None) if check.user is not None and check.mode == Mode.PERSONAL else None
    number = check.employee_number or (own.employee_number if own else "")
    return number[:VerificationAttempt._meta.get_field("claimed_number").max_length]


def _claimed_employee(check: Check) -> Employee | None:
    if check.mode == Mode.KIOSK:
        return None
    own = getattr(check.user, "employee", None) if check.user is not None else None
    number = check.employee_number or (own.employee_number if own else "")
    if not number:
        raise Refusal(NO_EMPLOYEE_RECORD, 403)
    # An employee may verify only as themself; HR (who may change employees) may verify anyone.
    # Asked before the number is looked up, so that an employee learns nothing of who is enrolled.
    may_claim_anyone = check.user is not None and check.user.has_perm("identity.change_employee")
    if not may_claim_anyone and (own is None or own.employee_number != number):
        raise Refusal(NOT_YOUR_NUMBER.format(number=own.employee_number) if own else NO_EMPLOYEE_RECORD, 403)
    employee = Employee.objects.active().filter(employee_number=number).first()
    if employee is None:
        raise Refusal(UNKNOWN_EMPLOYEE.format(number=number), 404)
    return employee


# --- Recording ----------------------------------------------------------------------------------


def refuse(check: Check, refusal: Refusal) -> Outcome:
    """Audit a request that could not be verified (nothing else changes)."""
    return Outcome(_record(check, refusal.decision, refusal.message, http_status=refusal.http_status))


def busy(check: Check, claimed: Employee | None) -> Outcome:
    """Audit a check that no worker answered in time (503)."""
    return Outcome(_record(check, Decision.BUSY, BUSY, claimed=claimed, http_status=503, keep_frames=True))


def decide(check: Check, claimed: Employee | None, frames: list[FrameResult], version_id: int | None) -> Outcome:
    """The decision on frames the worker analysed, recorded (with the event when verified)."""
    version = ModelVersion.objects.filter(pk=version_id).first() if version_id else None
    quality = [{"faces": frame.faces, "box": frame.box, **(frame.quality or {})} for frame in frames]
    common = {"claimed": claimed, "version": version, "quality": quality, "keep_frames": True}
    if version is None:
        return Outcome(_record(check, Decision.REJECTED, NO_MODEL, http_status=503, **common))
    problem = next((frame.problem for frame in frames if frame.problem), "")
    if problem:
        return Outcome(_record(check, Decision.REJECTED, problem, **common))
    embeddings = numpy.array([frame.embedding for frame in frames], dtype=numpy.float64)
    if not _same_person(embeddings, version.threshold):
        return Outcome(_record(check, Decision.REJECTED, DIFFERENT_PEOPLE, **common))
    if check.challenge is not None:
        common["verdict"] = verdict = liveness.judge(check.challenge.steps, [frame.quality for frame in frames])
        if not verdict.passed:
            return Outcome(_record(check, Decision.REJECTED, verdict.reason, **common))
    mean = embeddings.mean(axis=0)
    if claimed is None:
        match = matching.identify(mean, version)
    else:
        match = matching.verify_claim(mean, claimed, version)
    if match.employee is None:
        reason = _not_recognised_reason(match, claimed)
        return Outcome(_record(check, Decision.NOT_RECOGNISED, reason, match=match, **common))
    with transaction.atomic():
        direction = check.direction or attendance.usual_direction(match.employee)
        attempt = _record(check, Decision.VERIFIED, "", match=match, direction=direction, **common)
        event = attendance.record_event(match.employee, direction, attempt)
    keep = template_updates.worth_keeping(attempt, match.employee)
    return Outcome(attempt, event, match.employee, keep_capture=keep)


def _same_person(embeddings: numpy.ndarray, threshold: float) -> bool:
    if len(embeddings) < 2:
        return True
    differences = embeddings[:, None, :] - embeddings[None, :, :]
    return bool(numpy.sqrt((differences**2).sum(axis=-1)).max() <= threshold)


def _not_recognised_reason(match: matching.Match, claimed: Employee | None) -> str:
    if match.gallery_size == 0:
        return NO_ONE_ENROLLED
    if claimed is not None:
        return NOT_THE_CLAIMED.format(name=claimed.name)
    return NOT_RECOGNISED


def _record(
    check: Check,
    decision: str,
    reason: str,
    *,
    http_status: int = 200,
    claimed: Employee | None = None,
    version: ModelVersion | None = None,
    match: matching.Match | None = None,
    direction: str = "",
    quality: list | None = None,
    keep_frames: bool = False,
    verdict: liveness.Verdict | None = None,
) -> VerificationAttempt:
    attempt = VerificationAttempt.objects.create(
        mode=check.mode,
        kiosk=check.kiosk,
        user=check.user if getattr(check.user, "is_authenticated", False) else None,
        client_address=check.client_address,
        claimed_employee=claimed,
        claimed_number=_claimed_number(check),
        matched_employee=match.employee if match else None,
        nearest_employee=match.nearest if match else None,
        distance=match.distance if match else None,
        second_distance=match.second_distance if match else None,
        threshold=match.threshold if match else None,
        margin=match.margin if match else None,
        gallery_size=match.gallery_size if match else None,
        model_version=version,
        decision=decision,
        reason=reason,
        # A malformed direction is refused, and its text (of any length) is not kept.
        direction=direction or (check.direction if check.direction in VerificationAttempt.Direction.values else ""),
        frames=len(check.frames),
        quality=quality or [],
        http_status=http_status,
        latency_ms=round((time.monotonic() - check.started) * 1000, 1),
        liveness_passed=verdict.passed if verdict else None,
        liveness_reason=verdict.record if verdict else (
            liveness.not_judged(check.challenge.steps) if check.challenge else ""),
    )
    if keep_frames:
        AttemptCapture.objects.bulk_create(
            AttemptCapture(attempt=attempt, index=index, image=frame, created_at=attempt.created_at)
            for index, frame in enumerate(check.frames)
        )
    return attempt


# --- Retention ----------------------------------------------------------------------------------


def purge_expired_captures() -> int:
    """Delete captured frames older than FRID_CAPTURE_RETENTION_DAYS and return how many; the
    attempts they belonged to stay as they are (the only part of an attempt ever deleted)."""
    _, deleted = AttemptCapture.objects.expired().delete()
    return deleted.get(AttemptCapture._meta.label, 0)
