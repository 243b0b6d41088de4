"""Fixtures shared by the face engine's tests: the imported network and real LFW chips."""

from pathlib import Path

import numpy
import pytest

from training import faces


@pytest.fixture(scope="session")
def dlib_network():
    """The Keras network with dlib's weights (built once per test run)."""
    from training.dlib_import import import_dlib_network

    model, _ = import_dlib_network()
    return model


@pytest.fixture(scope="session")
def lfw_chips(faces_dir: Path) -> numpy.ndarray:
    """Aligned chips of 60 different real LFW people (the face nearest each photo's centre)."""
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())[::50][:60]
    chips = []
    for person in people:
        image = faces.load_image(sorted(person.glob("*.jpg"))[0])
        face = faces.central_face(faces.detect_faces(image, use_cnn_fallback=False), image.shape)
        if face is not None:
            chips.append(face.chip)
    return numpy.stack(chips)
