"""Tests for training/faces.py, on real LFW and AT&T photos (see conftest.faces_dir)."""

from __future__ import annotations

import dataclasses
import io
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import pytest
from PIL import Image, ImageFilter

from training import faces
from training.faces import (
    DamagedImage,
    Face,
    ImageError,
    ImageTooLarge,
    ImageTooSmall,
    NotAnImage,
    Quality,
    assess,
    central_face,
    centre_guess,
    decode_image,
    detect_faces,
    estimate_pose,
    load_image,
    measure_quality,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A frontal, sharp, single-face LFW photo; its face box is 105 px.
MAIN_PHOTO = ("Francisco_Urenda", 1)


def lfw_path(faces_dir: Path, name: str, number: int) -> Path:
    return faces_dir / "lfw" / name / f"{name}_{number:04d}.jpg"


def read_rgb(path: Path) -> np.ndarray:
    """Pixels as Pillow itself gives them, to compare the module's decoding against."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height RGB pixels but holds almost no data: no big allocation."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def main_photo(faces_dir: Path) -> np.ndarray:
    return read_rgb(lfw_path(faces_dir, *MAIN_PHOTO))


def overlap(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    shared = max(width, 0) * max(height, 0)

    def area(box):
        return (box[2] - box[0]) * (box[3] - box[1])

    return shared / (area(first) + area(second) - shared)


def single_face(image: np.ndarray) -> Face:
    found = detect_faces(image)
    assert len(found) == 1, f"expected one face, found {len(found)}"
    return found[0]


# --- Detection on a real photo --------------------------------------------------------------------


def test_it_finds_a_real_face_with_chip_box_landmarks_and_plausible_quality(main_photo):
    face = single_face(main_photo)

    assert face.detector == "hog"
    assert face.chip.shape == (150, 150, 3) and face.chip.dtype == np.uint8
    left, top, right, bottom = face.box
    assert 0 <= left < 125 < right <= 250 and 0 <= top < 125 < bottom <= 250
    assert face.quality.face_size == min(right - left, bottom - top)
    assert 90 <= face.quality.face_size <= 120
    assert len(face.landmarks) == 5
    for x, y in face.landmarks:
        assert left - 10 <= x <= right + 10 and top - 10 <= y <= bottom + 10
    # dlib's order: the eye on the right of the photo (0, 1), then the one on the left (2, 3), nose.
    (right_outer, right_inner, left_outer, left_inner, nose) = face.landmarks
    assert right_outer[0] > right_inner[0] > left_inner[0] > left_outer[0]
    assert nose[1] > max(right_outer[1], left_outer[1]) + 20
    assert left_inner[0] < nose[0] < right_inner[0]
    quality = face.quality
    assert faces.MIN_SHARPNESS < quality.sharpness < 1000
    assert faces.MIN_BRIGHTNESS < quality.brightness < faces.MAX_BRIGHTNESS
    assert abs(quality.yaw) < 10 and abs(quality.pitch) < 10 and abs(quality.roll) < 5
    assert assess(face) == []


def test_the_chip_and_landmarks_are_exactly_what_dlib_gives_for_the_same_face(main_photo):
    face = single_face(main_photo)

    rectangles = dlib.get_frontal_face_detector()(main_photo, 1)  # a 250x250 photo is searched upsampled once
    model = face_recognition_models.pose_predictor_five_point_model_location()
    predictor = dlib.shape_predictor(model)
    shape = predictor(main_photo, rectangles[0])
    expected_chip = dlib.get_face_chip(main_photo, shape, size=150, padding=0.25)

    found = rectangles[0]
    assert face.box == (found.left(), found.top(), found.right() + 1, found.bottom() + 1)
    assert face.landmarks == tuple((float(point.x), float(point.y)) for point in shape.parts())
    assert np.array_equal(face.chip, expected_chip)


def test_a_face_is_frozen_and_its_chip_read_only(main_photo):
    face = single_face(main_photo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.detector = "cnn"  # type: ignore[misc]
    with pytest.raises(ValueError):
        face.chip[0, 0, 0] = 1


def test_a_photo_without_a_face_gives_no_faces():
    rows, columns = np.mgrid[0:240, 0:320]
    gradient = np.stack([rows * 255 // 239, columns * 255 // 319, np.full_like(rows, 128)], axis=2)
    noise = np.random.default_rng(7).integers(0, 256, size=(240, 320, 3))

    assert detect_faces(gradient.astype(np.uint8)) == []
    assert detect_faces(noise.astype(np.uint8)) == []


def test_two_real_faces_side_by_side_give_two_faces_left_to_right(faces_dir):
    left_photo = read_rgb(lfw_path(faces_dir, "Zhang_Yimou", 1))
    right_photo = read_rgb(lfw_path(faces_dir, "Gerry_Adams", 6))
    both = np.ascontiguousarray(np.hstack([left_photo, right_photo]))

    found = detect_faces(both)

    assert len(found) == 2
    assert found[0].box[2] <= 250 <= found[1].box[0]
    # HOG scans on a grid, so the same face need not get the very same box once shifted.
    left, top, right, bottom = single_face(right_photo).box
    assert overlap(found[1].box, (left + 250, top, right + 250, bottom)) > 0.7


def test_a_face_shrunk_to_40_pixels_is_found_and_reported_too_small(faces_dir):
    photo = Image.open(lfw_path(faces_dir, *MAIN_PHOTO)).convert("RGB")
    # The face box is 105 px of the 250 px photo; 96 / 250 * 105 = 40.
    shrunk = np.array(photo.resize((96, 96), Image.Resampling.LANCZOS))

    face = single_face(shrunk)

    assert 30 <= face.quality.face_size <= 50
    assert face.chip.shape == (150, 150, 3)
    assert any("too small" in problem for problem in assess(face))


def test_the_cnn_detector_finds_a_face_that_hog_misses_unless_it_is_switched_off(faces_dir):
    # A real LFW photo on which dlib's HOG detector finds nothing, even upsampled.
    photo = read_rgb(lfw_path(faces_dir, "James_Jones", 1))

    assert detect_faces(photo, use_cnn_fallback=False) == []
    face = single_face(photo)
    assert face.detector == "cnn"
    assert face.chip.shape == (150, 150, 3)
    left, top, right, bottom = face.box
    assert left < 125 < right and top < 125 < bottom


def test_it_refuses_an_array_that_is_not_an_rgb_image(main_photo):
    with pytest.raises(ValueError, match="RGB"):
        detect_faces(main_photo[:, :, 0])


# --- Central face ---------------------------------------------------------------------------------


def test_central_face_picks_the_middle_face_even_when_it_is_the_smallest(faces_dir):
    middle = Image.open(lfw_path(faces_dir, "Gerry_Adams", 6)).convert("RGB").resize((170, 170))
    framed = Image.new("RGB", (250, 250), (128, 128, 128))
    framed.paste(middle, (40, 40))
    row = np.ascontiguousarray(
        np.hstack(
            [
                read_rgb(lfw_path(faces_dir, "Zhang_Yimou", 1)),
                np.array(framed),
                read_rgb(lfw_path(faces_dir, "Stephen_Glassroth", 1)),
            ]
        )
    )
    found = detect_faces(row)
    assert len(found) == 3
    assert found[1].quality.face_size < min(found[0].quality.face_size, found[2].quality.face_size)

    assert central_face(found, row.shape) is found[1]


def test_central_face_of_no_faces_is_none():
    assert central_face([], (250, 250, 3)) is None


def test_central_face_measures_from_the_box_centre():
    def face_with_box(box):
        return Face(box=box, landmarks=(), detector="hog", chip=np.zeros((150, 150, 3), np.uint8),
                    quality=Quality(box[2] - box[0], 50.0, 120.0, 0.0, 0.0, 0.0))

    # Image centre (x 200, y 100). Big: centre (110, 100), 90 away. Small: centre (215, 170), ~71.6.
    big = face_with_box((20, 10, 200, 190))
    small = face_with_box((200, 155, 230, 185))

    assert central_face([big, small], (200, 400, 3)) is small


def test_centre_guess_aligns_the_face_a_detector_finds_in_a_photo_centred_on_it(main_photo):
    detected = single_face(main_photo)

    guessed = centre_guess(main_photo)

    assert guessed.detector == "centre"
    # 0.42 * 250 = 105 px square around (0.50 * 250, 0.55 * 250) = (125, 137.5).
    assert guessed.box == (72, 85, 177, 190)
    assert np.abs(np.subtract(guessed.landmarks, detected.landmarks)).max() <= 3
    assert guessed.chip.shape == (150, 150, 3)
    assert np.abs(guessed.chip.astype(int) - detected.chip).mean() < 10


# --- Decoding -------------------------------------------------------------------------------------


def test_it_turns_an_exif_rotated_photo_upright_and_finds_the_face(faces_dir):
    # Crop to 250 wide x 200 high so that upright and sideways differ in shape too.
    upright = Image.open(lfw_path(faces_dir, *MAIN_PHOTO)).convert("RGB").crop((0, 25, 250, 225))
    stored_sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    data = encode(stored_sideways, "JPEG", quality=95, exif=exif)

    decoded = decode_image(data)

    assert decoded.shape == (200, 250, 3)
    assert np.abs(decoded.astype(int) - np.array(upright, dtype=int)).mean() < 3
    face = single_face(decoded)
    assert abs(face.quality.roll) < 5


def test_a_cmyk_jpeg_decodes_to_rgb_and_its_face_is_found(main_photo):
    data = encode(Image.fromarray(main_photo).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"

    decoded = decode_image(data)

    assert decoded.shape == (250, 250, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - main_photo.astype(int)).mean() < 4
    single_face(decoded)


def test_a_greyscale_att_pgm_loads_as_rgb_with_equal_channels_and_its_face_is_found(faces_dir):
    path = faces_dir / "att" / "s1" / "1.pgm"
    with Image.open(path) as original:
        assert original.mode == "L"
        grey = np.array(original)

    decoded = load_image(path)

    assert decoded.shape == (112, 92, 3) and decoded.dtype == np.uint8
    assert decoded.flags["C_CONTIGUOUS"]
    for channel in range(3):
        assert np.array_equal(decoded[:, :, channel], grey)
    single_face(decoded)


def test_a_16_bit_greyscale_png_is_scaled_to_8_bits(faces_dir):
    with Image.open(faces_dir / "att" / "s1" / "1.pgm") as original:
        grey = np.array(original)
    deep = Image.fromarray(grey.astype(np.uint16) * 257)  # 0..255 spread over 0..65535
    data = encode(deep, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    decoded = decode_image(data)

    assert np.array_equal(decoded[:, :, 1], grey)


def test_a_png_with_alpha_is_composited_on_white_and_its_face_is_found(main_photo):
    alpha = np.zeros((250, 250), np.uint8)
    alpha[20:230, 20:230] = 255
    alpha[0:10, :] = 128  # half transparent black strip along the top
    colours = main_photo.copy()
    colours[alpha == 0] = (255, 0, 0)  # hidden under full transparency: must not show
    colours[0:10, :] = 0
    data = encode(Image.fromarray(np.dstack([colours, alpha]), "RGBA"), "PNG")

    decoded = decode_image(data)

    assert np.array_equal(decoded[20:230, 20:230], main_photo[20:230, 20:230])
    assert np.all(decoded[alpha == 0] == 255)
    # Black at alpha 128 over white: 255 * (1 - 128 / 255) = 127.
    assert np.all(np.abs(decoded[0:10].astype(int) - 127) <= 1)
    single_face(decoded)


def test_a_palette_png_decodes_to_its_palette_colours_and_its_face_is_found(main_photo):
    paletted = Image.fromarray(main_photo).quantize(colors=256)
    data = encode(paletted, "PNG")
    palette = np.array(paletted.getpalette(), dtype=np.uint8).reshape(-1, 3)
    expected = palette[np.array(paletted)]

    decoded = decode_image(data)

    assert np.array_equal(decoded, expected)
    single_face(decoded)


def test_it_refuses_bytes_that_are_not_an_image():
    with pytest.raises(NotAnImage, match="not a photo") as raised:
        decode_image(b"Name,Email\nAda,ada@example.org\n")
    assert "JPEG or PNG" in str(raised.value)


def test_it_refuses_an_empty_upload():
    with pytest.raises(NotAnImage, match="empty"):
        decode_image(b"")


def test_it_refuses_an_empty_file(tmp_path):
    empty = tmp_path / "photo.jpg"
    empty.write_bytes(b"")
    with pytest.raises(NotAnImage, match="empty"):
        load_image(empty)


def test_it_refuses_a_truncated_jpeg(faces_dir):
    data = lfw_path(faces_dir, *MAIN_PHOTO).read_bytes()
    with pytest.raises(DamagedImage, match="damaged or incomplete") as raised:
        decode_image(data[: len(data) // 2])
    assert "upload" in str(raised.value).lower()


def test_it_refuses_a_decompression_bomb_without_decoding_it():
    with pytest.raises(ImageTooLarge, match="Resize it"):
        decode_image(png_header_only(100_000, 100_000))


def test_it_checks_its_own_pixel_limit_before_decoding():
    # 48 MP: over the module's 40 MP but under Pillow's own guard. Decoding the few bytes of data
    # would fail as a damaged image, so ImageTooLarge shows the limit was checked first.
    with pytest.raises(ImageTooLarge, match="8000x6000 pixels; the limit is 40 million"):
        decode_image(png_header_only(8000, 6000))


def test_the_pixel_limit_can_be_lowered_by_a_keyword(faces_dir):
    data = lfw_path(faces_dir, *MAIN_PHOTO).read_bytes()
    assert decode_image(data, max_pixels=250 * 250).shape == (250, 250, 3)
    with pytest.raises(ImageTooLarge, match="250x250"):
        decode_image(data, max_pixels=250 * 250 - 1)


def test_it_refuses_a_photo_too_small_to_hold_a_face(main_photo):
    data = encode(Image.fromarray(main_photo).resize((31, 40)), "PNG")
    with pytest.raises(ImageTooSmall, match="31x40"):
        decode_image(data)
    smallest = encode(Image.fromarray(main_photo).resize((32, 32)), "PNG")
    assert decode_image(smallest).shape == (32, 32, 3)


def test_image_errors_are_value_errors():
    for error in (NotAnImage, DamagedImage, ImageTooLarge, ImageTooSmall):
        assert issubclass(error, ImageError) and issubclass(error, ValueError)


# --- Quality and pose -----------------------------------------------------------------------------


def test_pose_of_a_frontal_face_is_zero():
    # Eye centres (80, 100) and (120, 100): eye distance 40; nose 0.72 eye distances below.
    drop = 40 * faces.FRONTAL_NOSE_DROP
    landmarks = [(130, 100), (110, 100), (70, 100), (90, 100), (100, 100 + drop)]

    assert estimate_pose(landmarks) == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)


def test_pose_reads_yaw_from_the_nose_offset_and_pitch_from_its_drop():
    depth, drop = faces.NOSE_DEPTH, faces.FRONTAL_NOSE_DROP
    # Nose offset one NOSE_DEPTH to the right: tan(yaw) = 1; a drop of drop / cos(45) is frontal.
    nose = (100 + 40 * depth, 100 + 40 * drop * math.sqrt(2))
    turned = [(130, 100), (110, 100), (70, 100), (90, 100), nose]
    # Nose NOSE_DEPTH lower than frontal: tan(pitch) = 1, looking down.
    lowered = [(130, 100), (110, 100), (70, 100), (90, 100), (100, 100 + 40 * (drop + depth))]

    assert estimate_pose(turned) == pytest.approx((45.0, 0.0, 0.0), abs=1e-9)
    assert estimate_pose(lowered) == pytest.approx((0.0, 45.0, 0.0), abs=1e-9)


def test_pose_reads_roll_from_the_eye_line_and_is_unchanged_otherwise_by_tilting():
    depth, drop = faces.NOSE_DEPTH, faces.FRONTAL_NOSE_DROP
    nose = (0.25 * 40 * depth, 40 * drop)
    landmarks = np.array([(30, 0), (10, 0), (-30, 0), (-10, 0), nose], float)
    angle = math.radians(30)  # turning clockwise on screen, where y points down
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    tilted = landmarks @ rotation.T + (200, 150)

    yaw, pitch, roll = estimate_pose([tuple(point) for point in tilted])
    upright_yaw, upright_pitch, _ = estimate_pose([tuple(point) for point in landmarks])

    assert roll == pytest.approx(30.0)
    assert yaw == pytest.approx(math.degrees(math.atan(0.25))) == pytest.approx(upright_yaw)
    assert pitch == pytest.approx(upright_pitch)


def test_pose_signs_follow_a_real_face_mirrored_and_rotated(faces_dir):
    # Phil Donahue looks about 20 degrees towards the left of this photo.
    photo = Image.open(lfw_path(faces_dir, "Phil_Donahue", 1)).convert("RGB")
    original = single_face(np.array(photo)).quality
    mirrored = single_face(np.array(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT))).quality
    # Pillow turns counter-clockwise: the eye on the right of the photo rises, roll falls by 10.
    turned = photo.rotate(10, Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    rotated = single_face(np.array(turned)).quality

    assert original.yaw < -12
    # Rough: HOG boxes of a photo and of its mirror image differ, and the landmarks with them.
    assert mirrored.yaw == pytest.approx(-original.yaw, abs=9)
    assert mirrored.roll == pytest.approx(-original.roll, abs=2)
    assert mirrored.pitch == pytest.approx(original.pitch, abs=10)
    assert rotated.roll == pytest.approx(original.roll - 10, abs=2)


def test_quality_of_a_flat_chip_has_no_sharpness_and_its_grey_level():
    chip = np.full((150, 150, 3), (200, 100, 50), np.uint8)
    quality = measure_quality(chip, [(0, 0)] * 4 + [(0, 30)], (10, 20, 110, 140))

    assert quality.sharpness == 0.0
    assert quality.brightness == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert quality.face_size == 100


def test_sharpness_is_the_laplacian_variance_of_the_face_area_inside_the_photo():
    # Columns alternating grey 0 and 10: the Laplacian is +20 or -20 everywhere, variance 400.
    stripes = np.zeros((150, 150, 3), np.uint8)
    stripes[:, 1::2] = 10
    landmarks = [(0, 0)] * 4 + [(0, 30)]

    assert measure_quality(stripes, landmarks, (0, 0, 99, 99)).sharpness == pytest.approx(400.0)
    assert measure_quality(stripes, landmarks, (0, 0, 99, 99)).brightness == pytest.approx(5.0)

    # The left half came from outside the photo: black, and left out of both measures.
    cut = stripes.copy()
    cut[:, :75] = 0
    inside = np.ones((150, 150), bool)
    inside[:, :75] = False
    quality = measure_quality(cut, landmarks, (0, 0, 99, 99), inside=inside)
    assert quality.sharpness == pytest.approx(400.0)
    assert quality.brightness == pytest.approx(5.0)


def test_a_blurred_photo_is_reported_too_blurred(faces_dir):
    photo = Image.open(lfw_path(faces_dir, *MAIN_PHOTO)).convert("RGB")
    face = single_face(np.array(photo.filter(ImageFilter.GaussianBlur(3))))

    assert face.quality.sharpness < faces.MIN_SHARPNESS
    assert any("blurred" in problem for problem in assess(face))


def test_a_dark_photo_is_reported_too_dark(main_photo):
    dark = (main_photo * 0.2).astype(np.uint8)
    face = single_face(dark)

    assert any("too dark" in problem for problem in assess(face))


def test_assess_lists_every_problem_in_plain_words():
    def face_with(**measures):
        quality = Quality(**{"face_size": 120, "sharpness": 50.0, "brightness": 120.0, "yaw": 0.0,
                             "pitch": 0.0, "roll": 0.0, **measures})
        return Face(box=(0, 0, 120, 120), landmarks=(), detector="hog",
                    chip=np.zeros((150, 150, 3), np.uint8), quality=quality)

    assert assess(face_with()) == []
    assert assess(face_with(face_size=80, yaw=30.0, pitch=-25.0, roll=30.0)) == []
    problems = assess(face_with(face_size=79, sharpness=9.9, brightness=29.9, yaw=0.0, pitch=25.1))
    assert len(problems) == 4
    assert "too small (79 pixels across" in problems[0]
    assert "blurred" in problems[1] and "too dark" in problems[2] and "turned" in problems[3]
    assert "too bright" in assess(face_with(brightness=215.1))[0]
    assert "turned" in assess(face_with(yaw=-30.1))[0]
    assert "tilted" in assess(face_with(roll=30.1))[0]


# --- Module hygiene -------------------------------------------------------------------------------


def test_importing_the_module_loads_no_model_and_no_django():
    script = (
        "import sys\n"
        "import training.faces as faces\n"
        "assert 'face_recognition_models' not in sys.modules\n"
        "assert 'django' not in sys.modules\n"
        "for loader in (faces._cnn_detector, faces._shape_predictor):\n"
        "    assert loader.cache_info().currsize == 0\n"
        "assert not hasattr(faces._per_thread, 'hog_detector')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
