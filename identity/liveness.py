"""Active liveness: a random instruction the person follows at the camera, checked by the server.

A check that needs it (a kiosk unless its ``liveness_required`` is off; personal check-in unless
FRID_LIVENESS_FOR_CHECK_IN is off) starts with ``issue``: two movements in a random order (turn
the head to the left, to the right, look up), a random nonce bound to the kiosk or user that asked,
valid FRID_LIVENESS_SECONDS and good for one check (a LivenessChallenge row keeps only the nonce's
SHA-256, and ``redeem`` claims it atomically). The page shows the instruction and captures a
sequence of frames while the person follows it; the verify worker finds the face in every frame
with its pose (training.engine: yaw and pitch from dlib's five landmarks, training.faces.estimate_pose);
``judge`` decides here whether the pose moved as asked, in order. Every frame must still show one
usable face of one and the same person (identity.verification), so the movement cannot be made by
someone else.

What it stops: a photo or a still screen held to the camera (the pose does not move), and a
recording that does not happen to make these movements in this order within those seconds. Every
challenge includes a turn because a flat picture cannot fake one: tilting or turning a printed
photo changes the estimated pitch (the nose's drop shrinks or grows against the eye distance), but
not the estimated yaw (the nose's sideways offset from the eye midpoint, in eye distances, keeps its
ratio in any affine view of a plane). What it does not stop: a video of the right movements played
or generated in time through a virtual camera or on a screen, or a mask worn by someone who moves.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from identity.models import Kiosk, LivenessChallenge

# A movement must change the pose estimate by this much. One pixel of landmark jitter on a webcam
# face (eye distance ~60 px at arm's length) moves yaw or pitch by atan((1 / 60) / 0.5) ~ 2 degrees,
# so a still head stays far below it; a person asked to turn turns 20-30 degrees, and dlib's HOG
# detector, which must still find the face, loses it past about 30 (training.faces.MAX_YAW).
TURN_DEGREES = 12.0
# Looking up is overstated by the estimate (training.faces.estimate_pose), and people lift the head
# less than they turn it.
LOOK_UP_DEGREES = 10.0

# What the page captures (the server checks only what the frames show, never the timing): 10
# frames over 2.7 s are time enough for two movements.
FRAMES = 10
FRAME_INTERVAL_MS = 300
MIN_FRAMES = 6
MAX_FRAMES = 12


@dataclass(frozen=True)
class Step:
    name: str
    axis: str  # "yaw" or "pitch", as the worker's quality figures name them
    sign: int  # +1: following it makes the angle grow
    degrees: float
    instruction: str  # in words, lower case, as it reads after "then"


# The frames are the camera's own (unmirrored) picture: a person turning to their own left turns
# towards the right of the photo, where training.faces counts yaw positive; looking up lowers pitch.
STEPS = {
    "left": Step("left", "yaw", +1, TURN_DEGREES, "turn your head to your left"),
    "right": Step("right", "yaw", -1, TURN_DEGREES, "turn your head to your right"),
    "up": Step("up", "pitch", -1, LOOK_UP_DEGREES, "look up"),
}
# Two movements, at least one a turn (see the module's docstring: a flat picture cannot turn).
CHALLENGES = [
    ("left", "right"), ("right", "left"), ("left", "up"), ("right", "up"), ("up", "left"), ("up", "right"),
]

FOLLOW_THE_INSTRUCTION = "Follow the instruction on the screen: {instruction}. Move slowly while the frames are taken."
CHALLENGE_NEEDED = (
    "This check needs a liveness challenge: ask for one (POST /api/v1/verify/challenge/), follow it at "
    "the camera, and send its nonce in the field \"challenge\" with the frames."
)
WRONG_FRAME_COUNT = (
    "{count} frames were sent; a check with a liveness challenge needs {minimum} to {maximum}, taken while "
    "the person follows the instruction."
)
UNKNOWN_CHALLENGE = (
    "This liveness challenge is not known here (it was never issued, or issued to another kiosk or "
    "person). Press the button again for a new one."
)
USED_CHALLENGE = "This liveness challenge was already used: each one is good for one check. Press the button again."
EXPIRED_CHALLENGE = (
    "This liveness challenge has expired: it is good for {seconds} seconds. Press the button again and follow "
    "the new instruction."
)


class ChallengeRefused(Exception):
    """A nonce that cannot be used; the message says what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def required_for(kiosk: Kiosk | None) -> bool:
    """Whether a check must carry a challenge: a kiosk's own setting, or personal check-in's."""
    if kiosk is not None:
        return kiosk.liveness_required
    return settings.FRID_LIVENESS_FOR_CHECK_IN


def instruction(steps: Sequence[str]) -> str:
    """The whole challenge in words: "Turn your head to your left, then look up"."""
    words = ", then ".join(STEPS[name].instruction for name in steps)
    return words[:1].upper() + words[1:]


