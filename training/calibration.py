"""Choosing a version's thresholds from labelled faces: one road for calibrate_model and for
training runs (a fine-tuned network moves its distances, so its thresholds are chosen again).

Pure numpy: distances in, the values ModelVersion.save_calibration stores out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from training.models import OPEN_SET_FALSE_MATCH_RATE
from training.verification import OpenSetPoint, calibrate_open_set, calibrate_threshold, operating_point

REPORTED_RATES = (1e-2, 1e-3, 1e-4, 1e-5)
OPEN_SET_GALLERY_SIZES = (10, 30, 100, 300, 600)
OPEN_SET_TRIALS = 50  # x 400 strangers: 20,000 stranger searches per gallery size


@dataclass
class Calibrated:
    """The chosen threshold, the operating points behind it, and the 1:N points if asked for."""

    threshold: float
    true_match_rate: float
    false_match_rate: float
    genuine_pairs: int
    impostor_pairs: int
    target_far: float
    described_as: str  # where the pairs came from, for threshold_source
    points: list = field(default_factory=list)  # [(rate, OperatingPoint)]
    open_set: list[OpenSetPoint] = field(default_factory=list)
    margin: float | None = None
    enrollable_people: int = 0

    def as_saved(self) -> dict:
        """What ModelVersion.save_calibration stores."""
        saved = {
            "threshold": self.threshold,
            "threshold_source": f"calibrated at FAR {self.target_far:g} on {self.described_as}: "
                                f"TAR {self.true_match_rate:.2%}",
            "calibration_points": [[rate, round(point.threshold, 4)] for rate, point in self.points],
            "calibration": {
                "pairs": self.described_as, "target_far": self.target_far, "threshold": self.threshold,
                "far": self.false_match_rate, "tar": self.true_match_rate,
                "genuine_pairs": self.genuine_pairs, "impostor_pairs": self.impostor_pairs,
            },
        }
        if self.open_set:
            saved["open_set"] = {
                "margin": self.margin, "false_positive_rate": OPEN_SET_FALSE_MATCH_RATE,
                "points": [[point.gallery_size, round(point.threshold, 4)] for point in self.open_set],
                "found": [[point.gallery_size, round(point.true_positive_rate, 4)] for point in self.open_set],
            }
        return saved


def calibrate(genuine: ArrayLike, impostor: ArrayLike, far: float, described_as: str) -> Calibrated:
    """The threshold at false-match rate ``far`` (ValueError when there are too few impostor pairs)."""
    genuine, impostor = np.asarray(genuine, dtype=np.float64), np.asarray(impostor, dtype=np.float64)
    chosen = calibrate_threshold(genuine, impostor, far)
    points = [(rate, operating_point(genuine, impostor, rate)) for rate in REPORTED_RATES
              if len(impostor) * rate >= 1]
    return Calibrated(
        threshold=float(chosen.threshold), true_match_rate=chosen.true_match_rate,
        false_match_rate=chosen.false_match_rate, genuine_pairs=chosen.genuine_pairs,
        impostor_pairs=chosen.impostor_pairs, target_far=far, described_as=described_as, points=points,
    )


def add_open_set(calibrated: Calibrated, vectors: ArrayLike, people: Sequence, margin: float) -> Calibrated:
    """Per gallery size (as many as the people allow), the threshold at which 1% of strangers are
    accepted under the margin rule."""
    enrollable = sum(count >= 2 for count in Counter(people).values())
    sizes = [size for size in OPEN_SET_GALLERY_SIZES if size <= enrollable and size < len(set(people))]
    calibrated.margin = margin
    calibrated.enrollable_people = enrollable
    if sizes:
        calibrated.open_set = calibrate_open_set(np.asarray(vectors), list(people), sizes, margin,
                                                 OPEN_SET_FALSE_MATCH_RATE, trials=OPEN_SET_TRIALS)
    return calibrated
