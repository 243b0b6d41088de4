"""A plain reading beside each quality figure of a face template: good, borderline or poor.

"Poor" is what enrollment refuses (training.faces.assess and its limits); "borderline" is within
those limits but near them, where a retake would usually give a better template.
"""

from __future__ import annotations

from dataclasses import dataclass

GOOD, BORDERLINE, POOR = "good", "borderline", "poor"


@dataclass(frozen=True)
class Figure:
    label: str
    shown: str  # the value with its unit, as HR reads it
    reading: str  # GOOD, BORDERLINE or POOR


def figures(quality: dict) -> list[Figure]:
    """The template's quality figures with their readings, in the order HR reads them."""
    # The limits live beside dlib in training.faces; only pages that show figures load it.
    from training import faces

    size, sharpness, brightness = quality["face_size"], quality["sharpness"], quality["brightness"]
    pose = [abs(quality[angle]) for angle in ("yaw", "pitch", "roll")]
    pose_limits = (faces.MAX_YAW, faces.MAX_PITCH, faces.MAX_ROLL)
    return [
        Figure("face", f"{size} px", _at_least(size, faces.MIN_FACE_SIZE, faces.MIN_FACE_SIZE * 1.25)),
        # LFW's 5th percentile is 13.9: below 1.5 times the limit a face is softer than most.
        Figure("sharpness", f"{sharpness}", _at_least(sharpness, faces.MIN_SHARPNESS, faces.MIN_SHARPNESS * 1.5)),
        Figure("brightness", f"{brightness}", _brightness(brightness, faces)),
        Figure(
            "pose",
            f"yaw {quality['yaw']}°, pitch {quality['pitch']}°, roll {quality['roll']}°",
            _worst(_at_most(angle, limit, limit * 2 / 3) for angle, limit in zip(pose, pose_limits)),
        ),
    ]


def _at_least(value: float, limit: float, comfortable: float) -> str:
    return POOR if value < limit else BORDERLINE if value < comfortable else GOOD


def _at_most(value: float, limit: float, comfortable: float) -> str:
    return POOR if value > limit else BORDERLINE if value > comfortable else GOOD


def _brightness(value: float, faces) -> str:
    # 15 grey levels inside either limit: a well-lit dark-skinned face reads about 48 and is good.
    low = _at_least(value, faces.MIN_BRIGHTNESS, faces.MIN_BRIGHTNESS + 15)
    high = _at_most(value, faces.MAX_BRIGHTNESS, faces.MAX_BRIGHTNESS - 15)
    return _worst([low, high])


def _worst(readings) -> str:
    readings = list(readings)
    for reading in (POOR, BORDERLINE):
        if reading in readings:
            return reading
    return GOOD
