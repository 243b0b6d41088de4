"""Import dlib's CC0 face recognition ResNet (from the ``face_recognition_models`` package)."""

from __future__ import annotations

from pathlib import Path

import face_recognition_models
import keras
import numpy

from training import dlib_format
from training.network import build_embedding_network, convolutions_in_dlib_order


def dlib_model_path() -> Path:
    return Path(face_recognition_models.face_recognition_model_location())


def import_dlib_network(path: Path | str | None = None) -> tuple[keras.Model, dlib_format.DlibNetwork]:
    """Build the Keras network and load dlib's weights into it."""
    parsed = dlib_format.read_network(path or dlib_model_path())
    model = build_embedding_network(parsed.channel_means)

    convolutions = parsed.of_type(dlib_format.Convolution)
    affines = parsed.of_type(dlib_format.Affine)
    layers = convolutions_in_dlib_order(model)
    if not len(convolutions) == len(affines) == len(layers):
        raise dlib_format.DlibFormatError(
            f"expected {len(layers)} convolutions each followed by an affine layer, "
            f"found {len(convolutions)} and {len(affines)}"
        )
    # In the file every convolution is directly followed by its affine layer.
    for layer, convolution, affine in zip(layers, convolutions, affines):
        layer.set_weights(_fold_affine(convolution, affine))

    (fully_connected,) = parsed.of_type(dlib_format.FullyConnected)
    model.get_layer("embedding").set_weights([fully_connected.weights])
    return model, parsed


def _fold_affine(convolution: dlib_format.Convolution, affine: dlib_format.Affine) -> list[numpy.ndarray]:
    # gamma * (W * x + b) + beta  ==  (gamma * W) * x + (gamma * b + beta), per output channel.
    kernel = convolution.filters.transpose(2, 3, 1, 0)  # dlib (out, in, h, w) -> Keras (h, w, in, out)
    return [kernel * affine.gamma, convolution.biases * affine.gamma + affine.beta]
