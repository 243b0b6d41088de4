"""Test model versions that are real networks with known answers."""

from __future__ import annotations

import keras
import numpy

from training.model_store import save_network
from training.models import ModelVersion


def scaled_rotated_version(base: ModelVersion, scale: float = 2.0, name: str = "scaled-rotated") -> ModelVersion:
    """The base network with its embedding layer turned by a fixed rotation and multiplied by
    ``scale``: every distance is ``scale`` times the base's (its thresholds too, calibrated here so),
    so every decision must stay the same while every stored number changes."""
    model = keras.models.load_model(base.path, compile=False)
    layer = model.get_layer("embedding")
    rotation, _ = numpy.linalg.qr(numpy.random.default_rng(7).normal(size=(128, 128)))
    layer.set_weights([layer.get_weights()[0] @ (scale * rotation)])
    file, digest = save_network(model, name)
    version = ModelVersion.objects.create(name=name, file=file, sha256=digest, parent=base, threshold=base.threshold)
    open_set = base.metrics["open_set"]
    version.save_calibration({
        "threshold": scale * base.threshold, "threshold_source": f"the base's, times {scale:g} (test)",
        "calibration_points": [[rate, scale * value] for rate, value in base.metrics["calibration_points"]],
        "open_set": {**open_set, "margin": scale * open_set["margin"],
                     "points": [[size, scale * value] for size, value in open_set["points"]]},
    }, by_name="test")
    return version
