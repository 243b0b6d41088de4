"""Finding faces in photos and cutting them out as aligned chips, with dlib and Pillow.

The one place that knows about image files and dlib's face models:

- decode_image / load_image turn uploaded bytes or a file into an upright RGB array, or refuse the
  photo with an ImageError whose message a person can act on;
- detect_faces finds every face (HOG detector first, dlib's CNN detector as the last resort), puts
  five landmarks on it and cuts the 150x150 chip that the embedding network reads, exactly as
  dlib.get_face_chip does;
- central_face picks the person a photo is centred on (centre_guess assumes one there when no
  detector finds it), and assess lists what makes a face a poor enrollment photo.

Models come from the face_recognition_models package and are loaded lazily, once per process, so
importing this module is cheap. Pure functions: no Django here.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import struct
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import dlib
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

# Refuse photos with more pixels than this (40 MP is more than phone cameras take).
MAX_IMAGE_PIXELS = 40_000_000
# Below this width or height there is no room for a face the detectors can find.
MIN_IMAGE_SIDE = 32
# Photo formats we open. Pillow knows more, but some are not photos and are a risk (EPS runs
# Ghostscript).
# JPEG covers the MPO files some cameras write.
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# Where centre_guess assumes the face: the median HOG box of the central faces of 398 LFW photos,
# which are centred on their person, is centred at (0.52, 0.55) of the photo and 0.42 of it across.
GUESSED_FACE_CENTRE = (0.50, 0.55)
GUESSED_FACE_SIDE = 0.42

# Upsampling doubles the image before the HOG detector looks again, so faces down to ~40 px are
# found; it quadruples the work, so only do it on images up to 800x800.
HOG_UPSAMPLE_MAX_PIXELS = 800 * 800
# Photos with a shorter side below this are searched upsampled straight away: their faces are
# small, and the finer box places the landmarks better. On LFW DevTest (250x250 photos) this
# raised 10-fold accuracy from 98.6% to 98.9% (bench/accuracy_variants.py); webcam frames (480 px
# and more) skip the cost.
SMALL_PHOTO_SIDE = 400
# The CNN detector takes ~4-5 us a pixel on 2 cores at upsample 0 (0.25 s for 250x250, 1.3 s for
# 640x480, 5.5 s for 1000x1000) and 4 times that upsampled. Upsample only small images, and shrink
# big ones before it looks: HOG has already searched them at full size for small faces.
CNN_UPSAMPLE_MAX_PIXELS = 400 * 400
CNN_MAX_PIXELS = 640 * 480
# Live frames (detect_faces(..., quick=True)) are first searched at half size: a face at the
# camera is large, HOG finds faces from ~80 px, so this finds those of ~160 px and more for a
# quarter of the work; a frame where it finds none is searched at full size as usual. Landmarks
# and chips always come from the full frame.
QUICK_MIN_SIDE = 480

# Five-point geometry of a frontal face, in eye distances (distance between the two eye centres),
# fitted on the central faces of 398 LFW photos (one each of 400 random people) and 396 AT&T photos.
# The nose bottom's median drop below the eye line is 0.715 (LFW 0.75, AT&T 0.685). Its depth comes
# from how the drop, in foreshortened eye distances, grows with the nose's sideways offset as heads
# turn: 1 / cos(yaw) = sqrt(1 + (offset / depth)^2) fits with depth ~0.50 (0.45-0.53 across bins).
FRONTAL_NOSE_DROP = 0.72
NOSE_DEPTH = 0.50

# Enrollment limits for assess(), measured on those same 794 faces (values below are percentiles).
# Face size: LFW boxes are 87-150 px, AT&T 63-92 px (275 of 396 under the limit: 92x112 photos).
# dlib's chips come from faces of about this size or more; smaller ones are upscaled and soft.
MIN_FACE_SIZE = 80
# Sharpness: LFW 1% 9.0, 5% 13.9, median 40; AT&T min 20.7, median 98. The same photos blurred
# (Gaussian, radius in photo pixels) score: LFW r=1.5 median 6.3 / 90% 10.0, r=2 max 6.5; AT&T r=1
# max 20.5, r=1.5 max 7.1. At 10, five LFW photos are refused, and they look soft to the eye.
MIN_SHARPNESS = 10.0
# Brightness: LFW 48-186 (1% 73, 99% 177), AT&T 91-175, all of them usable photos. Brightness
# also follows skin tone (the darkest, 48, is a well-lit dark-skinned face), so the limits sit well
# outside that range and catch only badly exposed photos.
MIN_BRIGHTNESS = 30.0
MAX_BRIGHTNESS = 215.0
# Pose (rough, see estimate_pose): LFW yaw 1%/99% -31/+32, pitch -25/+26, roll -14..+13; AT&T
# yaw -28..+31, pitch -28..+20. These limits refuse 22 of 398 LFW faces (10 for yaw, 15 for
# pitch) and 7 of 396 AT&T; looked at, nearly all of them are clearly turned. The chip undoes roll,
# so only extreme tilts count.
MAX_YAW = 30.0
MAX_PITCH = 25.0
MAX_ROLL = 30.0
# Live frames at a kiosk are judged more leniently than enrollment photos: a frame is only compared
# with templates that passed the enrollment limits, dlib's chip is cut from faces of any size
# (faces of 60-80 px lose little: tests/identity/test_open_set_service.py), and a turned head
# still matches often enough that refusing it would only make people try again.
LIVE_MIN_FACE_SIZE = 60

Image8 = NDArray[np.uint8]


class ImageError(ValueError):
    """A photo that cannot be used; the message says why and what to do, in plain words."""


class NotAnImage(ImageError):
    pass


class DamagedImage(ImageError):
    pass


class ImageTooLarge(ImageError):
    pass


class ImageTooSmall(ImageError):
    pass


@dataclass(frozen=True)
class Quality:
    """Measurements of one face. Pose angles are rough estimates from five landmarks (degrees)."""

    face_size: int  # shorter side of the face box, in pixels of the photo
    sharpness: float  # variance of the Laplacian of the grey face area of the chip; low: blurred
    brightness: float  # mean grey level of the face area of the chip, 0-255
    yaw: float  # positive: face turned towards the right of the photo
    pitch: float  # positive: looking down
    roll: float  # positive: head tilted so that the eye on the right of the photo is lower


# eq=False: comparing or hashing the chip array field by field makes no sense; faces compare by
# identity.
@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    box is (left, top, right, bottom) in pixels, right and bottom exclusive and clipped to the
    image, so image[top:bottom, left:right] is the face. landmarks are dlib's five points, in its
    order: the outer and inner corner of the eye on the right of the photo, the outer and inner
    corner of the eye on the left of the photo, the bottom of the nose.
    """

    box: tuple[int, int, int, int]
    landmarks: tuple[tuple[float, float], ...]
    detector: str  # "hog" or "cnn"; "centre" for a face centre_guess assumed without detecting it
    chip: Image8  # CHIP_SIZE x CHIP_SIZE x 3 RGB, read-only
    quality: Quality


