"""dlib's own face recognition pipeline, run beside FRID's for comparison.

As dlib's examples and face_recognition use it: HOG detector upsampled once, 5-point shape,
``compute_face_descriptor`` (which cuts its own 150x150 chip). The face nearest the centre is
taken, the same rule as FRID's evaluation, so both systems compare the same people.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path

import dlib
import face_recognition_models
import numpy

from training import faces
from training.engine import FileEmbeddings

DLIB_THRESHOLD = 0.6  # dlib's own: the distance threshold stored in its network's loss layer


@functools.cache
def _models():
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location()),
    )


def dlib_descriptor(image: numpy.ndarray) -> numpy.ndarray | None:
    """dlib's descriptor of the face nearest the centre of an RGB image, or None."""
    detector, shape_predictor, recogniser = _models()
    rectangles = list(detector(image, 1))
    if not rectangles:
        return None
    centre_x, centre_y = image.shape[1] / 2, image.shape[0] / 2
    rectangle = min(
        rectangles,
        key=lambda r: (r.center().x - centre_x) ** 2 + (r.center().y - centre_y) ** 2,
    )
    shape = shape_predictor(image, rectangle)
    return numpy.array(recogniser.compute_face_descriptor(image, shape), dtype=numpy.float32)


def dlib_chip_descriptors(chips: numpy.ndarray) -> numpy.ndarray:
    """dlib's descriptors of ready-cut 150x150 chips (to compare networks on the same input)."""
    _, _, recogniser = _models()
    return numpy.array(
        [recogniser.compute_face_descriptor(numpy.ascontiguousarray(chip)) for chip in chips],
        dtype=numpy.float32,
    )


def embed_files(paths: Iterable[Path], progress: Callable[[Iterable], Iterable] = iter) -> FileEmbeddings:
    result = FileEmbeddings(embeddings={}, no_face=[], unreadable={})
    for path in progress(list(paths)):
        path = Path(path)
        try:
            image = faces.load_image(path)
        except (faces.ImageError, OSError) as error:
            result.embeddings[path] = None
            result.unreadable[path] = str(error)
            continue
        result.embeddings[path] = dlib_descriptor(image)
        if result.embeddings[path] is None:
            result.no_face.append(path)
    return result
