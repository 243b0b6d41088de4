"""The model store: saved networks under FRID_MODEL_DIR, each recorded as a ModelVersion."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy
from django.conf import settings

from training.models import ModelVersion, ModelVersionEvent

logger = logging.getLogger(__name__)

BASE_VERSION_NAME = "dlib-resnet-v1"
# The base version's decision threshold: calibrated at a false-match rate of 1e-3 over every two
# photos of LFW's DevTrain list (5.9 M impostor pairs, TAR 92.9%), measured 2026-11-29 with
#   manage.py calibrate_model --pairs lfw-protocol/pairsDevTrain.txt --images lfw --all-pairs --far 1e-3
# dlib's own 0.6 lets about 1 stranger in 100 through there (FAR 1.0e-2): too many for a gallery.
BASE_THRESHOLD = 0.5276
BASE_THRESHOLD_SOURCE = "calibrated at FAR 1e-3 on LFW pairsDevTrain.txt (all pairs): TAR 92.89%"
# The same run's thresholds at other false-match rates: [rate, threshold], for 1:N searches.
BASE_CALIBRATION_POINTS = [[1e-5, 0.4122], [1e-4, 0.4616], [1e-3, 0.5276], [1e-2, 0.6054]]
# 1:N searches with the margin rule: per gallery size, the threshold at which 1% of strangers are
# accepted, from simulated searches of DevTrain people (20,000 stranger searches per size),
# measured 2026-12-02 with
#   manage.py calibrate_model --pairs lfw-protocol/pairsDevTrain.txt --images lfw --all-pairs --far 1e-3 --open-set
# Found as themselves there: 94% of 10 enrolled, 85% of 100, 80% of 300, 77% of 600.
BASE_OPEN_SET = {
    "margin": 0.08,
    "false_positive_rate": 0.01,
    "points": [[10, 0.5337], [30, 0.5136], [100, 0.4988], [300, 0.4912], [600, 0.4912]],
}
BASE_METRICS = {"calibration_points": BASE_CALIBRATION_POINTS, "open_set": BASE_OPEN_SET}
# dlib's descriptors of the same chip and of ours agree to ~5e-7; far more means a broken import.
IMPORT_TOLERANCE = 1e-4


class ImportCheckFailed(RuntimeError):
    pass


def import_base_version(force: bool = False) -> tuple[ModelVersion, bool]:
    """Import dlib's network as the base version unless it is there intact. Returns (version, imported)."""
    existing = ModelVersion.objects.filter(name=BASE_VERSION_NAME).first()
    if existing and not force and existing.path.exists() and _sha256(existing.path) == existing.sha256:
        if "open_set" not in existing.metrics:  # imported before the 1:N calibration existed
            existing.metrics = {**existing.metrics, "open_set": BASE_OPEN_SET}
            existing.save(update_fields=["metrics"])
        return existing, False

    from training.dlib_import import import_dlib_network

    model, _ = import_dlib_network()
    _check_against_dlib(model)
    relative_path, digest = save_network(model, BASE_VERSION_NAME)
    version, _ = ModelVersion.objects.update_or_create(
        name=BASE_VERSION_NAME,
        defaults={
            "file": relative_path,
            "sha256": digest,
            "embedding_size": int(model.output_shape[-1]),
            "threshold": BASE_THRESHOLD,
            "threshold_source": BASE_THRESHOLD_SOURCE,
            "metrics": BASE_METRICS,
            "notes": "dlib_face_recognition_resnet_model_v1 (CC0) from face_recognition_models, "
            "imported into Keras by training.dlib_import.",
        },
    )
    version.record(ModelVersionEvent.Action.IMPORTED, by_name="import_base_model",
                   details={"sha256": digest, "threshold": BASE_THRESHOLD, "source": BASE_THRESHOLD_SOURCE})
    if not ModelVersion.objects.filter(is_active=True).exists():
        version.activate(by_name="import_base_model")
    return version, True


def save_network(model, name: str) -> tuple[str, str]:
    """Write ``model`` to the store atomically; returns (path relative to the store, sha256)."""
    store = Path(settings.FRID_MODEL_DIR)
    store.mkdir(parents=True, exist_ok=True)
    relative_path = f"{name}.keras"
    # Write beside the target and rename, so a crash never leaves a half-written network.
    handle, temporary = tempfile.mkstemp(dir=store, suffix=".keras")
    os.close(handle)
    try:
        model.save(temporary)
        os.replace(temporary, store / relative_path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return relative_path, _sha256(store / relative_path)


def _check_against_dlib(model) -> None:
    import dlib

    from training.dlib_import import dlib_model_path

    chip = numpy.random.default_rng(150).integers(0, 256, (150, 150, 3), dtype=numpy.uint8)
    expected = numpy.array(dlib.face_recognition_model_v1(str(dlib_model_path())).compute_face_descriptor(chip))
    actual = model(chip[numpy.newaxis].astype(numpy.float32), training=False).numpy()[0]
    difference = float(numpy.abs(actual - expected).max())
    logger.info("imported network differs from dlib by at most %.2g", difference)
    if difference > IMPORT_TOLERANCE:
        raise ImportCheckFailed(
            f"the imported network differs from dlib's by {difference:.3g} (more than "
            f"{IMPORT_TOLERANCE}); the model file or the importer is broken"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