# --- Issuing and redeeming ----------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A challenge just issued, with its nonce (shown to the caller once, never stored)."""

    nonce: str
    challenge: LivenessChallenge

    def as_json(self) -> dict:
        steps = self.challenge.steps
        return {
            "required": True,
            "challenge": self.nonce,
            "steps": steps,
            "instructions": instruction(steps),
            "step_instructions": [instruction([name]) for name in steps],
            "expires_at": self.challenge.expires_at.isoformat(),
            "valid_seconds": settings.FRID_LIVENESS_SECONDS,
            "frames": FRAMES,
            "frame_interval_ms": FRAME_INTERVAL_MS,
        }


def choose_steps() -> tuple[str, ...]:
    """The movements to ask for, drawn by the secrets module (tests replace this function)."""
    return secrets.choice(CHALLENGES)


def issue(kiosk: Kiosk | None = None, user=None, now: datetime | None = None) -> Issued:
    """A new challenge for the kiosk (or the user, at personal check-in) to follow in its next check."""
    nonce = secrets.token_urlsafe(32)
    now = now or timezone.now()
    purge_expired(now)  # the table holds only the last minute's challenges
    challenge = LivenessChallenge.objects.create(
        nonce_hash=LivenessChallenge.hash_nonce(nonce),
        steps=list(choose_steps()),
        kiosk=kiosk,
        user=user if getattr(user, "is_authenticated", False) else None,
        issued_at=now,
        expires_at=now + timedelta(seconds=settings.FRID_LIVENESS_SECONDS),
    )
    return Issued(nonce, challenge)


def redeem(nonce: str, kiosk: Kiosk | None, user) -> LivenessChallenge:
    """The challenge this nonce was issued with, marked used; ChallengeRefused when it is unknown
    (or another kiosk's or user's), used already, or expired."""
    now = timezone.now()
    redeemable = LivenessChallenge.objects.redeemable(nonce, kiosk, user, now)
    # Claimed in one UPDATE: of two checks sent with the same nonce, only one changes the row.
    if redeemable.update(used_at=now) == 1:
        return LivenessChallenge.objects.get(nonce_hash=LivenessChallenge.hash_nonce(nonce))
    known = LivenessChallenge.objects.filter(
        nonce_hash=LivenessChallenge.hash_nonce(nonce), kiosk=kiosk,
        user=user if getattr(user, "is_authenticated", False) else None,
    ).first()
    if known is None:
        raise ChallengeRefused(UNKNOWN_CHALLENGE)
    if known.used_at is not None:
        raise ChallengeRefused(USED_CHALLENGE)
    raise ChallengeRefused(EXPIRED_CHALLENGE.format(seconds=settings.FRID_LIVENESS_SECONDS))


def purge_expired(now: datetime | None = None) -> int:
    """Delete challenges that can no longer be used (expired a minute ago or more); how many."""
    cutoff = (now or timezone.now()) - timedelta(minutes=1)
    deleted, _ = LivenessChallenge.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


# --- Judging the frames -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str  # for the person at the camera; empty when passed
    record: str  # for the audit: what was asked and what the frames showed


def judge(steps: Sequence[str], poses: Sequence[Mapping[str, float]]) -> Verdict:
    """Whether the pose in the frames (each a mapping with "yaw" and "pitch", in degrees, as the
    verify worker's quality figures give them) moved as the steps ask, in order.

    A step is done at the first frame whose angle has moved by at least the step's degrees the
    asked way from some earlier frame (counted from the frame where the previous step was done):
    only movement counts, never where the head points, since the estimates of a frontal face are
    off by 5-10 degrees from one face to another.
    """
    start = 0
    done = []
    for name in steps:
        step = STEPS[name]
        reached, moved = _movement(step, poses, start)
        if reached is None:
            record = f"{step.name}: not done ({step.axis} moved at most {moved:.0f}° that way, {step.degrees:.0f}° needed)"
            return Verdict(False, FOLLOW_THE_INSTRUCTION.format(instruction=instruction(steps).lower()),
                           _record(steps, [*done, record]))
        done.append(f"{step.name}: {step.axis} moved {moved:.0f}° by frame {reached + 1}")
        start = reached
    return Verdict(True, "", _record(steps, done))


def _movement(step: Step, poses: Sequence[Mapping[str, float]], start: int) -> tuple[int | None, float]:
    """The first frame from ``start`` on where the step is done, and how far the angle moved the
    asked way (the most it moved, when it is never done)."""
    lowest = None
    most = 0.0
    for index in range(start, len(poses)):
        value = step.sign * float(poses[index][step.axis])
        if lowest is not None:
            most = max(most, value - lowest)
            if value - lowest >= step.degrees:
                return index, value - lowest
        lowest = value if lowest is None else min(lowest, value)
    return None, most


def _record(steps: Sequence[str], findings: list[str]) -> str:
    return f"Asked: {', then '.join(steps)}. " + "; ".join(findings) + "."


def not_judged(steps: Sequence[str]) -> str:
    """The audit's words for a challenge whose frames were refused before their pose was judged."""
    return f"Asked: {', then '.join(steps)}. Not judged: the check ended before the pose was looked at."
