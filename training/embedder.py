"""Turning aligned face chips into embeddings with a saved Keras network, in batches.

One ``Embedder`` per process and model file: loading the network and tracing the
``tf.function`` cost about a second, after which a batch costs milliseconds. Calling
``model.predict`` per face instead is more than ten times slower (it rebuilds its data
pipeline on every call).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import keras
import numpy
import tensorflow as tf

from training.network import CHIP_SIZE

logger = logging.getLogger(__name__)

BATCH_SIZE = 32


class Embedder:
    """Embeds 150x150 RGB chips. With ``mirror`` the embedding is the mean of the chip's and its
    mirror image's embeddings (test-time augmentation: a little more accurate, twice the work)."""

    def __init__(self, model: keras.Model, mirror: bool = True, batch_size: int = BATCH_SIZE):
        self.model = model
        self.mirror = mirror
        self.batch_size = batch_size
        self._embed_batch = tf.function(
            self._embed,
            input_signature=[tf.TensorSpec([None, CHIP_SIZE, CHIP_SIZE, 3], tf.uint8)],
            reduce_retracing=True,
        )

    @classmethod
    def from_file(cls, path: Path | str, mirror: bool = True) -> "Embedder":
        logger.info("loading embedding network %s", path)
        return cls(keras.models.load_model(path, compile=False), mirror=mirror)

    @property
    def size(self) -> int:
        return int(self.model.output_shape[-1])

    def embed(self, chips: numpy.ndarray) -> numpy.ndarray:
        """(n, 150, 150, 3) uint8 chips -> (n, size) float32 embeddings."""
        chips = numpy.asarray(chips, dtype=numpy.uint8)
        if chips.ndim == 3:
            chips = chips[numpy.newaxis]
        if chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be {CHIP_SIZE}x{CHIP_SIZE} RGB, got shape {chips.shape[1:]}")
        if len(chips) == 0:
            return numpy.zeros((0, self.size), dtype=numpy.float32)
        batches = [
            self._embed_batch(tf.constant(chips[start:start + self.batch_size])).numpy()
            for start in range(0, len(chips), self.batch_size)
        ]
        return numpy.concatenate(batches)

    def _embed(self, chips):
        images = tf.cast(chips, tf.float32)
        if not self.mirror:
            return self.model(images, training=False)
        count = tf.shape(images)[0]
        both = tf.concat([images, tf.reverse(images, axis=[2])], axis=0)
        embeddings = self.model(both, training=False)
        return (embeddings[:count] + embeddings[count:]) / 2.0


@functools.lru_cache(maxsize=4)
def cached_embedder(path: str, mirror: bool) -> Embedder:
    """The process-wide embedder for one model file (workers load each network once)."""
    return Embedder.from_file(path, mirror=mirror)
