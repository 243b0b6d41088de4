"""Reading verification pair lists and scoring a system's distances on them.

Conventions shared by every function here:
- distances[i] is the embedding distance of pair i; smaller means more alike; a pair is
  accepted as a match when distance <= threshold (verification.decide).
- same[i] is True for a genuine pair (one person twice), False for an impostor pair.
- Rates are false match rate (FMR, also called FAR: impostor pairs accepted / impostor pairs)
  and true match rate (TMR, also called TAR: genuine pairs accepted / genuine pairs).

Failures are counted as ISO/IEC 19795-1 counts them for a system's rates:
- An image where no face was found, or that could not be read, is a failure to acquire. Its
  share of the images is reported on its own (`SystemResult.failure_to_acquire_rate`, FTA).
- A comparison that could not be made (a pair with such an image) is a non-match decision:
  a false non-match for a genuine pair, a correct rejection for an impostor pair. In the
  ROC-based figures (AUC, EER, TAR@FAR) and in calibration both kinds get distance +inf,
  which no threshold below +inf accepts: a failed impostor pair is never a false match, yet
  still counts among the impostor pairs. `failed` marks these pairs in `score` and
  `ten_fold_accuracy`.
- The accuracies (at the threshold, and 10-fold) stay stricter: every failed pair is a wrong
  answer there, whatever its label, so an image without a face always costs accuracy.

Pure numpy and matplotlib (Agg, no pyplot): importable without Django or TensorFlow.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from training.verification import best_accuracy_threshold, minimum_impostor_pairs, operating_point

logger = logging.getLogger(__name__)

CSV_HEADER = ["image_a", "image_b", "same"]
TRUE_WORDS = {"1", "true", "yes"}
FALSE_WORDS = {"0", "false", "no"}
PLOT_LOWEST_FALSE_MATCH_RATE = 1e-4
MARKED_FALSE_MATCH_RATES = (1e-2, 1e-3)


@dataclass(frozen=True)
class Pair:
    image_a: Path
    image_b: Path
    same: bool


def read_pairs(pairs_file: str | Path, images_dir: str | Path) -> list[Pair]:
    """Read an LFW pairs file or a CSV pair list into Pairs, in file order.

    LFW format (fields separated by any whitespace):
      `name i j`              same person, images i and j
      `name1 i name2 j`       different people
    with image k of a person at images_dir/name/name_%04d.jpg. An optional count line at the
    top ("10 300" or "1100") is skipped. CSV format: a header `image_a,image_b,same` then one
    row per pair, paths relative to images_dir, same one of 1/0/true/false/yes/no.
    Images are not checked for existence here. Bad lines raise ValueError naming file and line.
    """
    pairs_path = Path(pairs_file)
    images_root = Path(images_dir)
    with pairs_path.open(encoding="utf-8", newline="") as handle:
        text = handle.read()
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first_line.lower().startswith(CSV_HEADER[0]):
        return _read_csv_pairs(text, pairs_path, images_root)
    return _read_lfw_pairs(text, pairs_path, images_root)


def _read_lfw_pairs(text: str, pairs_path: Path, images_root: Path) -> list[Pair]:
    pairs = []
    seen_content = False
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if not seen_content and _is_count_line(fields):
            seen_content = True
            continue
        seen_content = True
        pairs.append(_lfw_pair(fields, images_root, f"{pairs_path}:{line_number}"))
    return pairs


def _is_count_line(fields: list[str]) -> bool:
    return len(fields) in (1, 2) and all(field.isdigit() for field in fields)


def _lfw_pair(fields: list[str], images_root: Path, where: str) -> Pair:
    if len(fields) == 3:
        name, first, second = fields
        return Pair(
            _lfw_image(images_root, name, first, where),
            _lfw_image(images_root, name, second, where),
            same=True,
        )
    if len(fields) == 4:
        first_name, first, second_name, second = fields
        if first_name == second_name:
            raise ValueError(
                f"{where}: a four-field line is a different-people pair, but both names are {first_name!r}."
            )
        return Pair(
            _lfw_image(images_root, first_name, first, where),
            _lfw_image(images_root, second_name, second, where),
            same=False,
        )
    raise ValueError(
        f"{where}: expected 'name i j' (same person) or 'name1 i name2 j' (different people); "
        f"got {len(fields)} fields."
    )


def _lfw_image(images_root: Path, name: str, number: str, where: str) -> Path:
    if not number.isdigit() or int(number) < 1:
        raise ValueError(f"{where}: image number must be a whole number from 1 up; got {number!r}.")
    return images_root / name / f"{name}_{int(number):04d}.jpg"


def _read_csv_pairs(text: str, pairs_path: Path, images_root: Path) -> list[Pair]:
    reader = csv.reader(text.splitlines())
    header = [field.strip().lower() for field in next(reader)]
    if header != CSV_HEADER:
        raise ValueError(
            f"{pairs_path}:1: expected the header {','.join(CSV_HEADER)}; got {','.join(header)}."
        )
    pairs = []
    for row in reader:
        where = f"{pairs_path}:{reader.line_num}"
        if not any(field.strip() for field in row):
            continue
        if len(row) != 3:
            raise ValueError(f"{where}: expected 3 fields (image_a,image_b,same); got {len(row)}.")
        image_a, image_b, same = (field.strip() for field in row)
        if not image_a or not image_b:
            raise ValueError(f"{where}: both image paths are required.")
        pairs.append(Pair(images_root / image_a, images_root / image_b, _parse_same(same, where)))
    return pairs


def _parse_same(word: str, where: str) -> bool:
    if word.lower() in TRUE_WORDS:
        return True
    if word.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"{where}: 'same' must be one of 1/0/true/false/yes/no; got {word!r}.")


def ten_fold_accuracy(
    distances: ArrayLike,
    same: ArrayLike,
    folds: int = 10,
    failed: ArrayLike | None = None,
) -> tuple[float, float]:
    """Mean and standard deviation (ddof=0) of accuracy over consecutive, balanced folds.

    The same-person pairs (in file order) are cut into `folds` contiguous parts, and so are the
    different-people pairs; fold k is the k-th part of each. On LFW's View 2 file (ten sets of
    300 same then 300 different pairs) these are exactly the official folds, and on View 1
    files (all same pairs, then all different) every fold still holds both kinds. For each fold,
    the threshold that maximises accuracy on the other folds is applied to it. Failed pairs play
    no part in choosing a threshold and are wrong answers in the fold they belong to, genuine
    or impostor alike (unlike the ROC figures, where a failed impostor pair is a correct rejection).
    """
    values, labels, failures = _as_pairs(distances, same, failed)
    if not 2 <= folds <= values.size:
        raise ValueError(f"Need between 2 and {values.size} folds for {values.size} pairs; got {folds}.")
    fold_accuracies = []
    for test_indices in _balanced_folds(labels, folds):
        training = np.ones(values.size, dtype=bool)
        training[test_indices] = False
        usable = training & ~failures
        # With every training pair failed there is nothing to learn from; accept everything.
        threshold = best_accuracy_threshold(values[usable], labels[usable]) if usable.any() else math.inf
        fold_accuracies.append(
            _accuracy(values[test_indices], labels[test_indices], failures[test_indices], threshold)
        )
    return float(np.mean(fold_accuracies)), float(np.std(fold_accuracies))


def _balanced_folds(labels: NDArray[np.bool_], folds: int) -> list[NDArray[np.intp]]:
    same_parts = np.array_split(np.flatnonzero(labels), folds)
    different_parts = np.array_split(np.flatnonzero(~labels), folds)
    folds_with_pairs = [np.sort(np.concatenate(parts)) for parts in zip(same_parts, different_parts)]
    return [fold for fold in folds_with_pairs if fold.size]  # tiny lists leave some folds empty


def roc_curve(
    distances: ArrayLike, same: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """False and true match rates at every distinct distance used as threshold, ascending.

    The first point is (0, 0) with threshold -inf, standing for "reject every pair"; the last
    threshold is the largest distance, which accepts every pair.
    """
    values, labels, _ = _as_pairs(distances, same, None)
    genuine, impostor = _split(values, labels)
    thresholds = np.unique(values)
    true_match_rates = np.searchsorted(genuine, thresholds, side="right") / genuine.size
    false_match_rates = np.searchsorted(impostor, thresholds, side="right") / impostor.size
    return (
        np.concatenate([[0.0], false_match_rates]),
        np.concatenate([[0.0], true_match_rates]),
        np.concatenate([[-np.inf], thresholds]),
    )


def auc(distances: ArrayLike, same: ArrayLike) -> float:
    """Area under the ROC curve: the chance a genuine pair is closer than an impostor pair (ties half)."""
    false_match_rates, true_match_rates, _ = roc_curve(distances, same)
    return float(np.trapezoid(true_match_rates, false_match_rates))


def equal_error_rate(distances: ArrayLike, same: ArrayLike) -> tuple[float, float]:
    """The rate where false matches equal false non-matches, and the threshold nearest to it.

    The rate is read where the ROC polyline crosses FMR = 1 - TMR (linear between points). The
    threshold is that of the ROC point on either side of the crossing with the smaller gap
    between the two error rates; on a tie, the smaller threshold.
    """
    false_match_rates, true_match_rates, thresholds = roc_curve(distances, same)
    # gap = FMR - FNMR, which never decreases along the curve: -1 at its start, +1 at its end.
    gap = false_match_rates + true_match_rates - 1.0
    after = int(np.argmax(gap >= 0))
    before = after - 1
    if gap[after] == 0:
        return float(false_match_rates[after]), float(thresholds[after])
    share = -gap[before] / (gap[after] - gap[before])
    rate = false_match_rates[before] + share * (false_match_rates[after] - false_match_rates[before])
    nearest = before if abs(gap[before]) <= abs(gap[after]) else after
    return float(rate), float(thresholds[nearest])


def tar_at_far(distances: ArrayLike, same: ArrayLike, far: float) -> tuple[float, float]:
    """True match rate at the largest threshold whose false match rate is <= far, and that threshold.

    Same rule as verification.calibrate_threshold, but with fewer than ceil(1 / far) impostor
    pairs it still answers (at zero false matches, a stricter point than asked) and logs a warning.
    """
    values, labels, _ = _as_pairs(distances, same, None)
    genuine, impostor = _split(values, labels)
    if impostor.size < minimum_impostor_pairs(far):
        logger.warning(
            "Only %d impostor pairs: a false-match rate of %g cannot be measured; "
            "reporting TAR at zero false matches.",
            impostor.size,
            far,
        )
    calibration = operating_point(genuine, impostor, far)
    return calibration.true_match_rate, calibration.threshold


@dataclass(frozen=True)
class Metrics:
    pairs: int
    threshold: float
    accuracy: float
    accuracy_10fold: float
    accuracy_10fold_std: float
    auc: float
    eer: float
    tar_at_far_1e_2: float
    threshold_at_far_1e_2: float
    tar_at_far_1e_3: float
    threshold_at_far_1e_3: float

    def as_dict(self) -> dict[str, int | float | None]:
        """JSON-ready values; a non-finite threshold becomes None (null)."""
        values = {
            "pairs": self.pairs,
            "accuracy": self.accuracy,
            "accuracy_10fold": self.accuracy_10fold,
            "accuracy_10fold_std": self.accuracy_10fold_std,
            "auc": self.auc,
            "eer": self.eer,
            "tar_at_far_1e-2": self.tar_at_far_1e_2,
            "tar_at_far_1e-3": self.tar_at_far_1e_3,
            "threshold": self.threshold,
            "threshold_at_far_1e-2": self.threshold_at_far_1e_2,
            "threshold_at_far_1e-3": self.threshold_at_far_1e_3,
        }
        return {key: _json_number(value) for key, value in values.items()}


def score(
    distances: ArrayLike,
    same: ArrayLike,
    threshold: float,
    failed: ArrayLike | None = None,
    folds: int = 10,
) -> Metrics:
    """Every verification figure for one system on one pair list.

    `failed` marks comparisons that produced no distance; when omitted, pairs whose distance is
    +inf are taken as failed. Failed pairs are non-matches in AUC, EER and TAR@FAR (a false
    non-match if genuine, a correct rejection if impostor) and errors in both accuracies; see
    the module docstring.
    """
    values, labels, failures = _as_pairs(distances, same, failed)
    ranked = non_match_distances(values, failures)
    accuracy_10fold, accuracy_10fold_std = ten_fold_accuracy(values, labels, folds, failures)
    tar_1e_2, threshold_1e_2 = tar_at_far(ranked, labels, 1e-2)
    tar_1e_3, threshold_1e_3 = tar_at_far(ranked, labels, 1e-3)
    return Metrics(
        pairs=int(values.size),
        threshold=float(threshold),
        accuracy=_accuracy(values, labels, failures, threshold),
        accuracy_10fold=accuracy_10fold,
        accuracy_10fold_std=accuracy_10fold_std,
        auc=auc(ranked, labels),
        eer=equal_error_rate(ranked, labels)[0],
        tar_at_far_1e_2=tar_1e_2,
        threshold_at_far_1e_2=threshold_1e_2,
        tar_at_far_1e_3=tar_1e_3,
        threshold_at_far_1e_3=threshold_1e_3,
    )


def non_match_distances(distances: NDArray[np.float64], failed: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Distances with every failed pair at +inf, a non-match at any threshold below +inf (a false
    non-match for a genuine pair, a correct rejection for an impostor pair)."""
    return np.where(failed, np.inf, distances)