# --- Decoding -------------------------------------------------------------------------------------


def decode_image(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> Image8:
    """Decode an uploaded photo to an upright (H, W, 3) uint8 RGB array, or raise an ImageError."""
    if not data:
        raise NotAnImage("The file is empty. Choose a photo (JPEG or PNG) and upload it again.")
    return _decode(io.BytesIO(data), max_pixels)


def load_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_IMAGE_PIXELS) -> Image8:
    """Read a photo from disk like decode_image does; a missing file raises FileNotFoundError."""
    with open(path, "rb") as stream:
        if not stream.read(1):
            raise NotAnImage(f"The file {os.fspath(path)} is empty. Choose a photo (JPEG or PNG).")
        stream.seek(0)
        return _decode(stream, max_pixels)


def _decode(stream: BinaryIO, max_pixels: int) -> Image8:
    image = _open(stream, max_pixels)
    _check_size(image.size, max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise DamagedImage(
            "The photo is damaged or incomplete (perhaps the upload was cut off), so it cannot be "
            "read. Upload the original file again."
        ) from error
    image = _upright(image)
    pixels = _to_rgb(image)
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ImageTooSmall(
            f"The photo is only {width}x{height} pixels, too small to hold a face. Use a photo at "
            f"least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels; one where the face is "
            f"{MIN_FACE_SIZE} pixels or more across works best."
        )
    return pixels


def _open(stream: BinaryIO, max_pixels: int) -> Image.Image:
    """Read only the header; Pillow refuses decompression bombs here, before decoding a pixel."""
    try:
        # catch_warnings is process-wide, but turns only this one warning into an error, briefly.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(stream, formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(None, max_pixels) from error
    except UnidentifiedImageError as error:
        raise NotAnImage(
            "This file is not a photo, or not in a format we can read. Upload a JPEG or PNG photo."
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise DamagedImage(
            "The photo's file is damaged, so it cannot be read. Upload the original file again."
        ) from error


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise _too_large(size, max_pixels)


def _too_large(size: tuple[int, int] | None, max_pixels: int) -> ImageTooLarge:
    described = f"{size[0]}x{size[1]} pixels" if size else "far too large"
    return ImageTooLarge(
        f"The photo is {described}; the limit is {max_pixels / 1e6:g} million pixels. "
        "Resize it or upload a smaller copy."
    )


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, so a phone photo taken sideways is seen as people see it."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the photo, which is readable
        logger.warning("Ignoring an unreadable EXIF orientation", exc_info=True)
        return image


def _to_rgb(image: Image.Image) -> Image8:
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return _deep_grey_to_rgb(image)
    if "A" in mode or "a" in mode or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        # Transparent parts become white, as on a web page, rather than whatever colour they hide.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    try:
        rgb = image.convert("RGB")
    except ValueError as error:
        raise NotAnImage(
            f"The photo's colours are stored in a way we cannot read ({mode}). Save it as an "
            "ordinary JPEG or PNG and upload it again."
        ) from error
    return np.array(rgb, dtype=np.uint8, order="C")


def _deep_grey_to_rgb(image: Image.Image) -> Image8:
    """Scale 16-bit and float greyscale to 0-255 (Pillow's own convert would clip it to white)."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    elif image.mode.startswith("I;16") or (values.size and values.max() > 255):
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    grey = np.clip(np.rint(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2))


# --- Detection ------------------------------------------------------------------------------------


# The engine analyses a batch's photos on several threads (dlib lets go of the GIL while it
# detects). dlib's shape predictor may be shared between threads; its HOG detector keeps the
# image's feature pyramid inside (one per thread), and its CNN its layers' outputs (one at a time).
_CNN_LOCK = threading.Lock()
_per_thread = threading.local()


def _hog_detector() -> dlib.fhog_object_detector:
    detector = getattr(_per_thread, "hog_detector", None)
    if detector is None:
        detector = _per_thread.hog_detector = dlib.get_frontal_face_detector()
    return detector


@functools.cache
def _cnn_detector() -> dlib.cnn_face_detection_model_v1:
    import face_recognition_models  # imports pkg_resources, which is slow: only when needed

    path = face_recognition_models.cnn_face_detector_model_location()
    return dlib.cnn_face_detection_model_v1(path)


@functools.cache
def _shape_predictor() -> dlib.shape_predictor:
    import face_recognition_models

    return dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())


def detect_faces(image: Image8, *, use_cnn_fallback: bool = True, quick: bool = False) -> list[Face]:
    """Find every face in an RGB image (as decode_image returns), sorted left to right. ``quick``
    (live frames) searches a half-size copy first (QUICK_MIN_SIDE)."""
    image = _as_dlib_image(image)
    rectangles, detector = _quick_rectangles(image) if quick else ([], "")
    if not rectangles:
        rectangles, detector = _find_rectangles(image, use_cnn_fallback)
    if not rectangles:
        return []
    # Cut from a white canvas the same shape as the photo, a chip shows which of its pixels lie
    # inside the photo: dlib fills the rest with black.
    canvas = np.full(image.shape[:2], 255, dtype=np.uint8)
    faces = [_describe(image, canvas, rectangle, detector) for rectangle in rectangles]
    return sorted(faces, key=lambda face: (face.box[0], face.box[1]))


def _as_dlib_image(image: Image8) -> Image8:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            "Expected an (H, W, 3) uint8 RGB image as decode_image returns; "
            f"got {image.shape} {image.dtype}."
        )
    return np.ascontiguousarray(image)


def _find_rectangles(image: Image8, use_cnn_fallback: bool) -> tuple[list[dlib.rectangle], str]:
    height, width = image.shape[:2]
    small = min(height, width) < SMALL_PHOTO_SIDE
    rectangles = list(_hog_detector()(image, 1 if small else 0))
    if not rectangles and not small and height * width <= HOG_UPSAMPLE_MAX_PIXELS:
        rectangles = list(_hog_detector()(image, 1))
    if rectangles or not use_cnn_fallback:
        return rectangles, "hog"
    return _cnn_rectangles(image), "cnn"


def _quick_rectangles(image: Image8) -> tuple[list[dlib.rectangle], str]:
    height, width = image.shape[:2]
    if min(height, width) < QUICK_MIN_SIDE:
        return [], "hog"
    half = np.asarray(Image.fromarray(image).reduce(2))  # a 2x2 box filter: no aliasing
    return [_rescale(rectangle, 2.0) for rectangle in _hog_detector()(half, 0)], "hog"


def _cnn_rectangles(image: Image8) -> list[dlib.rectangle]:
    height, width = image.shape[:2]
    scale = min(1.0, math.sqrt(CNN_MAX_PIXELS / (height * width)))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    upsample = 1 if image.shape[0] * image.shape[1] <= CNN_UPSAMPLE_MAX_PIXELS else 0
    with _CNN_LOCK:  # dlib's CNN keeps its layers' outputs in the net: one image at a time
        detections = _cnn_detector()(image, upsample)
    return [_rescale(detection.rect, 1.0 / scale) for detection in detections]


def _rescale(rectangle: dlib.rectangle, factor: float) -> dlib.rectangle:
    if factor == 1.0:
        return rectangle
    return dlib.rectangle(
        round(rectangle.left() * factor),
        round(rectangle.top() * factor),
        round(rectangle.right() * factor),
        round(rectangle.bottom() * factor),
    )


def _describe(image: Image8, canvas: Image8, rectangle: dlib.rectangle, detector: str) -> Face:
    shape = _shape_predictor()(image, rectangle)
    landmarks = tuple((float(point.x), float(point.y)) for point in shape.parts())
    chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    chip.setflags(write=False)
    inside = dlib.get_face_chip(canvas, shape, size=CHIP_SIZE, padding=CHIP_PADDING) == 255
    box = _clip_box(rectangle, image.shape)
    return Face(
        box=box,
        landmarks=landmarks,
        detector=detector,
        chip=chip,
        quality=measure_quality(chip, landmarks, box, inside=inside),
    )


def _clip_box(rectangle: dlib.rectangle, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    # dlib's right and bottom are inclusive; ours are exclusive, as in Python slices.
    return (
        min(max(rectangle.left(), 0), width),
        min(max(rectangle.top(), 0), height),
        min(max(rectangle.right() + 1, 0), width),
        min(max(rectangle.bottom() + 1, 0), height),
    )


def central_face(faces: Sequence[Face], image_shape: Sequence[int]) -> Face | None:
    """The face whose box centre is nearest the image centre: the person the photo is about."""
    if not faces:
        return None
    centre_y, centre_x = image_shape[0] / 2, image_shape[1] / 2

    def distance_from_centre(face: Face) -> float:
        left, top, right, bottom = face.box
        return math.hypot((left + right) / 2 - centre_x, (top + bottom) / 2 - centre_y)

    return min(faces, key=distance_from_centre)


def centre_guess(image: Image8) -> Face:
    """A face assumed where photos centred on a person have it, for when no detector finds one.

    The landmarks are still placed by dlib's shape predictor, inside the assumed box, so the chip is
    aligned on whatever face is near there; if there is none, the chip shows whatever is.
    """
    image = _as_dlib_image(image)
    height, width = image.shape[:2]
    side = max(1, round(GUESSED_FACE_SIDE * min(height, width)))
    left = round(GUESSED_FACE_CENTRE[0] * width - side / 2)
    top = round(GUESSED_FACE_CENTRE[1] * height - side / 2)
    rectangle = dlib.rectangle(left, top, left + side - 1, top + side - 1)
    canvas = np.full(image.shape[:2], 255, dtype=np.uint8)
    return _describe(image, canvas, rectangle, "centre")


# --- Quality --------------------------------------------------------------------------------------


def measure_quality(
    chip: Image8,
    landmarks: Sequence[tuple[float, float]],
    box: tuple[int, int, int, int],
    *,
    inside: NDArray[np.bool_] | None = None,
) -> Quality:
    """Size, sharpness, brightness and rough pose of a face from its chip, landmarks and box.

    Sharpness and brightness are measured on the face area of the chip only (see _face_area), and
    only on chip pixels that came from the photo: inside marks them, None meaning all of them.
    """
    grey = _grey(_face_area(chip))
    if inside is None:
        inside = np.ones(chip.shape[:2], dtype=bool)
    inside = _face_area(inside)
    yaw, pitch, roll = estimate_pose(landmarks)
    left, top, right, bottom = box
    return Quality(
        face_size=min(right - left, bottom - top),
        sharpness=_laplacian_variance(grey, inside),
        brightness=float(grey[inside].mean()) if inside.any() else 0.0,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
    )


def _face_area(chip: NDArray) -> NDArray:
    """The middle of the chip, brow to chin, where dlib puts the face. The padding around it is
    background, whose detail would pass for sharpness and whose colour for lighting."""
    margin = round(chip.shape[0] * CHIP_PADDING / (1 + 2 * CHIP_PADDING))
    return chip[margin : chip.shape[0] - margin, margin : chip.shape[1] - margin]


def _grey(rgb: Image8) -> NDArray[np.float64]:
    """Luma with the ITU-R BT.601 weights, as Pillow's convert("L") uses."""
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _laplacian_variance(grey: NDArray[np.float64], inside: NDArray[np.bool_]) -> float:
    """Variance of the 4-neighbour Laplacian over the pixels that, with all four neighbours, are
    inside; the black past the photo's edge would otherwise count as a very sharp edge."""
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    )
    usable = inside[1:-1, 1:-1].copy()
    for neighbours in (inside[:-2, 1:-1], inside[2:, 1:-1], inside[1:-1, :-2], inside[1:-1, 2:]):
        usable &= neighbours
    return float(laplacian[usable].var()) if usable.any() else 0.0


def estimate_pose(landmarks: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """Rough (yaw, pitch, roll) in degrees from dlib's five landmarks; see Quality for the signs.

    Model: the eye centres and the bottom of the nose are three points of a rigid head; the nose
    sits FRONTAL_NOSE_DROP eye distances below the eye line and NOSE_DEPTH eye distances in front.
    - roll is the angle of the line through the eye centres;
    - yaw: turning the head by y moves the nose sideways by NOSE_DEPTH * sin(y) while the eye
      distance shrinks by cos(y), so the nose's offset from the eye midpoint, in eye distances, is
      NOSE_DEPTH * tan(y);
    - pitch p: the nose's drop below the eye line, in eye distances corrected for yaw, is
      FRONTAL_NOSE_DROP * cos(p) + NOSE_DEPTH * sin(p), near frontal about
      FRONTAL_NOSE_DROP + NOSE_DEPTH * tan(p); we invert the latter. The exact curve peaks near
      35 degrees down, so five points cannot tell a lowered head from a long nose: looking down is
      understated, looking up is overstated by a few degrees.
    Faces differ from these proportions by ~10%, which alone moves the estimates by 5-10 degrees.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"Expected dlib's five (x, y) landmarks; got an array of {points.shape}.")
    right_of_photo_eye = points[0:2].mean(axis=0)
    left_of_photo_eye = points[2:4].mean(axis=0)
    eye_line = right_of_photo_eye - left_of_photo_eye
    eye_distance = float(np.hypot(*eye_line))
    if eye_distance == 0.0:
        return 0.0, 0.0, 0.0
    along = eye_line / eye_distance
    down = np.array([-along[1], along[0]])  # the eye line turned 90 degrees, towards the chin
    nose = points[4] - (right_of_photo_eye + left_of_photo_eye) / 2
    sideways = float(nose @ along) / eye_distance
    drop = float(nose @ down) / eye_distance

    roll = math.atan2(eye_line[1], eye_line[0])
    yaw = math.atan(sideways / NOSE_DEPTH)
    # Undo the foreshortening of the eye distance by yaw before comparing with the frontal drop.
    pitch = math.atan((drop * math.cos(yaw) - FRONTAL_NOSE_DROP) / NOSE_DEPTH)
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def assess(face: Face, *, live: bool = False) -> list[str]:
    """Plain-words reasons why a face is a poor enrollment photo (or, ``live``, a frame too poor
    to verify with); empty when it is fine.

    The limits are the module constants MIN_FACE_SIZE ... LIVE_MIN_FACE_SIZE; their comments say how
    they were chosen. Live frames are not refused for pose.
    """
    quality = face.quality
    problems = []
    min_face_size = LIVE_MIN_FACE_SIZE if live else MIN_FACE_SIZE
    if quality.face_size < min_face_size:
        problems.append(
            f"The face is too small ({quality.face_size} pixels across; at least {min_face_size} "
            "needed). Move closer to the camera or use a larger photo."
        )
    if quality.sharpness < MIN_SHARPNESS:
        problems.append("The face is too blurred. Hold the camera still and check the focus.")
    if quality.brightness < MIN_BRIGHTNESS:
        problems.append("The face is too dark. Use a photo taken in better light.")
    elif quality.brightness > MAX_BRIGHTNESS:
        problems.append("The face is too bright (overexposed). Avoid strong direct light or flash.")
    if not live and (abs(quality.yaw) > MAX_YAW or abs(quality.pitch) > MAX_PITCH or abs(quality.roll) > MAX_ROLL):
        problems.append("The head is turned or tilted. Look straight at the camera, head upright.")
    return problems
