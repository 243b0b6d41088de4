"""training.engine.analyse_photos: the one road from uploaded photos (enrollment) and camera frames
(live checks) to one usable face and its embedding, or a plain reason why there is none."""

from __future__ import annotations

import io
from pathlib import Path

import numpy
import pytest
from PIL import Image

from training import engine, faces
from training.embedder import Embedder

pytestmark = pytest.mark.slow  # loads the network and runs dlib on real photos


@pytest.fixture(scope="module")
def embedder(dlib_network) -> Embedder:
    return Embedder(dlib_network, mirror=True)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def two_people(faces_dir: Path) -> list[Image.Image]:
    """Photos of two different LFW people, each showing one face."""
    chosen = []
    for person in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        photo = sorted(person.glob("*.jpg"))[0]
        if len(faces.detect_faces(faces.load_image(photo), use_cnn_fallback=False)) == 1:
            chosen.append(Image.open(photo).convert("RGB"))
        if len(chosen) == 2:
            return chosen
    pytest.fail("Fewer than two LFW photos show one face.")


def side_by_side(first: Image.Image, second: Image.Image, second_size: int) -> bytes:
    """Both photos on one grey canvas, the second one scaled to ``second_size`` pixels, neither
    touching the edges (the canvas is small, so the detector searches it upsampled)."""
    canvas = Image.new("RGB", (250 + second_size + 30, 270), (128, 128, 128))
    canvas.paste(first, (10, 10))
    canvas.paste(second.resize((second_size, second_size)), (270, 10))
    return jpeg(canvas)


def test_a_photo_of_one_person_gives_its_face_and_the_embedders_embedding(embedder, two_people):
    [analysis] = engine.FaceEngine(embedder).analyse_photos([jpeg(two_people[0])])

    assert analysis.problem == ""
    assert len(analysis.faces) == 1 and analysis.face is analysis.faces[0]
    numpy.testing.assert_allclose(analysis.embedding, embedder.embed(analysis.face.chip[None])[0], atol=1e-5)
    figures = analysis.as_json()
    assert figures["faces"] == 1 and len(figures["embedding"]) == 128 and figures["quality"]["face_size"] > 0


def test_each_photo_of_a_batch_is_judged_on_its_own(embedder, two_people):
    photos = [jpeg(two_people[0]), b"not a photo", jpeg(Image.new("RGB", (300, 300), (90, 90, 90))),
              jpeg(two_people[1])]

    usable, broken, blank, other = engine.FaceEngine(embedder).analyse_photos(photos)

    assert usable.embedding is not None and other.embedding is not None
    assert numpy.linalg.norm(usable.embedding - other.embedding) > 0.6  # two different people
    assert broken.embedding is None and "not a photo" in broken.problem.lower()
    assert (blank.problem, blank.embedding) == (engine.NO_FACE_REASON, None)


def test_a_batch_analysed_on_several_threads_gives_what_one_photo_at_a_time_gives(embedder, faces_dir, monkeypatch):
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())[:24]
    # A blank photo sends the detector on to the CNN, which only one thread may run at a time.
    photos = [sorted(person.glob("*.jpg"))[0].read_bytes() for person in people]
    photos += [jpeg(Image.new("RGB", (300, 300), (90, 90, 90)))] * 3
    monkeypatch.setattr(engine, "_THREADS", 4)
    together = engine.FaceEngine(embedder).analyse_photos(photos)
    alone = [engine.FaceEngine(embedder).analyse_photos([photo])[0] for photo in photos]

    assert [analysis.problem for analysis in together] == [analysis.problem for analysis in alone]
    for batched, single in zip(together, alone):
        assert [face.box for face in batched.faces] == [face.box for face in single.faces]
        if single.embedding is not None:
            numpy.testing.assert_allclose(batched.embedding, single.embedding, atol=1e-5)


def test_two_people_of_the_same_size_are_refused_in_enrollment_and_at_the_camera(embedder, two_people):
    photo = side_by_side(*two_people, second_size=250)

    [enrolling] = engine.FaceEngine(embedder).analyse_photos([photo])
    [live] = engine.FaceEngine(embedder, live=True).analyse_photos([photo])

    assert enrolling.problem == engine.SEVERAL_FACES_REASON.format(count=2)
    assert live.problem == engine.SEVERAL_LIVE_FACES_REASON.format(count=2)
    assert live.embedding is None


def test_at_the_camera_a_much_smaller_face_behind_is_a_bystander(embedder, two_people):
    photo = side_by_side(*two_people, second_size=120)  # the second face about half as wide

    [enrolling] = engine.FaceEngine(embedder).analyse_photos([photo])
    [live] = engine.FaceEngine(embedder, live=True).analyse_photos([photo])
    [alone] = engine.FaceEngine(embedder, live=True).analyse_photos([jpeg(two_people[0])])

    assert len(live.faces) == 2
    assert enrolling.problem == engine.SEVERAL_FACES_REASON.format(count=2)  # HR gets a clean photo
    assert live.problem == ""
    assert numpy.linalg.norm(live.embedding - alone.embedding) < 0.2  # the person at the camera


def test_live_frames_use_only_the_hog_detector(embedder):
    assert engine.FaceEngine(embedder, live=True).use_cnn_fallback is False
    assert engine.FaceEngine(embedder).use_cnn_fallback is True
