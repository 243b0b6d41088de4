"""The quality gate: may a fine-tuned network replace the active one?

Both networks are measured on the same two sets of people: the validation identities held out of
training, and a fixed reference set never trained on (all of LFW DevTest's images by default).
Every two images of a set are compared (2,741 images give 3.75 M pairs), since a real change of a
point or less is invisible on a list of 1,000 pairs. The candidate is accepted only if its true
match rate at a false match rate of 1e-3 rises on validation and does not fall by more than 0.2
points on the reference set.

Pure numpy and matplotlib (Agg, no pyplot): no Django, no TensorFlow.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy
from matplotlib.figure import Figure


GATE_FAR = 1e-3
MAX_REFERENCE_DROP = 0.002
# Rows compared at once: a block of 512 rows against 3,000 images is 12 MB of float64.
BLOCK_ROWS = 512
# The ROC curve kept for plotting: TAR at these false match rates (log-spaced), plus the EER.
ROC_FARS = tuple(float(rate) for rate in numpy.logspace(-6, 0, 49))
PLOT_LOWEST_FAR = 1e-5
# Figures may differ by float rounding; a drop of exactly 0.2 points still passes.
TOLERANCE = 1e-9
# As in training.verification: 0.29 * 100 may land a hair below the whole number it stands for.
ROUNDING_SLACK = 1e-9


def rate_name(rate: float) -> str:
    """1e-3 -> "1e-3" (the key suffix of the figures at that rate)."""
    exponent = round(math.log10(rate))
    return f"1e{exponent}" if math.isclose(rate, 10.0**exponent) else f"{rate:g}"


def tar_key(rate: float = GATE_FAR) -> str:
    return f"tar_at_far_{rate_name(rate)}"


# --- Measuring one network on one set --------------------------------------------------------------


def all_pairs_metrics(embeddings, labels, fars: Sequence[float] = (GATE_FAR,)) -> dict:
    """Figures over every two images: genuine pairs share a label. TAR (and the threshold) at each
    false match rate in ``fars``, the pair counts, the EER, and the ROC curve at log-spaced false
    match rates for plotting; JSON-serialisable. An embedding that is not finite (a wrecked
    network) makes its pairs non-matches, as a failed comparison is in training.evaluation."""
    genuine, impostor = pair_distances(embeddings, labels)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("Need images of at least two people, and two images of one of them, to compare.")
    genuine.sort()
    impostor.sort()
    metrics = {
        "images": int(len(labels)),
        "identities": int(len(numpy.unique(labels))),
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
    }
    for rate in fars:
        true_match_rate, threshold = tar_at_far(genuine, impostor, rate)
        metrics[tar_key(rate)] = true_match_rate
        metrics[f"threshold_at_far_{rate_name(rate)}"] = _json_number(threshold)
    metrics["eer"] = equal_error_rate(genuine, impostor)
    metrics["roc"] = roc_points(genuine, impostor)
    return metrics


def pair_distances(embeddings, labels) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(genuine, impostor) Euclidean distances of every two rows, computed in blocks of rows (the
    whole matrix of a large set would not fit)."""
    vectors = numpy.asarray(embeddings, dtype=numpy.float64)
    labels = numpy.asarray(labels).reshape(-1)
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise ValueError(f"Expected one embedding per label; got {vectors.shape} for {len(labels)} labels.")
    usable = numpy.isfinite(vectors).all(axis=1)
    vectors = numpy.where(usable[:, None], vectors, 0.0)
    squared_norms = (vectors**2).sum(axis=1)
    genuine, impostor = [], []
    for start in range(0, len(vectors), BLOCK_ROWS):
        rows = slice(start, min(start + BLOCK_ROWS, len(vectors)))
        squared = squared_norms[rows, None] - 2.0 * vectors[rows] @ vectors.T + squared_norms[None, :]
        distances = numpy.sqrt(numpy.maximum(squared, 0.0))
        distances[~(usable[rows, None] & usable[None, :])] = numpy.inf
        row_index = numpy.arange(rows.start, rows.stop)[:, None]
        later = numpy.arange(len(vectors))[None, :] > row_index  # each pair once, no image with itself
        same = labels[rows, None] == labels[None, :]
        genuine.append(distances[later & same])
        impostor.append(distances[later & ~same])
    return numpy.concatenate(genuine), numpy.concatenate(impostor)


