"""Open-set identification on real faces: enrolled people are found, strangers come out unknown."""

import numpy
import pytest

from training import faces
from training.embedder import Embedder
from training.model_store import BASE_THRESHOLD
from training.verification import calibrate_threshold, identify


def embed_people(embedder, people, photo_index):
    chips = []
    for person in people:
        image = faces.load_image(sorted(person.glob("*.jpg"))[photo_index])
        chips.append(faces.central_face(faces.detect_faces(image), image.shape).chip)
    return embedder.embed(numpy.stack(chips))


@pytest.mark.slow
def test_strangers_come_out_unknown_and_enrolled_people_are_found(dlib_network, faces_dir):
    people = [p for p in sorted((faces_dir / "lfw").iterdir()) if len(list(p.glob("*.jpg"))) >= 2][::12][:80]
    enrolled, strangers = people[:40], people[40:]
    embedder = Embedder(dlib_network, mirror=True)
    gallery = embed_people(embedder, enrolled, 0)
    known_probes = embed_people(embedder, enrolled, 1)
    stranger_probes = embed_people(embedder, strangers, 0)

    found = [identify(probe, gallery, BASE_THRESHOLD)[0] for probe in known_probes]
    assert sum(index == expected for expected, index in enumerate(found)) >= 38
    unknown = [identify(probe, gallery, BASE_THRESHOLD)[0] is None for probe in stranger_probes]
    assert sum(unknown) >= 38

    # A threshold calibrated on these strangers at FMR 1e-2 lets at most 1% of them through.
    impostor = numpy.linalg.norm(stranger_probes[:, None] - gallery[None], axis=2).ravel()
    genuine = numpy.linalg.norm(known_probes - gallery, axis=1)
    calibration = calibrate_threshold(genuine, impostor, 1e-2)
    assert calibration.false_match_rate <= 1e-2
    assert calibration.true_match_rate >= 0.9
