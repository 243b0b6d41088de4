"""Benchmark: which detection and embedding choices give the best accuracy on LFW DevTest.

    .venv/bin/python bench/accuracy_variants.py

Same network, same 1,000 pairs; varies the HOG detector's upsampling (0; once, as dlib's examples
do; 0, and once only where that finds no face; or 0 on the photo resized to the upsampled
pyramid's fifth level, and once only where that finds no face: a faster detector for bulk
enrollment, which misses a second face of 40-69 px beside the main one) and whether each
embedding is averaged with the mirror image's. Prints 10-fold accuracy, AUC and EER on the pairs,
TAR at FAR 1e-3 over every two of DevTest's photos (the figure that shows small changes), and the
detection time per photo.
About three minutes on two cores.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dlib  # noqa: E402
import numpy  # noqa: E402
from PIL import Image  # noqa: E402

from training import evaluation, faces  # noqa: E402
from training.dlib_import import import_dlib_network  # noqa: E402
from training.embedder import Embedder  # noqa: E402
from training.engine import FileEmbeddings  # noqa: E402

PYRAMID_SCALE = 2 * (5 / 6) ** 4
FACES_DIR = Path(os.environ.get("FRID_FACES_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "faces"))


def hog_at_pyramid_scale(image):
    """HOG without upsampling on the photo resized to 2 * (5/6)**4 = 0.96. Upsampled, dlib scans the
    doubled photo and its pyramid (each level 5/6 of the one above: 2, 1.67, 1.39, 1.16, 0.96 ...);
    from the fifth level on this scans the same scales, skipping the four largest, which are most of
    the work and find only faces of 40-69 px."""
    height, width = image.shape[:2]
    size = (round(width * PYRAMID_SCALE), round(height * PYRAMID_SCALE))
    resized = numpy.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    across, down = width / size[0], height / size[1]
    return [dlib.rectangle(round(r.left() * across), round(r.top() * down), round(r.right() * across),
                           round(r.bottom() * down)) for r in faces._hog_detector()(resized, 0)]


def rectangles_for(image, upsample):
    if upsample == "0.96, then 1":  # a candidate for bulk enrollment; see hog_at_pyramid_scale
        return hog_at_pyramid_scale(image) or list(faces._hog_detector()(image, 1))
    if upsample == "0, then 1":
        return list(faces._hog_detector()(image, 0)) or list(faces._hog_detector()(image, 1))
    return list(faces._hog_detector()(image, upsample))


def central_chip(image, upsample):
    rectangles = rectangles_for(image, upsample)
    if not rectangles:
        return faces.central_face(faces.detect_faces(image), image.shape).chip  # CNN fallback
    middle_x, middle_y = image.shape[1] / 2, image.shape[0] / 2
    rectangle = min(rectangles, key=lambda r: (r.center().x - middle_x) ** 2 + (r.center().y - middle_y) ** 2)
    return dlib.get_face_chip(image, faces._shape_predictor()(image, rectangle), 150, 0.25)


def main() -> None:
    pairs = evaluation.read_pairs(FACES_DIR / "lfw-protocol" / "pairsDevTest.txt", FACES_DIR / "lfw")
    images = sorted({path for pair in pairs for path in (pair.image_a, pair.image_b)})
    loaded = {path: faces.load_image(path) for path in images}
    model, _ = import_dlib_network()
    same = numpy.array([pair.same for pair in pairs])
    print(f"{'HOG upsample':>12}  {'mirror':>6}  {'10-fold accuracy':>17}  {'AUC':>6}  {'EER':>6}"
          f"  {'all-pairs TAR@1e-3':>18}  {'detect ms/photo':>15}")
    for upsample in (0, 1, "0, then 1", "0.96, then 1"):
        started = time.perf_counter()
        for path in images:
            rectangles_for(loaded[path], upsample)
        detect_ms = (time.perf_counter() - started) * 1000 / len(images)
        chips = numpy.stack([central_chip(loaded[path], upsample) for path in images])
        for mirror in (False, True):
            embeddings = dict(zip(images, Embedder(model, mirror=mirror).embed(chips)))
            distances = numpy.array([numpy.linalg.norm(embeddings[p.image_a] - embeddings[p.image_b]) for p in pairs])
            metrics = evaluation.score(distances, same, threshold=0.6)
            every_two = evaluation.evaluate_all_pairs(FileEmbeddings(embeddings=embeddings, no_face=[], unreadable={}))
            print(f"{upsample!s:>12}  {str(mirror):>6}  {metrics.accuracy_10fold:>8.2%} ± {metrics.accuracy_10fold_std:.2%}"
                  f"  {metrics.auc:.4f}  {metrics.eer:.2%}  {every_two.tar_at_far_1e_3:>18.2%}  {detect_ms:>15.1f}")


if __name__ == "__main__":
    main()
