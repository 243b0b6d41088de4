"""Real LFW photos for the liveness tests: one person's photos in different head poses (a head
turn), measured with the live engine as the verify worker measures frames.

LFW has no videos, so a turn is made of one person's photos ordered by the yaw that
training.faces estimates from their landmarks: the lowest (face towards the left of the photo:
the person's own right) to the highest (their own left)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy
import pytest
from PIL import Image

from tests.identity.browser import camera_frame
from tests.identity.real_faces import usable as usable_for_enrollment

# The turn must span this much estimated yaw: each liveness step needs 12 degrees (identity.liveness),
# and a photo scaled into a camera frame reads a few degrees differently.
MIN_SPAN_DEGREES = 30.0
# Every two photos of the turn this far inside the 1:1 threshold, so that the frames are plainly
# "the same person" whatever the frame's scale does to the embedding.
SAME_PERSON_SHARE = 0.85
PHOTOS_LOOKED_AT = 30


@dataclass(frozen=True)
class Turn:
    """Photos of one person, their estimated yaw rising: ``low`` (turned to their own right),
    ``middle``, ``high`` (turned to their own left), and ``other``, a further photo of them to
    enroll."""

    low: Path
    middle: Path
    high: Path
    other: Path
    yaws: tuple[float, float, float]

    @property
    def person(self) -> str:
        return self.low.parent.name


def photo_bytes(photo: Path) -> bytes:
    return photo.read_bytes()


def camera_jpeg(photo: Path) -> bytes:
    """The photo as the page's camera frame shows it (tests.identity.browser.camera_frame), as JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(camera_frame(photo)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def head_turns(faces_dir: Path, version, count: int = 1, frame: Callable[[Path], bytes] = photo_bytes,
               exclude: tuple[str, ...] = ()) -> list[Turn]:
    """``count`` LFW people (never those in ``exclude``), each with photos whose yaw, measured on
    ``frame(photo)`` by the live engine, spans MIN_SPAN_DEGREES, all within the same-person bound."""
    engine = version.engine(live=True)
    bound = SAME_PERSON_SHARE * version.threshold
    found = []
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir() and path.name not in exclude)
    for person in people:
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < 12:
            continue
        turn = _turn_of(photos[:PHOTOS_LOOKED_AT], engine, bound, frame)
        if turn is not None:
            found.append(turn)
            if len(found) == count:
                return found
    pytest.fail(f"Fewer than {count} LFW people have photos whose yaw spans {MIN_SPAN_DEGREES} degrees.")


def _turn_of(photos: list[Path], engine, bound: float, frame: Callable[[Path], bytes]) -> Turn | None:
    analyses = engine.analyse_photos([frame(photo) for photo in photos])
    usable = [(photo, analysis.face.quality.yaw, analysis.embedding)
              for photo, analysis in zip(photos, analyses) if analysis.embedding is not None]
    if len(usable) < 4:
        return None

    def close(first, second) -> bool:
        return float(numpy.linalg.norm(first[2] - second[2])) <= bound

    widest = None
    for first, second in combinations(usable, 2):
        low, high = sorted((first, second), key=lambda item: item[1])
        if high[1] - low[1] >= MIN_SPAN_DEGREES and close(low, high):
            if widest is None or high[1] - low[1] > widest[1][1] - widest[0][1]:
                widest = (low, high)
    if widest is None:
        return None
    low, high = widest
    between = [item for item in usable if low[1] < item[1] < high[1] and close(item, low) and close(item, high)]
    if not between:
        return None
    middle = min(between, key=lambda item: abs(item[1] - (low[1] + high[1]) / 2))
    # Enrolled with a photo that passes enrollment's own limits (a turned head does not).
    other = next((item[0] for item in usable
                  if item not in (low, middle, high) and close(item, middle) and usable_for_enrollment(item[0])), None)
    if other is None:
        return None
    return Turn(low[0], middle[0], high[0], other, (low[1], middle[1], high[1]))