def tar_at_far(genuine_sorted: numpy.ndarray, impostor_sorted: numpy.ndarray, rate: float) -> tuple[float, float]:
    """TAR at the largest threshold that accepts at most ``rate`` of the impostor pairs, and that
    threshold: training.verification.operating_point's rule, on arrays sorted once (it sorts on
    every call, seconds for millions of pairs)."""
    allowed = math.floor(rate * impostor_sorted.size + ROUNDING_SLACK)
    if allowed >= impostor_sorted.size:
        threshold = math.inf
    else:
        threshold = float(numpy.nextafter(impostor_sorted[allowed], -numpy.inf))
    accepted = numpy.searchsorted(genuine_sorted, threshold, side="right")
    return float(accepted / genuine_sorted.size), threshold


def equal_error_rate(genuine_sorted: numpy.ndarray, impostor_sorted: numpy.ndarray) -> float:
    """The rate where false matches equal false non-matches, read at the genuine distances (the
    only thresholds where the false non-match rate changes), interpolated between the two nearest."""
    thresholds = genuine_sorted
    false_match = numpy.searchsorted(impostor_sorted, thresholds, side="right") / impostor_sorted.size
    false_non_match = 1.0 - numpy.arange(1, thresholds.size + 1) / thresholds.size
    gap = false_match - false_non_match  # rises along the thresholds
    after = int(numpy.argmax(gap >= 0)) if (gap >= 0).any() else thresholds.size - 1
    if after == 0 or gap[after] == 0:
        return float((false_match[after] + false_non_match[after]) / 2)
    before = after - 1
    share = -gap[before] / (gap[after] - gap[before])
    return float(false_match[before] + share * (false_match[after] - false_match[before]))


def roc_points(genuine_sorted: numpy.ndarray, impostor_sorted: numpy.ndarray) -> dict:
    """TAR at log-spaced false match rates (only those the impostor pairs can resolve)."""
    resolvable = [rate for rate in ROC_FARS if rate * impostor_sorted.size >= 1.0 or rate == ROC_FARS[-1]]
    tars = [tar_at_far(genuine_sorted, impostor_sorted, rate)[0] for rate in resolvable]
    return {"far": resolvable, "tar": tars}


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- The decision ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """Whether the candidate may replace the active network, why in plain words, and the figures
    the decision read: {"validation"|"reference": {"before", "after", "change"}}."""

    accepted: bool
    reasons: list[str]
    figures: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"accepted": self.accepted, "reasons": list(self.reasons), "figures": self.figures}


def judge(before: dict, after: dict, *, max_reference_drop: float = MAX_REFERENCE_DROP) -> Verdict:
    """``before`` (the active network) and ``after`` (the candidate) are {"validation": metrics,
    "reference": metrics} from all_pairs_metrics. Accepted only if TAR at FAR 1e-3 rises
    (strictly) on validation AND falls by at most ``max_reference_drop`` (0.002: 0.2 points) on
    the reference set."""
    key = tar_key(GATE_FAR)
    figures = {
        part: {"before": before[part][key], "after": after[part][key], "change": after[part][key] - before[part][key]}
        for part in ("validation", "reference")
    }
    validation, reference = figures["validation"], figures["reference"]
    improved = validation["change"] > TOLERANCE
    kept = -reference["change"] <= max_reference_drop + TOLERANCE
    reasons = [
        _describe("the validation people (held out of training)", validation)
        + (" It must rise to be accepted." if not improved else ""),
        _describe("the reference set (people never trained on)", reference)
        + ("" if kept else f" It may fall by at most {max_reference_drop * 100:.2f} points."),
    ]
    accepted = improved and kept
    reasons.append("Accepted: the new network is better and loses nothing that matters."
                   if accepted else "Rejected: the active network stays; the candidate is kept for inspection.")
    return Verdict(accepted=accepted, reasons=reasons, figures=figures)


