"""Triplet loss and its online-mining variants for training face embeddings.

    L(a, p, n) = max(‖f(a) − f(p)‖² − ‖f(a) − f(n)‖² + margin, 0)

Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face
Recognition and Clustering", CVPR 2015. Batch-hard mining from Hermans, Beyer,
Leibe, "In Defense of the Triplet Loss for Person Re-Identification", 2017.

Distances are squared Euclidean distances, as in the formula above, unless a mining function
is given ``squared=False``: then they are plain Euclidean distances, the distance FRID decides
with. Fine-tuning dlib's network (whose outputs are not L2-normalised) worked better that way in
our trial: batch-hard on the raw distance with margin 0.1-0.2.

Two ways to train with it:

* explicit triplets: a model with three embedding outputs feeds
  `TripletLossLayer`, which adds the mean loss with `add_loss`, so the model
  compiles with an optimizer only;
* online mining: a model maps images to embeddings, the dataset yields
  (image, identity label) and the model compiles with
  `BatchHardTripletLoss(margin)` or `SemiHardTripletLoss(margin)`; triplets are
  then picked inside each batch, so batches must hold several photos of each
  identity;
* online mining as a layer: `MinedTripletLossLayer(margin, mining)` called on
  [embeddings, labels] adds the mined loss with `add_loss` and passes the
  embeddings through, so the labels are a model input and the model compiles
  with an optimizer only (training.finetune).
"""

import math
import numbers
from typing import Any

import keras
from keras import ops

SERIALIZATION_PACKAGE = "frid"


def validate_margin(margin: Any) -> float:
    """Return `margin` as a float, or raise ValueError unless it is a positive finite number."""
    # bool is a numbers.Real too, but True as a margin is surely a mistake.
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
        raise ValueError(
            f"The triplet margin must be a positive number, got {margin!r}."
        )
    if not math.isfinite(margin) or margin <= 0:
        raise ValueError(
            f"The triplet margin must be a positive finite number, got {margin!r}."
        )
    return float(margin)


def triplet_loss(anchor: Any, positive: Any, negative: Any, margin: float) -> Any:
    """Per-triplet loss max(‖a − p‖² − ‖a − n‖² + margin, 0).

    anchor, positive and negative have shape (B, D); the result has shape (B,).
    """
    margin = validate_margin(margin)
    positive_distance = ops.sum(ops.square(anchor - positive), axis=-1)
    negative_distance = ops.sum(ops.square(anchor - negative), axis=-1)
    return ops.relu(positive_distance - negative_distance + margin)


def pairwise_squared_distances(embeddings: Any) -> Any:
    """Matrix (B, B) of squared Euclidean distances between rows of `embeddings` (B, D).

    Computed as ‖x‖² − 2 x·y + ‖y‖²; rounding can make that slightly negative,
    so it is clamped at 0, and the diagonal is set to exactly 0.
    """
    embeddings = ops.convert_to_tensor(embeddings)
    squared_norms = ops.sum(ops.square(embeddings), axis=1)
    dot_products = ops.matmul(embeddings, ops.transpose(embeddings))
    distances = (
        ops.expand_dims(squared_norms, 1)
        - 2.0 * dot_products
        + ops.expand_dims(squared_norms, 0)
    )
    distances = ops.maximum(distances, 0.0)
    off_diagonal = 1.0 - ops.eye(ops.shape(embeddings)[0], dtype=distances.dtype)
    return distances * off_diagonal


def pairwise_distances(embeddings: Any, squared: bool = True) -> Any:
    """Matrix (B, B) of squared (default) or plain Euclidean distances between rows.

    The square root's gradient is infinite at 0 (the diagonal, and identical embeddings), which
    would turn the masked-out entries into NaN gradients; those entries stay exactly 0 instead.
    """
    distances = pairwise_squared_distances(embeddings)
    if squared:
        return distances
    positive = distances > 0.0
    return ops.where(positive, ops.sqrt(ops.where(positive, distances, 1.0)), 0.0)


