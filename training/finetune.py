"""Fine-tuning the embedding network with the triplet loss, and the article's ResNet50 recipe.

``fine_tune`` starts from a network (the active version's), trains only the layers named in
``Parameters.trainable`` (by default both 256-channel residual stages and the final dense layer:
on unseen people that raised TAR at FAR 1e-3 by 1.3-1.4 points and open-set recognition at 1%
strangers by 2-2.6 points, where the last stage alone gave no steady open-set gain and training
only the dense layer gave nothing), and leaves everything else exactly as it was. The frozen part runs once over
every chip and its mirror image; training then reads those cached activations, so an epoch costs
seconds on two cores instead of minutes.

``train_resnet50`` is the article's own recipe: Keras' ResNet50 from random weights (none can be
downloaded here) with a 128-d embedding head, trained whole with the same loss. It needs far more
data and time than an organisation usually has; it is here to be measured beside the fine-tune.

Both mine triplets online from balanced batches (K identities x up to M images), mirror chips at
random, stop early on held-out validation identities (keeping the best epoch's weights), and
return a network with the same input and output as the Embedder expects: 150x150 chips in, 128
floats out. No Django here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy
import tensorflow as tf

from training import gate
from training.data import LabelledChips, balanced_batches
from training.embedder import Embedder
from training.losses import MINING, MinedTripletLossLayer
from training.network import CHIP_SIZE, EMBEDDING_SIZE

logger = logging.getLogger(__name__)

BACKBONES = ("dlib", "resnet50")
# Rows the frozen part or the head runs at once: enough for the matrix kernels, little memory.
INFERENCE_BATCH = 64
# Fixed batches for the validation loss: the same every epoch, so epochs compare.
VALIDATION_LOSS_SEED = 12345


@dataclass
class Parameters:
    """How a run trains. The defaults are the recipe that worked in our trial on LFW (CPU):
    batch-hard triplets on the plain Euclidean distance (the one FRID decides with), margin 0.2,
    Adam at 1e-5 (1e-4 overfitted within 2 epochs), up to 15 epochs with early stopping,
    32 identities x up to 4 images per batch."""

    backbone: str = "dlib"
    loss: str = "batch_hard"  # or "semi_hard"
    squared: bool = False  # True: FaceNet's squared distance (semi-hard worked with it, margin 0.2)
    margin: float = 0.2
    learning_rate: float = 1e-5
    epochs: int = 15
    patience: int = 3  # epochs without a better validation figure before stopping
    identities_per_batch: int = 32
    images_per_identity: int = 4
    mirror: bool = True  # mirror chips at random in training; validation averages both, as the Embedder does
    seed: int = 0
    validation_share: float = 0.2  # of the identities, held out for early stopping and the gate
    # Layer-name prefixes that learn (dlib backbone): both 256-channel stages and the dense layer.
    # Only the last stage ("stage5", "embedding") gained as much on verification but not, steadily,
    # on the open set (BENCHMARKS, "Open set after fine-tuning, measured steadily").
    trainable: tuple[str, ...] = ("stage4", "stage5", "embedding")
    input_size: int = 112  # resnet50 only: chips are resized to this inside the model (CPU cost)

    def __post_init__(self) -> None:
        self.trainable = tuple(self.trainable)
        problems = []
        if self.backbone not in BACKBONES:
            problems.append(f"backbone must be one of {', '.join(BACKBONES)}, not {self.backbone!r}")
        if self.loss not in MINING:
            problems.append(f"loss must be one of {', '.join(MINING)}, not {self.loss!r}")
        for name in ("epochs", "identities_per_batch", "images_per_identity", "input_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name} must be a whole number from 1 up")
        if self.identities_per_batch < 2 or self.images_per_identity < 2:
            problems.append("a batch needs at least 2 identities and 2 images of each")
        if not self.margin > 0 or not self.learning_rate > 0:
            problems.append("margin and learning_rate must be positive")
        if self.patience < 1 or not 0 < self.validation_share < 1:
            problems.append("patience must be 1 or more and validation_share between 0 and 1")
        if self.backbone == "dlib" and not self.trainable:
            problems.append("trainable must name at least one layer prefix")
        if problems:
            raise ValueError("Training parameters: " + "; ".join(problems) + ".")

    @classmethod
    def for_backbone(cls, backbone: str, **changes) -> "Parameters":
        """The defaults for a backbone: ResNet50 from random weights needs a far larger step."""
        if backbone == "resnet50":
            changes = {"learning_rate": 1e-3, "patience": 5, **changes}
        return cls(backbone=backbone, **changes)

    def as_json(self) -> dict:
        values = dataclasses.asdict(self)
        values["trainable"] = list(self.trainable)
        return values

    @classmethod
    def from_json(cls, values: dict) -> "Parameters":
        """From as_json's dict; missing keys take the backbone's defaults (for_backbone), unknown
        keys are refused."""
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown training parameters: {', '.join(unknown)}.")
        values = dict(values)
        return cls.for_backbone(values.pop("backbone", "dlib"), **values)


@dataclass
class Result:
    """A finished run: the network (the best epoch's weights, inference-ready), one record per
    epoch trained, and how long it took where. ``baseline`` holds the validation figures of the
    starting network, before any training."""

    model: keras.Model
    epochs: list[dict]
    best_epoch: int
    stopped_early: bool
    seconds: float
    device: str
    baseline: dict = field(default_factory=dict)
    cancelled: bool = False
    timings: dict = field(default_factory=dict)


# --- TensorFlow's devices --------------------------------------------------------------------------


def configure_tensorflow() -> str:
    """Memory growth on every visible GPU (TensorFlow would otherwise take all of its memory at
    once); on CPU, one thread per core this process may use. Returns a short description for the
    run's log ("GPU: NVIDIA H200" or "CPU, 2 threads"). Safe to call again once TensorFlow has
    started: settings it can no longer change are left as they are."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth was set before, or cannot be now
            pass
    if gpus:
        names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
        return "GPU: " + ", ".join(names)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, cores))
    except RuntimeError:
        pass
    threads = tf.config.threading.get_intra_op_parallelism_threads() or cores
    return f"CPU, {threads} threads"