def _describe(what: str, figure: dict) -> str:
    change = figure["change"] * 100
    movement = "rose" if change > 0 else "fell" if change < 0 else "stayed"
    return (f"True matches at 1 false match in 1,000 on {what} {movement} from {figure['before']:.2%} "
            f"to {figure['after']:.2%} ({change:+.2f} points).")


# --- Plots -----------------------------------------------------------------------------------------


def plot_roc(before: dict, after: dict) -> bytes:
    """PNG of the ROC curves of both networks on both sets ({"validation", "reference"} metrics
    each), FAR on a log axis, with each curve's TAR at FAR 1e-3 marked."""
    figure = Figure(figsize=(7, 5), dpi=100)
    axes = figure.add_subplot()
    colours = {"validation": "tab:blue", "reference": "tab:orange"}
    for part, colour in colours.items():
        for label, metrics, style in (("active", before, "--"), ("candidate", after, "-")):
            if part not in metrics:
                continue
            roc = metrics[part]["roc"]
            rates = numpy.maximum(numpy.asarray(roc["far"], dtype=float), PLOT_LOWEST_FAR)
            axes.plot(rates, roc["tar"], style, color=colour, label=f"{part}, {label}")
            axes.plot([GATE_FAR], [metrics[part][tar_key()]], "o", color=colour, fillstyle="none" if style == "--" else "full")
    axes.axvline(GATE_FAR, color="grey", linestyle=":", linewidth=1)
    axes.annotate("FAR 1e-3", (GATE_FAR, 0.02), rotation=90, fontsize=8, color="grey", ha="right")
    axes.set_xscale("log")
    axes.set_xlim(PLOT_LOWEST_FAR, 1.0)
    axes.set_ylim(0.0, 1.01)
    axes.set_xlabel("False match rate (FAR)")
    axes.set_ylabel("True match rate (TAR)")
    axes.set_title("Every two images: active network against the candidate")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


def plot_losses(epochs: Sequence[dict], best_epoch: int | None = None) -> bytes:
    """PNG of the training and validation loss per epoch and, where recorded, the validation TAR,
    with the best epoch (kept weights) marked; by default the epoch of the highest validation TAR."""
    figure = Figure(figsize=(7, 5), dpi=100)
    losses = figure.add_subplot(2, 1, 1)
    numbers = [record["epoch"] for record in epochs]
    for key, label in (("loss", "training loss"), ("validation_loss", "validation loss")):
        values = [record.get(key) for record in epochs]
        if any(value is not None for value in values):
            losses.plot(numbers, [numpy.nan if value is None else value for value in values], "o-", label=label)
    losses.set_ylabel("triplet loss")
    losses.grid(True, alpha=0.3)
    tars = figure.add_subplot(2, 1, 2, sharex=losses)
    values = [record.get("validation_tar") for record in epochs]
    if any(value is not None for value in values):
        tars.plot(numbers, [numpy.nan if value is None else value for value in values], "o-", color="tab:green",
                  label="validation TAR at FAR 1e-3")
    tars.set_xlabel("epoch")
    tars.set_ylabel("TAR at FAR 1e-3")
    tars.grid(True, alpha=0.3)
    best = best_epoch if best_epoch is not None else _best_epoch(epochs)
    for axes in (losses, tars):
        if best is not None:
            axes.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best})")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best", fontsize=8)
    return _png(figure)


def _best_epoch(epochs: Sequence[dict]) -> int | None:
    scored = [record for record in epochs if record.get("validation_tar") is not None]
    if scored:
        return max(scored, key=lambda record: record["validation_tar"])["epoch"]
    scored = [record for record in epochs if record.get("validation_loss") is not None]
    return min(scored, key=lambda record: record["validation_loss"])["epoch"] if scored else None


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