def _flat_labels(labels: Any, embeddings: Any) -> Any:
    """Labels as a (B,) tensor, after checking the shapes that are known."""
    labels = ops.convert_to_tensor(labels)
    embeddings_rank = len(embeddings.shape)
    if embeddings_rank != 2:
        raise ValueError(
            "Embeddings must be a matrix of shape (batch, dimensions), "
            f"got shape {tuple(embeddings.shape)}."
        )
    label_shape = tuple(labels.shape)
    if not (
        len(label_shape) == 1 or (len(label_shape) == 2 and label_shape[1] == 1)
    ):
        raise ValueError(
            "Labels must have shape (batch,) or (batch, 1): one identity per "
            f"embedding, got shape {label_shape}."
        )
    label_count, embedding_count = label_shape[0], embeddings.shape[0]
    if (
        label_count is not None
        and embedding_count is not None
        and label_count != embedding_count
    ):
        raise ValueError(
            f"There are {label_count} labels for {embedding_count} embeddings; "
            "each embedding needs exactly one label."
        )
    return ops.reshape(labels, (-1,))


def _label_masks(labels: Any) -> tuple[Any, Any]:
    """Boolean (B, B) masks: positives (same label, not itself) and negatives (other label)."""
    same_label = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    not_itself = ops.logical_not(ops.cast(ops.eye(ops.shape(labels)[0]), "bool"))
    return ops.logical_and(same_label, not_itself), ops.logical_not(same_label)


def _mean_over(values: Any, valid: Any) -> Any:
    """Mean of `values` where `valid` is true; 0 when nothing is valid."""
    valid = ops.cast(valid, values.dtype)
    return ops.sum(values * valid) / ops.maximum(ops.sum(valid), 1.0)


def batch_hard_triplet_loss(labels: Any, embeddings: Any, margin: float, squared: bool = True) -> Any:
    """Batch-hard triplet loss (Hermans et al. 2017), a scalar.

    Each anchor is paired with its farthest positive and its nearest negative
    in the batch. Anchors that have no positive (their identity appears once)
    or no negative (the whole batch is one identity) are left out of the mean;
    anchors whose hardest triplet already satisfies the margin count with loss
    0. Returns 0 when no anchor is valid. ``squared=False`` mines and measures with the plain
    Euclidean distance.
    """
    margin = validate_margin(margin)
    embeddings = ops.convert_to_tensor(embeddings)
    labels = _flat_labels(labels, embeddings)
    distances = pairwise_distances(embeddings, squared)
    positive_mask, negative_mask = _label_masks(labels)

    # Distances are >= 0, so 0 is a neutral filler for the maximum.
    hardest_positive = ops.max(ops.where(positive_mask, distances, 0.0), axis=1)
    hardest_negative = ops.min(ops.where(negative_mask, distances, math.inf), axis=1)
    valid = ops.logical_and(
        ops.any(positive_mask, axis=1), ops.any(negative_mask, axis=1)
    )
    # Replace the inf of anchors without negatives before any arithmetic.
    hardest_negative = ops.where(valid, hardest_negative, 0.0)
    losses = ops.relu(hardest_positive - hardest_negative + margin)
    return _mean_over(losses, valid)


