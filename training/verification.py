"""Deciding whether two face embeddings show the same person.

Embeddings are compared by Euclidean distance: the smaller the distance, the more alike the faces.
A pair is a match when its distance is at most the threshold. The threshold is calibrated on
impostor pairs (two different people) so that strangers rarely pass for someone enrolled.

Pure numpy: this module must stay importable without Django or TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Slack for products such as 0.29 * 100 that land a hair below the whole number they stand for.
_ROUNDING_SLACK = 1e-9


def distance(a: ArrayLike, b: ArrayLike) -> float | NDArray[np.float64]:
    """Euclidean distance between two embeddings, or row by row between two (n, d) arrays."""
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(
            f"Embeddings must have the same shape to be compared; got {first.shape} and {second.shape}."
        )
    if first.ndim not in (1, 2):
        raise ValueError(
            f"Expected one embedding (1-D) or one embedding per row (2-D); got {first.ndim} dimensions."
        )
    distances = np.linalg.norm(first - second, axis=-1)
    if first.ndim == 1:
        return float(distances)
    return distances


def decide(distance: float, threshold: float) -> bool:
    """Return True (same person) when distance <= threshold.

    Tie rule: a distance exactly equal to the threshold is a match. calibrate_threshold relies on
    this rule when it counts false matches. A NaN distance never matches.
    """
    return bool(distance <= threshold)


def identify(embedding: ArrayLike, gallery: ArrayLike, threshold: float) -> tuple[int | None, float]:
    """Open-set identification: the index of the nearest gallery embedding and its distance, or
    (None, distance) when even the nearest is farther than the threshold: an unknown person."""
    rows = np.atleast_2d(np.asarray(gallery, dtype=np.float64))
    if rows.size == 0:
        return None, math.inf
    distances = np.linalg.norm(rows - np.asarray(embedding, dtype=np.float64), axis=1)
    nearest = int(np.argmin(distances))
    return (nearest if decide(distances[nearest], threshold) else None), float(distances[nearest])


@dataclass(frozen=True)
class Calibration:
    """A threshold and the rates measured with it on the calibration pairs."""

    threshold: float
    target_false_match_rate: float
    false_match_rate: float
    true_match_rate: float
    genuine_pairs: int
    impostor_pairs: int


def minimum_impostor_pairs(target_false_match_rate: float) -> int:
    """How many impostor pairs it takes before one false match is a rate as small as the target."""
    _check_rate(target_false_match_rate)
    return math.ceil(1.0 / target_false_match_rate - _ROUNDING_SLACK)


def calibrate_threshold(
    genuine_distances: ArrayLike,
    impostor_distances: ArrayLike,
    target_false_match_rate: float,
) -> Calibration:
    """The largest threshold whose false-match rate on the impostor distances is <= the target.

    A larger threshold would let more strangers through, so unknown people come out as unknown
    at the chosen rate. Refuses (ValueError) when there are fewer than ceil(1 / target) impostor
    pairs: with fewer, a single false match already exceeds the target, so the measured rate
    cannot show that the target is met.
    """
    impostor = _as_distances(impostor_distances, "impostor distances")
    needed = minimum_impostor_pairs(target_false_match_rate)
    if impostor.size < needed:
        raise ValueError(
            f"Too few impostor pairs to calibrate a false-match rate of {target_false_match_rate:g}: "
            f"got {impostor.size}, need at least {needed}. Compare more pairs of different people, "
            f"or choose a larger target rate."
        )
    return operating_point(genuine_distances, impostor, target_false_match_rate)


def operating_point(
    genuine_distances: ArrayLike,
    impostor_distances: ArrayLike,
    target_false_match_rate: float,
) -> Calibration:
    """Like calibrate_threshold but without the minimum number of impostor pairs.

    With few impostor pairs the only rate below the target may be zero, so the threshold lands
    just under the smallest impostor distance. Evaluation uses this to report TAR at a FAR the
    data cannot fully resolve. Failed comparisons come as +inf (non-matches): they count among
    the pairs, and below a target of 1 the threshold stays finite, so a failed impostor is never
    accepted. Should more impostor distances than the target allows be -inf, no threshold meets
    the target: the threshold is then -inf and false_match_rate reports the rate measured there.
    """
    _check_rate(target_false_match_rate)
    genuine = _as_distances(genuine_distances, "genuine distances")
    impostor = np.sort(_as_distances(impostor_distances, "impostor distances"))
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("Need at least one genuine pair and one impostor pair to set a threshold.")
    allowed_false_matches = math.floor(target_false_match_rate * impostor.size + _ROUNDING_SLACK)
    if allowed_false_matches >= impostor.size:
        threshold = math.inf
    else:
        # Any threshold at or above this impostor's distance would accept one impostor too many,
        # so the largest allowed threshold is the float just below it.
        first_excess = impostor[allowed_false_matches]
        threshold = float(np.nextafter(first_excess, -np.inf))
    return Calibration(
        threshold=threshold,
        target_false_match_rate=target_false_match_rate,
        false_match_rate=_share_at_or_below(impostor, threshold),
        true_match_rate=_share_at_or_below(genuine, threshold),
        genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size),
    )


def best_accuracy_threshold(distances: ArrayLike, same: ArrayLike) -> float:
    """The threshold that classifies the most pairs correctly.

    Candidates are the midpoints between consecutive distinct sorted distances, plus one below
    the smallest (reject all) and the largest distance itself (accept all). When several
    candidates tie on accuracy, the smallest (strictest) one wins.
    """
    values = _as_distances(distances, "distances")
    labels = _as_labels(same, values.size)
    if values.size == 0:
        raise ValueError("Need at least one pair to choose a threshold.")
    genuine = np.sort(values[labels])
    impostor = np.sort(values[~labels])
    candidates = _candidate_thresholds(np.unique(values))
    accepted_genuine = np.searchsorted(genuine, candidates, side="right")
    rejected_impostor = impostor.size - np.searchsorted(impostor, candidates, side="right")
    correct = accepted_genuine + rejected_impostor
    return float(candidates[int(np.argmax(correct))])


def _candidate_thresholds(distinct_sorted: NDArray[np.float64]) -> NDArray[np.float64]:
    """One threshold per way of cutting the sorted distances into accepted and rejected."""
    lower = distinct_sorted[:-1]
    upper = distinct_sorted[1:]
    with np.errstate(invalid="ignore", over="ignore"):
        midpoints = lower + (upper - lower) / 2
    # Midpoints involving an infinity are not usable; the lower value cuts in the same place.
    between = np.where(np.isfinite(midpoints), midpoints, lower)
    cuts = [between, distinct_sorted[-1:]]
    if distinct_sorted[0] > -np.inf:
        cuts.insert(0, np.nextafter(distinct_sorted[:1], -np.inf))
    return np.concatenate(cuts)


def _share_at_or_below(values: NDArray[np.float64], threshold: float) -> float:
    return float(np.count_nonzero(values <= threshold) / values.size)


def _check_rate(rate: float) -> None:
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"A false-match rate must be above 0 and at most 1; got {rate!r}.")


def _as_distances(values: ArrayLike, what: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"Expected a flat list of {what}; got an array of shape {array.shape}.")
    if np.isnan(array).any():
        raise ValueError(f"The {what} contain NaN; mark failed comparisons with +inf instead.")
    return array


def _as_labels(same: ArrayLike, count: int) -> NDArray[np.bool_]:
    labels = np.asarray(same)
    if labels.shape != (count,):
        raise ValueError(f"Expected {count} same/different labels; got shape {labels.shape}.")
    return labels.astype(bool)