def plot_roc(
    curves: dict[str, tuple[ArrayLike, ArrayLike]],
    path: str | Path,
    title: str = "Face verification ROC",
) -> None:
    """Save a PNG of one ROC line per system (name -> (false match rates, true match rates)).

    The FAR axis is logarithmic from 1e-4 to 1; rates below 1e-4 (including 0) are drawn at the
    left edge. Dashed verticals mark FAR 1e-2 and 1e-3, with each system's TAR there as a dot.
    """
    figure = Figure(figsize=(7, 5), dpi=100)
    axes = figure.add_subplot()
    for name, (false_match_rates, true_match_rates) in curves.items():
        false_rates = np.asarray(false_match_rates, dtype=np.float64)
        true_rates = np.asarray(true_match_rates, dtype=np.float64)
        line = axes.plot(np.maximum(false_rates, PLOT_LOWEST_FALSE_MATCH_RATE), true_rates, label=name)[0]
        for far in MARKED_FALSE_MATCH_RATES:
            within = false_rates <= far
            if within.any():
                axes.plot([far], [true_rates[within].max()], "o", color=line.get_color())
    for far in MARKED_FALSE_MATCH_RATES:
        axes.axvline(far, color="grey", linestyle="--", linewidth=1)
        axes.annotate(f"FAR {far:g}", (far, 0.02), rotation=90, fontsize=8, color="grey", ha="right")
    axes.set_xscale("log")
    axes.set_xlim(PLOT_LOWEST_FALSE_MATCH_RATE, 1.0)
    axes.set_ylim(0.0, 1.01)
    axes.set_xlabel("False match rate (FAR)")
    axes.set_ylabel("True match rate (TAR)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    figure.savefig(Path(path), format="png")


def _accuracy(
    distances: NDArray[np.float64], same: NDArray[np.bool_], failed: NDArray[np.bool_], threshold: float
) -> float:
    correct = ~failed & ((distances <= threshold) == same)
    return float(np.count_nonzero(correct) / distances.size)


def _split(
    values: NDArray[np.float64], labels: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    genuine = np.sort(values[labels])
    impostor = np.sort(values[~labels])
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("Need at least one same-person pair and one different-people pair.")
    return genuine, impostor


def _as_pairs(
    distances: ArrayLike, same: ArrayLike, failed: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    values = np.asarray(distances, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"Expected a non-empty flat list of distances; got shape {values.shape}.")
    labels = np.asarray(same).astype(bool)
    failures = values == np.inf if failed is None else np.asarray(failed).astype(bool)
    for name, array in (("same", labels), ("failed", failures)):
        if array.shape != values.shape:
            raise ValueError(
                f"'{name}' has shape {array.shape}; expected one entry per pair, {values.shape}."
            )
    if np.isnan(values[~failures]).any():
        raise ValueError("Distances contain NaN; mark failed comparisons with +inf or `failed`.")
    return values, labels, failures


def _json_number(value: int | float) -> int | float | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- One system on one pair list ------------------------------------------------------------------


@dataclass(frozen=True)
class SystemResult:
    """A system's figures on a pair list, with the image counts a reader needs to trust them."""

    metrics: Metrics
    images: int
    no_face: int  # images where no face was detected (embedded anyway with --no-face center)
    failed_images: int  # images without an embedding (no face, unreadable): failures to acquire
    failed_pairs: int  # pairs without a distance: non-matches, and errors in the accuracies
    curve: tuple[NDArray[np.float64], NDArray[np.float64]]  # (false match rates, true match rates)

    @property
    def failure_to_acquire_rate(self) -> float:
        """FTA: the share of the images that gave no embedding."""
        return self.failed_images / self.images if self.images else 0.0

    def as_dict(self) -> dict[str, int | float | None]:
        return {"images": self.images, "no_face": self.no_face,
                "failure_to_acquire_rate": self.failure_to_acquire_rate, "failed_pairs": self.failed_pairs,
                **self.metrics.as_dict()}


def pair_distances(pairs: list[Pair], embedded) -> NDArray[np.float64]:
    """Each pair's embedding distance; +inf where an image has no embedding (a failed comparison).
    ``embedded`` is a training.engine.FileEmbeddings."""
    distances = np.full(len(pairs), np.inf)
    for index, pair in enumerate(pairs):
        first = embedded.embeddings.get(pair.image_a)
        second = embedded.embeddings.get(pair.image_b)
        if first is not None and second is not None:
            distances[index] = float(np.linalg.norm(np.asarray(first) - np.asarray(second)))
    return distances


def evaluate_embeddings(pairs: list[Pair], embedded, threshold: float, folds: int = 10) -> SystemResult:
    """Score embeddings of the pairs' images (``embedded``: a training.engine.FileEmbeddings)."""
    distances = pair_distances(pairs, embedded)
    same = np.array([pair.same for pair in pairs])
    failed = np.isinf(distances)  # already +inf: the non-match distance
    false_match_rates, true_match_rates, _ = roc_curve(distances, same)
    return SystemResult(
        metrics=score(distances, same, threshold, failed, folds),
        images=len(embedded.embeddings),
        no_face=len(embedded.no_face),
        failed_images=len(embedded.failed),
        failed_pairs=int(failed.sum()),
        curve=(false_match_rates, true_match_rates),
    )


@dataclass(frozen=True)
class AllPairsResult:
    """A system's ROC figures over every two photos of a set (a photo's folder names its person):
    millions of impostor pairs where a pair list holds hundreds, so that TAR at FAR 1e-3 is read
    off thousands of false matches rather than a handful, and small real changes show."""

    genuine: int
    impostor: int
    not_compared: int  # pairs with a photo that gave no embedding: non-matches
    auc: float
    eer: float
    tar_at_far_1e_2: float
    tar_at_far_1e_3: float
    threshold_at_far_1e_3: float

    def as_dict(self) -> dict[str, int | float | None]:
        values = {"genuine_pairs": self.genuine, "impostor_pairs": self.impostor, "not_compared": self.not_compared,
                  "auc": self.auc, "eer": self.eer, "tar_at_far_1e-2": self.tar_at_far_1e_2,
                  "tar_at_far_1e-3": self.tar_at_far_1e_3, "threshold_at_far_1e-3": self.threshold_at_far_1e_3}
        return {key: _json_number(value) for key, value in values.items()}


def evaluate_all_pairs(embedded) -> AllPairsResult:
    """Score every two photos of ``embedded`` (a training.engine.FileEmbeddings)."""
    genuine, impostor = distances_between_all_photos(embedded)
    distances = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(genuine.size, dtype=bool), np.zeros(impostor.size, dtype=bool)])
    tar_1e_3, threshold_1e_3 = tar_at_far(distances, same, 1e-3)
    return AllPairsResult(
        genuine=int(genuine.size), impostor=int(impostor.size), not_compared=int(np.isinf(distances).sum()),
        auc=auc(distances, same), eer=equal_error_rate(distances, same)[0],
        tar_at_far_1e_2=tar_at_far(distances, same, 1e-2)[0], tar_at_far_1e_3=tar_1e_3,
        threshold_at_far_1e_3=threshold_1e_3,
    )


def format_all_pairs_table(results: dict[str, AllPairsResult]) -> str:
    """A plain-text table of all-pairs figures, one row per system."""
    header = ["system", "genuine pairs", "impostor pairs", "not compared", "AUC", "EER", "TAR@FAR1e-2",
              "TAR@FAR1e-3", "threshold@FAR1e-3"]
    rows = [header] + [
        [name, f"{result.genuine:,}", f"{result.impostor:,}", f"{result.not_compared:,}", f"{result.auc:.4f}",
         f"{result.eer:.2%}", f"{result.tar_at_far_1e_2:.2%}", f"{result.tar_at_far_1e_3:.2%}",
         f"{result.threshold_at_far_1e_3:.3f}"]
        for name, result in results.items()
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    note = ("All pairs: every two of the listed photos, a photo's folder naming its person; a pair with a photo "
            "that gave no embedding is a non-match.")
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:] + [note])


