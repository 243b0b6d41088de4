"""Benchmark: the face engine stage by stage, beside dlib's own descriptor, on real photos.

    .venv/bin/python bench/engine.py [--photos 40] [--repeat 5]

Photos are real LFW images (FRID_FACES_DIR, default ../shared/faces) enlarged to 480x480 and
centred on a 640x480 canvas, so each is a webcam-sized frame with one face of about 200 px.
Every stage is timed on the same photos in the same run; medians in milliseconds.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dlib  # noqa: E402
import numpy  # noqa: E402
from PIL import Image  # noqa: E402

from training import faces, reference  # noqa: E402
from training.dlib_import import import_dlib_network  # noqa: E402
from training.embedder import Embedder  # noqa: E402

FRAME_SIZE = (640, 480)


def webcam_frames(faces_dir: Path, count: int) -> list[bytes]:
    people = sorted((faces_dir / "lfw").iterdir())[::37][:count]
    frames = []
    for person in people:
        photo = Image.open(sorted(person.glob("*.jpg"))[0]).convert("RGB").resize((480, 480), Image.BILINEAR)
        frame = Image.new("RGB", FRAME_SIZE, (128, 128, 128))
        frame.paste(photo, ((FRAME_SIZE[0] - 480) // 2, 0))
        buffer = io.BytesIO()
        frame.save(buffer, "JPEG", quality=90)
        frames.append(buffer.getvalue())
    return frames


def median_ms(function, items, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        for item in items:
            start = time.perf_counter()
            function(item)
            timings.append(time.perf_counter() - start)
    return 1000 * statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--faces-dir", type=Path, default=Path(
        os.environ.get("FRID_FACES_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "faces")))
    arguments = parser.parse_args()

    frames = webcam_frames(arguments.faces_dir, arguments.photos)
    images = [faces.decode_image(frame) for frame in frames]
    detector = faces._hog_detector()
    predictor = faces._shape_predictor()
    rectangles = [detector(image, 0)[0] for image in images]
    shapes = [predictor(image, rectangle) for image, rectangle in zip(images, rectangles)]
    chips = numpy.stack([dlib.get_face_chip(image, shape, 150, 0.25) for image, shape in zip(images, shapes)])

    model, _ = import_dlib_network()
    single = Embedder(model, mirror=False)
    mirrored = Embedder(model, mirror=True)
    for embedder in (single, mirrored):
        embedder.embed(chips[:1])
        embedder.embed(chips[:32])
    batches = [chips[start:start + 32] for start in range(0, len(chips) - 31, 32)] or [chips]

    def end_to_end(embedder):
        def run(frame):
            image = faces.decode_image(frame)
            face = faces.central_face(faces.detect_faces(image), image.shape)
            embedder.embed(face.chip[numpy.newaxis])
        return run

    rows = [
        ("decode 640x480 JPEG", median_ms(faces.decode_image, frames, arguments.repeat)),
        ("detect (HOG, 640x480)", median_ms(lambda image: detector(image, 0), images, arguments.repeat)),
        ("landmarks (5 points)", median_ms(lambda pair: predictor(*pair), list(zip(images, rectangles)), arguments.repeat)),
        ("chip (get_face_chip)", median_ms(lambda pair: dlib.get_face_chip(pair[0], pair[1], 150, 0.25),
                                           list(zip(images, shapes)), arguments.repeat)),
        ("embed, batch 1", median_ms(lambda chip: single.embed(chip[numpy.newaxis]), chips, arguments.repeat)),
        (f"embed, batch {len(batches[0])}, per face",
         median_ms(single.embed, batches, arguments.repeat * 4) / len(batches[0])),
        ("embed + mirror, batch 1", median_ms(lambda chip: mirrored.embed(chip[numpy.newaxis]), chips, arguments.repeat)),
        (f"embed + mirror, batch {len(batches[0])}, per face",
         median_ms(mirrored.embed, batches, arguments.repeat * 4) / len(batches[0])),
        ("bytes -> embedding (FRID, mirror)", median_ms(end_to_end(mirrored), frames, arguments.repeat)),
        ("bytes -> embedding (FRID, no mirror)", median_ms(end_to_end(single), frames, arguments.repeat)),
    ]
    dlib_embed = median_ms(lambda chip: reference.dlib_chip_descriptors(chip[numpy.newaxis]), chips[:10], 2)
    frid_embed = rows[4][1]

    print(f"FRID face engine, {len(frames)} real LFW faces in 640x480 frames, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"{'stage':45} {'median ms':>10}")
    for name, value in rows:
        print(f"{name:45} {value:10.2f}")
    print(f"{'dlib compute_face_descriptor (chip), batch 1':45} {dlib_embed:10.2f}")
    print(f"dlib / FRID embedding time at batch 1: {dlib_embed / frid_embed:.1f}x "
          f"({dlib_embed / rows[6][1]:.1f}x with the mirror image)")


if __name__ == "__main__":
    main()