def batch_semi_hard_triplet_loss(labels: Any, embeddings: Any, margin: float, squared: bool = True) -> Any:
    """Semi-hard triplet loss (FaceNet, section 3.2), a scalar.

    Every (anchor, positive) pair with a ≠ p is used. Its negative is the
    nearest semi-hard one: d(a, n) > d(a, p) and d(a, n) < d(a, p) + margin.
    When the pair has no semi-hard negative, the hardest negative of the anchor
    (the nearest one) is used instead: if it is beyond the margin the pair's
    loss is simply 0, otherwise the pair learns from its worst violation.
    TensorFlow Addons' TripletSemiHardLoss differs on two points: its
    semi-hard test has no upper bound (d(a, n) > d(a, p) only), and its
    fallback is the farthest negative, which is gentler early in training,
    when FaceNet warns that the hardest negatives can collapse the embedding.
    Pairs whose anchor has no negative are left out of the mean; returns 0 when
    there is no valid pair. Memory is O(B³) for a batch of B embeddings. ``squared=False``
    mines and measures with the plain Euclidean distance.
    """
    margin = validate_margin(margin)
    embeddings = ops.convert_to_tensor(embeddings)
    labels = _flat_labels(labels, embeddings)
    distances = pairwise_distances(embeddings, squared)
    positive_mask, negative_mask = _label_masks(labels)

    # Indexed [anchor, positive, negative].
    anchor_positive = ops.expand_dims(distances, 2)
    anchor_negative = ops.expand_dims(distances, 1)
    semi_hard = ops.logical_and(
        ops.expand_dims(negative_mask, 1),
        ops.logical_and(
            anchor_negative > anchor_positive,
            anchor_negative < anchor_positive + margin,
        ),
    )
    nearest_semi_hard = ops.min(
        ops.where(semi_hard, anchor_negative, math.inf), axis=2
    )
    hardest_negative = ops.min(ops.where(negative_mask, distances, math.inf), axis=1)
    chosen_negative = ops.where(
        ops.any(semi_hard, axis=2),
        nearest_semi_hard,
        ops.expand_dims(hardest_negative, 1),
    )
    valid = ops.logical_and(
        positive_mask, ops.expand_dims(ops.any(negative_mask, axis=1), 1)
    )
    chosen_negative = ops.where(valid, chosen_negative, 0.0)
    losses = ops.relu(distances - chosen_negative + margin)
    return _mean_over(losses, valid)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class TripletLossLayer(keras.layers.Layer):
    """Adds the mean triplet loss of [anchor, positive, negative] embeddings to the model.

    Returns the per-triplet losses (B,), so a model can also report them.
    """

    def __init__(self, margin: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.margin = validate_margin(margin)

    def call(self, inputs: list[Any]) -> Any:
        if len(inputs) != 3:
            raise ValueError(
                "TripletLossLayer takes a list of three embedding batches: "
                f"[anchor, positive, negative], got {len(inputs)}."
            )
        anchor, positive, negative = inputs
        losses = triplet_loss(anchor, positive, negative, self.margin)
        self.add_loss(ops.mean(losses))
        return losses

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (input_shape[0][0],)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin}


class _MinedTripletLoss(keras.losses.Loss):
    """Shared part of the mining losses: y_true are identity labels, y_pred embeddings.

    Keras converts y_true to the loss dtype (float32), so labels must be
    integers below 2**24 to stay distinct.
    """

    def __init__(self, margin: float = 0.2, name: str | None = None, squared: bool = True, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.margin = validate_margin(margin)
        self.squared = bool(squared)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if sample_weight is not None:
            raise ValueError(
                "Triplet mining losses do not take sample weights: triplets are "
                "chosen across the whole batch, not per sample."
            )
        return super().__call__(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin, "squared": self.squared}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class BatchHardTripletLoss(_MinedTripletLoss):
    """Keras loss wrapping `batch_hard_triplet_loss` (y_true=labels, y_pred=embeddings)."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return batch_hard_triplet_loss(y_true, y_pred, self.margin, self.squared)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class SemiHardTripletLoss(_MinedTripletLoss):
    """Keras loss wrapping `batch_semi_hard_triplet_loss` (y_true=labels, y_pred=embeddings)."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return batch_semi_hard_triplet_loss(y_true, y_pred, self.margin, self.squared)


MINING = {"batch_hard": batch_hard_triplet_loss, "semi_hard": batch_semi_hard_triplet_loss}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class MinedTripletLossLayer(keras.layers.Layer):
    """Adds the triplet loss mined inside the batch (``mining`` "batch_hard" or "semi_hard") to
    the model with ``add_loss``; called on [embeddings, labels], returns the embeddings unchanged.

    ``squared=False`` (the default here) measures with the plain Euclidean distance, the one FRID
    decides with; the mining functions keep FaceNet's squared distance as their default.
    """

    def __init__(self, margin: float = 0.2, mining: str = "batch_hard", squared: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mining not in MINING:
            raise ValueError(f"Triplet mining must be one of {', '.join(MINING)}; got {mining!r}.")
        self.margin = validate_margin(margin)
        self.mining = mining
        self.squared = bool(squared)

    def call(self, inputs: list[Any]) -> Any:
        if len(inputs) != 2:
            raise ValueError(
                f"MinedTripletLossLayer takes [embeddings, labels], got {len(inputs)} inputs."
            )
        embeddings, labels = inputs
        self.add_loss(MINING[self.mining](labels, embeddings, self.margin, squared=self.squared))
        return embeddings

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin, "mining": self.mining, "squared": self.squared}
