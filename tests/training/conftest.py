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


@pytest.fixture(scope="session")
def _imported_base_model(django_db_setup, django_db_blocker):
    """Import the base network once per run into the test database and the test model store."""
    from training.model_store import import_base_version

    with django_db_blocker.unblock():
        version, _ = import_base_version()
    return version


@pytest.fixture
def base_model_version(_imported_base_model, db):
    from training.models import ModelVersion

    return ModelVersion.objects.get(pk=_imported_base_model.pk)


@pytest.fixture
def lfw_csv(tmp_path, faces_dir):
    """Ten real LFW pairs (five same, five different) as a CSV, plus a photo with no face in it."""
    people = [path for path in sorted((faces_dir / "lfw").iterdir()) if len(list(path.glob("*.jpg"))) >= 2]
    lines = ["image_a,image_b,same"]
    for person in people[:5]:
        first, second = sorted(person.glob("*.jpg"))[:2]
        lines.append(f"{first.relative_to(faces_dir / 'lfw')},{second.relative_to(faces_dir / 'lfw')},1")
    for one, other in zip(people[5:10], people[10:15]):
        lines.append(f"{one.name}/{one.name}_0001.jpg,{other.name}/{other.name}_0001.jpg,0")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\n".join(lines) + "\n")
    return pairs