TABLE_COLUMNS = (
    ("images", "images", "{:d}"),
    ("no face", "no_face", "{:d}"),
    ("FTA", "failure_to_acquire_rate", "{:.2%}"),
    ("failed pairs", "failed_pairs", "{:d}"),
    ("accuracy", "accuracy", "{:.2%}"),
    ("10-fold accuracy", "accuracy_10fold", None),
    ("AUC", "auc", "{:.4f}"),
    ("EER", "eer", "{:.2%}"),
    ("TAR@FAR1e-2", "tar_at_far_1e-2", "{:.2%}"),
    ("TAR@FAR1e-3", "tar_at_far_1e-3", "{:.2%}"),
    ("threshold", "threshold", "{:.3f}"),
)


def format_table(results: dict[str, SystemResult]) -> str:
    """A plain-text table, one row per system."""
    header = ["system"] + [title for title, _, _ in TABLE_COLUMNS]
    rows = [header]
    for name, result in results.items():
        values = result.as_dict()
        row = [name]
        for _, key, template in TABLE_COLUMNS:
            if key == "accuracy_10fold":
                row.append(f"{values['accuracy_10fold']:.2%} ± {values['accuracy_10fold_std']:.2%}")
            elif values[key] is None:
                row.append("-")
            else:
                row.append(template.format(values[key]))
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    pairs = next(iter(results.values())).metrics.pairs
    note = (f"{pairs} pairs; accuracy at each system's threshold. FTA: images with no face found or "
            f"unreadable. A failed pair is a non-match in AUC, EER and TAR@FAR (a false non-match if "
            f"genuine, a correct rejection if impostor) and an error in both accuracies. "
            f"TAR at FAR 1e-3 needs 1,000 impostor pairs: with fewer it is TAR at zero false matches.")
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:] + [note])