def embed(model: keras.Model, chips: numpy.ndarray, mirror: bool = True) -> numpy.ndarray:
    """(n, 150, 150, 3) uint8 chips -> (n, 128) embeddings, as FRID embeds them (training.embedder)."""
    return Embedder(model, mirror=mirror).embed(chips)


# --- Fine-tuning the dlib network ------------------------------------------------------------------


def fine_tune(
    model: keras.Model,
    train: LabelledChips,
    validation: LabelledChips,
    parameters: Parameters | None = None,
    on_epoch: Callable[[int, int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Result:
    """Fine-tune a copy of ``model`` (never the caller's) on ``train``, stopping early on
    ``validation`` (TAR at FAR 1e-3 over all its pairs, the gate's own measure). Only layers whose
    names start with one of ``parameters.trainable`` learn. ``on_epoch(epoch, epochs, record)``
    follows every epoch; ``should_stop()`` is asked after every batch and ends the run (cancelled,
    with the best weights so far)."""
    parameters = parameters or Parameters()
    _check_sets(train, validation)
    started = time.monotonic()
    device = configure_tensorflow()
    keras.utils.set_random_seed(parameters.seed)
    network = copy_network(model)
    original_flags = {layer.name: layer.trainable for layer in network.layers}
    head_layers = freeze_all_but(network, parameters.trainable)
    boundary = frozen_boundary(network, head_layers)
    frozen = keras.Model(network.inputs, boundary, name="frozen_part")
    head = keras.Model(boundary if len(boundary) > 1 else boundary[0], network.output, name="trained_part")

    cache_started = time.monotonic()
    train_features = cached_activations(frozen, train.chips, parameters.mirror)
    validation_features = cached_activations(frozen, validation.chips, parameters.mirror)
    cache_seconds = time.monotonic() - cache_started
    logger.info("activations of %d chips cached in %.1f s", len(train) + len(validation), cache_seconds)

    trainer = _training_model(head, boundary, parameters)
    predict = _predictor(head)
    validate = _validator(predict, validation, validation_features, parameters)
    run = _Run(parameters, on_epoch, should_stop)
    run.baseline = validate()
    trained = [layer for layer in head.layers if layer.trainable_weights]
    flip_random = numpy.random.default_rng(parameters.seed)

    def train_epoch(epoch: int) -> float | None:
        losses = []
        for batch in balanced_batches(train.labels, parameters.identities_per_batch,
                                      parameters.images_per_identity, seed=parameters.seed * 1000 + epoch):
            flips = flip_random.integers(0, 2, len(batch)) if parameters.mirror else numpy.zeros(len(batch), int)
            inputs = {f"boundary_{index}": features[flips, batch] for index, features in enumerate(train_features)}
            inputs["labels"] = train.labels[batch].astype(numpy.int32)
            losses.append(float(trainer.train_on_batch(inputs)))
            if run.cancelled():
                return None
        return float(numpy.mean(losses)) if losses else 0.0

    run.train(train_epoch, validate, snapshot=lambda: [layer.get_weights() for layer in trained],
              restore=lambda weights: [layer.set_weights(w) for layer, w in zip(trained, weights)])
    for layer in network.layers:
        layer.trainable = original_flags[layer.name]
    return run.result(network, device, started, {"activation_cache_seconds": cache_seconds})


def _check_sets(train: LabelledChips, validation: LabelledChips) -> None:
    for name, chips in (("training", train), ("validation", validation)):
        if chips.identities < 2 or not (chips.images_per_identity() >= 2).any():
            raise ValueError(f"The {name} set needs two people or more, one of them with two chips or more; "
                             f"it has {chips.identities} people and {len(chips)} chips.")


def copy_network(model: keras.Model) -> keras.Model:
    """A network of the same layers (names, configuration) with its own copy of the weights."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def matches(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + "_") for prefix in prefixes)


def freeze_all_but(network: keras.Model, prefixes: Sequence[str]) -> list[keras.layers.Layer]:
    """Make only the layers named by ``prefixes`` trainable (the fixed zero-padding convolutions
    stay frozen: they are wiring, not weights). Returns the head: those layers and every layer
    downstream of one of them, in order."""
    head, head_names = [], set()
    for layer in network.layers:
        named = matches(layer.name, prefixes)
        layer.trainable = named and not layer.name.endswith("_pad_channels")
        if named or any(parent.name in head_names for parent in _parents(layer)):
            head.append(layer)
            head_names.add(layer.name)
    if not any(layer.trainable_weights for layer in head):
        raise ValueError(f"No layer with weights matches {', '.join(prefixes)}: nothing would train.")
    return head


def frozen_boundary(network: keras.Model, head_layers: Sequence[keras.layers.Layer]) -> list:
    """The tensors the frozen part hands to the head: what is cached."""
    head_names = {layer.name for layer in head_layers}
    boundary, seen = [], set()
    for layer in head_layers:
        for tensor in _input_tensors(layer):
            producer = tensor._keras_history.operation
            if producer.name not in head_names and id(tensor) not in seen:
                if isinstance(producer, keras.layers.InputLayer):
                    raise ValueError("The whole network would train: nothing frozen to cache. "
                                     "Leave the first layers out of trainable.")
                seen.add(id(tensor))
                boundary.append(tensor)
    return boundary


def _input_tensors(layer) -> list:
    return [tensor for node in layer._inbound_nodes for tensor in node.input_tensors]


def _parents(layer) -> list:
    return [tensor._keras_history.operation for tensor in _input_tensors(layer)]


def cached_activations(frozen: keras.Model, chips: numpy.ndarray, mirror: bool) -> list[numpy.ndarray]:
    """The frozen part's outputs for every chip: one array per boundary tensor, shaped
    (2 if mirror else 1, n, ...), index 0 the chip and 1 its mirror image."""
    def run_frozen(images):
        return frozen(images, training=False)

    # A named function, not a lambda: AutoGraph cannot read a lambda's source among others on its line.
    run = tf.function(run_frozen, reduce_retracing=True)
    views = (False, True) if mirror else (False,)
    outputs: list[list[list[numpy.ndarray]]] = []
    for view in views:
        parts = []
        for start in range(0, len(chips), INFERENCE_BATCH):
            images = tf.cast(tf.constant(chips[start:start + INFERENCE_BATCH]), tf.float32)
            if view:
                images = tf.reverse(images, axis=[2])
            result = run(images)
            parts.append([tensor.numpy() for tensor in (result if isinstance(result, (list, tuple)) else [result])])
        outputs.append(parts)
    return [
        numpy.stack([numpy.concatenate([part[index] for part in parts]) for parts in outputs])
        for index in range(len(frozen.outputs))
    ]


def _training_model(head: keras.Model, boundary: list, parameters: Parameters) -> keras.Model:
    inputs = [keras.Input(shape=tensor.shape[1:], name=f"boundary_{index}") for index, tensor in enumerate(boundary)]
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    embeddings = head(inputs if len(inputs) > 1 else inputs[0])
    output = MinedTripletLossLayer(parameters.margin, parameters.loss, parameters.squared, name="triplet_loss")(
        [embeddings, labels])
    trainer = keras.Model(inputs + [labels], output, name="fine_tuning")
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=parameters.learning_rate))
    return trainer


def _predictor(head: keras.Model) -> Callable[[list[numpy.ndarray]], numpy.ndarray]:
    def run_head(*features):
        return head(list(features) if len(features) > 1 else features[0], training=False)

    run = tf.function(run_head, reduce_retracing=True)

    def predict(features: list[numpy.ndarray]) -> numpy.ndarray:
        count = len(features[0])
        return numpy.concatenate([
            run(*[array[start:start + INFERENCE_BATCH] for array in features]).numpy()
            for start in range(0, count, INFERENCE_BATCH)
        ]) if count else numpy.zeros((0, EMBEDDING_SIZE), numpy.float32)

    return predict


def _validator(predict, validation: LabelledChips, features: list[numpy.ndarray], parameters: Parameters):
    """A function giving the validation figures of the head as it is now: the loss on fixed
    batches (chips as they are) and TAR at FAR 1e-3 over all pairs (mirror-averaged embeddings)."""

    def embeddings() -> numpy.ndarray:
        views = [predict([array[view] for array in features]) for view in range(features[0].shape[0])]
        return numpy.mean(views, axis=0)

    def figures(vectors: numpy.ndarray, plain: numpy.ndarray) -> dict:
        return {"validation_loss": _mean_loss(plain, validation.labels, parameters),
                "validation_tar": _validation_tar(vectors, validation.labels)}

    def validate() -> dict:
        vectors = embeddings()
        plain = vectors if features[0].shape[0] == 1 else predict([array[0] for array in features])
        return figures(vectors, plain)

    return validate


def _mean_loss(embeddings: numpy.ndarray, labels: numpy.ndarray, parameters: Parameters) -> float | None:
    batches = balanced_batches(labels, parameters.identities_per_batch, parameters.images_per_identity,
                               seed=VALIDATION_LOSS_SEED)
    if not batches:
        return None
    mine = MINING[parameters.loss]
    return float(numpy.mean([
        float(mine(labels[batch].astype(numpy.int32), embeddings[batch], parameters.margin, squared=parameters.squared))
        for batch in batches
    ]))


def _validation_tar(embeddings: numpy.ndarray, labels: numpy.ndarray) -> float | None:
    try:
        return gate.all_pairs_metrics(embeddings, labels)[gate.tar_key()]
    except ValueError:  # too few people to form both kinds of pair
        return None


class _Run:
    """The epoch loop both recipes share: records, early stopping, the best weights, cancelling."""

    def __init__(self, parameters: Parameters, on_epoch, should_stop):
        self.parameters = parameters
        self.on_epoch = on_epoch
        self.should_stop = should_stop
        self.records: list[dict] = []
        self.baseline: dict = {}
        self.best_epoch = 0
        self.stopped_early = False
        self.was_cancelled = False
        self.epoch_seconds: list[float] = []

    def cancelled(self) -> bool:
        if not self.was_cancelled and self.should_stop is not None and self.should_stop():
            self.was_cancelled = True
        return self.was_cancelled

    def train(self, train_epoch, validate, snapshot, restore) -> None:
        """Epochs until the last, ``patience`` epochs without a better validation figure, or a
        cancel. The best is chosen among trained epochs only: the gate, not this loop, decides
        whether the candidate beats the network it started from."""
        best_score, best_weights, waited = None, None, 0
        for epoch in range(1, self.parameters.epochs + 1):
            if self.cancelled():
                break
            epoch_started = time.monotonic()
            loss = train_epoch(epoch)
            if loss is None:
                break
            record = {"epoch": epoch, "loss": loss, **validate()}
            record["seconds"] = time.monotonic() - epoch_started
            self.epoch_seconds.append(record["seconds"])
            self.records.append(record)
            logger.info("epoch %d/%d: %s", epoch, self.parameters.epochs, record)
            score = _score(record)
            if best_score is None or score > best_score:
                best_score, best_weights, self.best_epoch, waited = score, snapshot(), epoch, 0
            else:
                waited += 1
            if self.on_epoch is not None:
                self.on_epoch(epoch, self.parameters.epochs, record)
            if waited >= self.parameters.patience and epoch < self.parameters.epochs:
                self.stopped_early = True
                break
        if best_weights is not None:
            restore(best_weights)

    def result(self, model, device: str, started: float, timings: dict) -> Result:
        timings = {**timings, "seconds_per_epoch": float(numpy.mean(self.epoch_seconds)) if self.epoch_seconds else None}
        return Result(model=model, epochs=self.records, best_epoch=self.best_epoch, stopped_early=self.stopped_early,
                      seconds=time.monotonic() - started, device=device, baseline=self.baseline,
                      cancelled=self.was_cancelled, timings=timings)


def _score(record: dict) -> float:
    """Higher is better: the validation TAR where it can be measured, else the negated loss."""
    if record.get("validation_tar") is not None:
        return record["validation_tar"]
    if record.get("validation_loss") is not None:
        return -record["validation_loss"]
    return -record["loss"]


# --- The article's recipe: ResNet50 from random weights --------------------------------------------


def build_resnet50(input_size: int = 112) -> keras.Model:
    """150x150 chips (0-255, as the Embedder feeds them) -> 128 floats: ResNet50 without weights
    (nothing can be downloaded), global average pooling, a 128-d dense embedding."""
    chips = keras.Input(shape=(CHIP_SIZE, CHIP_SIZE, 3), name="chip")
    x = chips
    if input_size != CHIP_SIZE:
        x = keras.layers.Resizing(input_size, input_size, name="resize")(x)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
    backbone = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg",
                                           input_shape=(input_size, input_size, 3))
    embeddings = keras.layers.Dense(EMBEDDING_SIZE, name="embedding")(backbone(x))
    return keras.Model(chips, embeddings, name="resnet50_embedding")


def train_resnet50(
    train: LabelledChips,
    validation: LabelledChips,
    parameters: Parameters | None = None,
    on_epoch: Callable[[int, int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Result:
    """Train build_resnet50's network whole with the triplet loss (no activation cache is
    possible: every layer learns). Same batches, mirroring, early stopping and Result as
    fine_tune."""
    parameters = parameters or Parameters.for_backbone("resnet50")
    _check_sets(train, validation)
    started = time.monotonic()
    device = configure_tensorflow()
    keras.utils.set_random_seed(parameters.seed)
    network = build_resnet50(parameters.input_size)
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    output = MinedTripletLossLayer(parameters.margin, parameters.loss, parameters.squared, name="triplet_loss")(
        [network.output, labels])
    trainer = keras.Model([network.input, labels], output, name="resnet50_training")
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=parameters.learning_rate))
    input_name = network.input.name
    flip_random = numpy.random.default_rng(parameters.seed)

    def validate() -> dict:
        vectors = embed(network, validation.chips, mirror=parameters.mirror)
        plain = embed(network, validation.chips, mirror=False) if parameters.mirror else vectors
        return {"validation_loss": _mean_loss(plain, validation.labels, parameters),
                "validation_tar": _validation_tar(vectors, validation.labels)}

    def train_epoch(epoch: int) -> float | None:
        losses = []
        for batch in balanced_batches(train.labels, parameters.identities_per_batch,
                                      parameters.images_per_identity, seed=parameters.seed * 1000 + epoch):
            chips = train.chips[batch].astype(numpy.float32)
            if parameters.mirror:
                flipped = flip_random.integers(0, 2, len(batch)).astype(bool)
                chips[flipped] = chips[flipped, :, ::-1]
            losses.append(float(trainer.train_on_batch({input_name: chips, "labels": train.labels[batch].astype(numpy.int32)})))
            if run.cancelled():
                return None
        return float(numpy.mean(losses)) if losses else 0.0

    run = _Run(parameters, on_epoch, should_stop)
    run.baseline = validate()
    run.train(train_epoch, validate, snapshot=network.get_weights, restore=network.set_weights)
    return run.result(network, device, started, {})
