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


# --- Open-set identification (1:N) with the margin rule ----------------------------------------


@dataclass(frozen=True)
class OpenSetPoint:
    """The threshold for searching a gallery of ``gallery_size`` faces with the margin rule, and
    the rates measured with it: strangers accepted as somebody (FPIR) and enrolled people found
    as themselves (TPIR)."""

    gallery_size: int
    threshold: float
    false_positive_rate: float
    true_positive_rate: float
    stranger_searches: int
    genuine_searches: int


def open_set_accepts(nearest: ArrayLike, second: ArrayLike, threshold: float, margin: float) -> NDArray[np.bool_]:
    """The margin rule: accepted when the nearest is within the threshold AND nearer than the
    second-nearest by at least ``margin`` (a gallery of one has no second: +inf)."""
    first = np.asarray(nearest, dtype=np.float64)
    return (first <= threshold) & (np.asarray(second, dtype=np.float64) - first >= margin)


def calibrate_open_set(
    embeddings: ArrayLike,
    labels: ArrayLike,
    gallery_sizes: list[int],
    margin: float,
    target_false_positive_rate: float = 1e-2,
    trials: int = 20,
    strangers_per_trial: int = 400,
    seed: int = 0,
) -> list[OpenSetPoint]:
    """Thresholds for 1:N searches at a target rate of strangers accepted, with the margin rule.

    Simulates galleries: each trial enrolls ``gallery_size`` random people with one photo (people
    with two or more photos), searches another photo of each (genuine searches) and one photo of
    up to ``strangers_per_trial`` people not enrolled (stranger searches), and notes each search's
    nearest and second-nearest distances. The threshold is the largest at which at most the target
    share of stranger searches is accepted. Unlike a bound from pairwise false-match rates, this
    counts what the decision does: a stranger near one employee is usually near others too, so
    the margin rule refuses him. Thresholds never grow with the gallery (a running minimum).
    """
    _check_rate(target_false_positive_rate)
    vectors = np.asarray(embeddings, dtype=np.float64)
    names = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rows = {name: np.flatnonzero(names == name) for name in np.unique(names)}
    enrollable = np.array([name for name, found in rows.items() if len(found) >= 2])
    searches = []
    for size in sorted(gallery_sizes):
        if size > len(enrollable) or size >= len(rows):
            raise ValueError(
                f"Cannot simulate a gallery of {size}: only {len(enrollable)} people have two photos "
                f"and {len(rows)} people in all. Use smaller gallery sizes or more photos."
            )
        genuine, strangers = [], []
        for _ in range(trials):
            gallery_people = rng.choice(enrollable, size=size, replace=False)
            others = np.setdiff1d(np.array(list(rows)), gallery_people)
            stranger_people = rng.choice(others, size=min(strangers_per_trial, len(others)), replace=False)
            gallery = vectors[[rows[name][0] for name in gallery_people]]
            nearest, second, index = _two_nearest(vectors[[rows[name][1] for name in gallery_people]], gallery)
            genuine.append(np.stack([nearest, second, index == np.arange(size)], axis=1))
            nearest, second, _ = _two_nearest(vectors[[rows[name][0] for name in stranger_people]], gallery)
            strangers.append(np.stack([nearest, second], axis=1))
        searches.append((size, np.concatenate(genuine), np.concatenate(strangers)))
    points, ceiling = [], math.inf
    for size, genuine, strangers in searches:
        ceiling = min(ceiling, _open_set_threshold(strangers, margin, target_false_positive_rate))
        accepted = open_set_accepts(strangers[:, 0], strangers[:, 1], ceiling, margin)
        found = open_set_accepts(genuine[:, 0], genuine[:, 1], ceiling, margin) & (genuine[:, 2] == 1)
        points.append(OpenSetPoint(size, ceiling, float(accepted.mean()), float(found.mean()),
                                   len(strangers), len(genuine)))
    return points


def _two_nearest(queries: NDArray, gallery: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    squared = (queries**2).sum(1)[:, None] - 2 * queries @ gallery.T + (gallery**2).sum(1)[None, :]
    distances = np.sqrt(np.maximum(squared, 0.0))
    if gallery.shape[0] == 1:
        return distances[:, 0], np.full(len(queries), np.inf), np.zeros(len(queries), dtype=int)
    order = np.argsort(distances, axis=1)[:, :2]
    picked = np.take_along_axis(distances, order, axis=1)
    return picked[:, 0], picked[:, 1], order[:, 0]


def _open_set_threshold(strangers: NDArray, margin: float, target: float) -> float:
    # Only strangers who keep the margin can ever be accepted; the threshold lets through at most
    # the target share of all stranger searches.
    passing = np.sort(strangers[strangers[:, 1] - strangers[:, 0] >= margin, 0])
    allowed = math.floor(target * len(strangers) + _ROUNDING_SLACK)
    return float(np.nextafter(passing[allowed], -np.inf)) if allowed < len(passing) else math.inf