def first_of_each_kind(pairs: list[Pair], count: int) -> list[Pair]:
    """The first ``count`` same-person and ``count`` different-people pairs, in file order."""
    same = [pair for pair in pairs if pair.same][:count]
    different = [pair for pair in pairs if not pair.same][:count]
    return [pair for pair in pairs if pair in same or pair in different]


def distances_by_label(pairs: list[Pair], embedded) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(genuine, impostor) distances of the listed pairs; +inf (a non-match) where an image has no
    embedding, so a failed impostor pair counts among the impostors but never as a false match."""
    distances = pair_distances(pairs, embedded)
    same = np.array([pair.same for pair in pairs])
    return distances[same], distances[~same]


def distances_between_all_photos(embedded) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(genuine, impostor) distances over every two photos; a photo's folder names its person
    (LFW's layout), and a pair with a photo that has no embedding is at +inf (a non-match). Many
    more impostor pairs than a pair list holds, so that small false-match rates can be measured:
    3,443 photos give 5.9 million."""
    paths = list(embedded.embeddings)
    compared = np.array([embedded.embeddings[path] is not None for path in paths])
    dimension = next((len(embedding) for embedding in embedded.embeddings.values() if embedding is not None), 0)
    embeddings = np.zeros((len(paths), dimension))
    for row, path in enumerate(paths):
        if compared[row]:
            embeddings[row] = embedded.embeddings[path]
    people = np.array([path.parent.name for path in paths])
    genuine, impostor = [], []
    for index in range(len(paths) - 1):  # row by row: the full matrix would not fit for large sets
        distances = np.linalg.norm(embeddings[index + 1:] - embeddings[index], axis=1)
        distances[~(compared[index] & compared[index + 1:])] = np.inf
        same = people[index + 1:] == people[index]
        genuine.append(distances[same])
        impostor.append(distances[~same])
    return np.concatenate(genuine), np.concatenate(impostor)
