"""Bad uploads and malformed API requests: each is answered with a clear 4xx, in words that say
what to do, and stores nothing but its audit.

Who sends them: HR adds photos and employees (its API token), a kiosk and an employee verify.
What "nothing stored" means: no employee, face template or file under MEDIA_ROOT is added, and no
attendance event or captured frame; a request that reached the verify view is audited as exactly one
VerificationAttempt with the decision "refused" (its status and words), anything else leaves none.

Each kind below is tested here end to end; some are also tested, from another angle, elsewhere:
frames without a face or of two people at a real verify worker (test_verify_task.py, not refusals
but "rejected" answers: the worker must look at a frame to know), two faces in an enrollment photo
(test_enrollment.py: the worker rejects it, HR sees why), and the bulk import's zips (a file that
is not a zip, paths out of the folder, zip bombs, too many files: test_bulk_import_admin.py; an
admin form shows its errors again with status 200, as Django's admin does, and stores nothing).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image

from identity import enrollment, tasks, verification
from identity.api import authentication, errors
from identity.models import AttemptCapture, AttendanceEvent, Employee, FaceTemplate, Kiosk, VerificationAttempt
from identity.api.views import NOT_AN_IMAGE
from tests.identity.api_actors import Actors, actors, jpeg, upload  # noqa: F401 (actors: a fixture)

PHOTOS_URL = reverse("api-employee-photos", args=["E1"])  # Erin's: her consent is recorded
EMPLOYEES_URL = reverse("api-employees")
VERIFY_URL = reverse("api-verify")
LFW_PHOTO = ("Gerry_Adams", "Gerry_Adams_0001.jpg")
FRAME_LIMIT = 5_000  # bytes: more than a small grey frame, less than a real photo
BODY_LIMIT = 100_000


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """No request here may get as far as a worker: not to embed a photo, not to verify a frame."""

    def contacted(*arguments):
        pytest.fail("the request reached a worker; it should have been refused first")

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", contacted)
    monkeypatch.setattr(tasks, "_send_embedding", contacted)


@pytest.fixture
def real_photo(faces_dir) -> bytes:
    person, name = LFW_PHOTO
    return (faces_dir / "lfw" / person / name).read_bytes()


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height pixels, its data a few rows of compressed zeros: a
    few hundred bytes that would decode to gigabytes (no real photo is like it: synthesised)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def stored() -> dict[str, int]:
    return {
        "employees": Employee.objects.count(),
        "templates": FaceTemplate.objects.count(),
        "files": sum(1 for path in settings.MEDIA_ROOT.rglob("*") if path.is_file()),
        "attempts": VerificationAttempt.objects.count(),
        "events": AttendanceEvent.objects.count(),
        "captures": AttemptCapture.objects.count(),
    }


def words_of(response) -> str:
    """The answer's message: {"detail": ...}, or the one field error of a serializer."""
    body = response.json()
    if "detail" in body:
        return body["detail"]
    (messages,) = body.values()
    return messages[0]


# --- The kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    send: Callable  # (actors, real_photo, settings) -> response
    status: int
    words: str
    audited: bool = False  # reached the verify view: one refused attempt


def _photo(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    def send(actors: Actors, real_photo: bytes, settings):
        return actors.client("hr").post(PHOTOS_URL, {"image": upload(data, name, content_type)}, format="multipart")

    return send


def _real_photo_cut_in_half(actors: Actors, real_photo: bytes, settings):
    return _photo(real_photo[: len(real_photo) // 2], "cut.jpg")(actors, real_photo, settings)


def _real_photo_over_the_size_limit(actors: Actors, real_photo: bytes, settings):
    settings.FRID_MAX_UPLOAD_BYTES = len(real_photo) - 1
    return _photo(real_photo, "large.jpg")(actors, real_photo, settings)


def _verify(role: str, frames: list[bytes], **fields):
    def send(actors: Actors, real_photo: bytes, settings):
        files = [upload(frame, f"frame{index}.jpg") for index, frame in enumerate(frames)]
        return actors.client(role).post(VERIFY_URL, {"image": files, **fields}, format="multipart")

    return send


def _real_frame_cut_off(actors: Actors, real_photo: bytes, settings):
    return _verify("kiosk", [real_photo[:-200]])(actors, real_photo, settings)


def _real_frame_over_the_size_limit(actors: Actors, real_photo: bytes, settings):
    settings.FRID_MAX_UPLOAD_BYTES = FRAME_LIMIT
    assert len(jpeg()) < FRAME_LIMIT < len(real_photo)
    return _verify("kiosk", [jpeg(), real_photo])(actors, real_photo, settings)


def _disabled_kiosk(actors: Actors, real_photo: bytes, settings):
    Kiosk.objects.filter(pk=actors.kiosk.pk).update(is_active=False)
    return _verify("kiosk", [real_photo])(actors, real_photo, settings)


def _more_files_than_a_request_may_carry(actors: Actors, real_photo: bytes, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 8
    return _verify("kiosk", [jpeg()] * 9)(actors, real_photo, settings)


def _json_to_verify(actors: Actors, real_photo: bytes, settings):
    return actors.client("kiosk").post(VERIFY_URL, {"image": "aGVsbG8="}, format="json")


def _multipart_without_a_boundary(actors: Actors, real_photo: bytes, settings):
    return actors.client("kiosk").generic("POST", VERIFY_URL, b"--x\r\nnot a part\r\n", "multipart/form-data")


MALFORMED_JSON = '{"employee_number": "E7", "name": '


def _json_error(text: str) -> str:
    try:
        json.loads(text)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{text} is valid JSON")


def _malformed_json(actors: Actors, real_photo: bytes, settings):
    return actors.client("hr").generic("POST", EMPLOYEES_URL, MALFORMED_JSON.encode(), "application/json")


def _json_over_the_body_limit(actors: Actors, real_photo: bytes, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = BODY_LIMIT
    body = b'{"employee_number": "E7", "name": "' + b"x" * (2 * BODY_LIMIT) + b'"}'
    return actors.client("hr").generic("POST", EMPLOYEES_URL, body, "application/json")


def _json_photo(actors: Actors, real_photo: bytes, settings):
    return actors.client("hr").post(PHOTOS_URL, {"image": "not a file"}, format="json")


def _session_without_csrf_token(actors: Actors, real_photo: bytes, settings):
    client = actors.page_client("employee")
    client.enforce_csrf_checks = True  # as a browser is checked; the test client skips it otherwise
    client.handler.enforce_csrf_checks = True
    return client.post(VERIFY_URL, {"image": [upload(real_photo)]}, format="multipart")


def _unknown_kiosk_token(actors: Actors, real_photo: bytes, settings):
    client = actors.client("kiosk")
    client.credentials(HTTP_AUTHORIZATION="Token kiosk_not-a-token-anyone-was-given")
    return client.post(VERIFY_URL, {"image": [upload(real_photo)]}, format="multipart")


TOO_MANY_PIXELS_PHOTO = enrollment.TOO_MANY_PIXELS.format(
    filename="bomb.png", size="far too many pixels", limit=40
)
KINDS = {
    # Photos sent to an employee (HR): refused before anything is stored.
    "a text file named .jpg": Kind(
        _photo(b"Dear HR, my photo is attached.", "me.jpg"), 415, NOT_AN_IMAGE.format(filename="me.jpg")),
    "an empty file": Kind(_photo(b"", "empty.jpg"), 400, "The photo is empty. Choose the photo again."),
    "a real photo cut off halfway": Kind(
        _real_photo_cut_in_half, 400, enrollment.DAMAGED_PHOTO.format(filename="cut.jpg")),
    "a decompression bomb (100,000 × 100,000 pixels in a few hundred bytes)": Kind(
        _photo(png_bomb(100_000, 100_000), "bomb.png", "image/png"), 413, TOO_MANY_PIXELS_PHOTO),
    "more pixels than FRID_MAX_IMAGE_PIXELS (8000 × 6000)": Kind(
        _photo(png_bomb(8000, 6000), "wide.png", "image/png"), 413,
        enrollment.TOO_MANY_PIXELS.format(filename="wide.png", size="8000×6000 pixels", limit=40)),
    "a photo over the upload size limit": Kind(
        _real_photo_over_the_size_limit, 413, "large.jpg is 0.0 MB; photos up to 0 MB are accepted. Use a smaller photo."),
    "a photo sent as JSON, not as a file": Kind(
        _json_photo, 415, errors.WRONG_CONTENT_TYPE.format(
            given="application/json", accepted="multipart/form-data, each file in its field")),
    # Malformed requests to the JSON API: nothing to audit, nothing stored.
    "a body that is not valid JSON": Kind(
        _malformed_json, 400, errors.NOT_JSON.format(error=_json_error(MALFORMED_JSON))),
    "a JSON body over the body limit": Kind(
        _json_over_the_body_limit, 413, "The request body is 0.2 MB; bodies up to 0.1 MB are accepted, except for "
        "files sent as multipart/form-data (each photo or frame up to the upload limit). Send less, or send files "
        "as files."),
    "an HTTP method the endpoint does not take": Kind(
        lambda actors, photo, settings: actors.client("hr").put(EMPLOYEES_URL, {"name": "E7"}, format="json"), 405,
        errors.WRONG_METHOD.format(method="PUT", allowed="POST")),
    "GET on verify": Kind(
        lambda actors, photo, settings: actors.client("kiosk").get(VERIFY_URL), 405,
        errors.WRONG_METHOD.format(method="GET", allowed="POST")),
    "an unknown kiosk token": Kind(
        _unknown_kiosk_token, 401, "Unknown kiosk token. Register the kiosk again in the admin."),
    "a session without the CSRF token": Kind(
        _session_without_csrf_token, 403, authentication.CSRF_REFUSED.format(reason="CSRF cookie not set")),
    # Checks sent to verify: refused before any worker is asked, and audited.
    "no frames (the field image missing)": Kind(
        _verify("kiosk", [], direction="in"), 400, verification.NO_FRAMES, audited=True),
    "a frame that is text": Kind(
        _verify("kiosk", [jpeg(), b"GET / HTTP/1.1"]), 415, verification.NOT_AN_IMAGE.format(index=2), audited=True),
    "six frames": Kind(
        _verify("kiosk", [jpeg()] * 6), 400, verification.TOO_MANY_FRAMES.format(count=6), audited=True),
    "a frame over the size limit": Kind(
        _real_frame_over_the_size_limit, 413, verification.FRAME_TOO_LARGE.format(index=2, limit=FRAME_LIMIT / 1e6),
        audited=True),
    "a frame cut off on the way": Kind(
        _real_frame_cut_off, 400, verification.DAMAGED_FRAME.format(index=1), audited=True),
    "a decompression-bomb frame": Kind(
        _verify("kiosk", [png_bomb(100_000, 100_000)]), 413, verification.FRAME_TOO_MANY_PIXELS.format(
            index=1, size="far too many pixels", limit=40), audited=True),
    "more files than a request may carry": Kind(
        _more_files_than_a_request_may_carry, 400, errors.TOO_MANY_FILES, audited=True),
    "frames sent as JSON": Kind(
        _json_to_verify, 415, errors.WRONG_CONTENT_TYPE.format(
            given="application/json", accepted="multipart/form-data, each file in its field"), audited=True),
    "a multipart body without a boundary": Kind(
        _multipart_without_a_boundary, 400, errors.NOT_MULTIPART.format(error="Invalid boundary in multipart: None"),
        audited=True),
    "a disabled kiosk's token": Kind(_disabled_kiosk, 403, verification.KIOSK_DISABLED, audited=True),
    "HR claiming an employee number nobody has": Kind(
        _verify("hr", [jpeg()], employee_number="E404"), 404,
        verification.UNKNOWN_EMPLOYEE.format(number="E404"), audited=True),
    # An employee gets the same answer for a number nobody has as for a colleague's: nothing
    # tells them who is enrolled.
    "an employee claiming a number nobody has": Kind(
        _verify("employee", [jpeg()], employee_number="E404"), 403,
        verification.NOT_YOUR_NUMBER.format(number="E1"), audited=True),
    "an employee claiming a colleague's number": Kind(
        _verify("employee", [jpeg()], employee_number="E2"), 403,
        verification.NOT_YOUR_NUMBER.format(number="E1"), audited=True),
}


def test_at_least_fifteen_kinds_are_tested():
    assert len(KINDS) >= 15


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_it_answers_a_clear_4xx_and_stores_nothing_but_the_audit(actors, real_photo, settings, kind):
    before = stored()

    response = kind.send(actors, real_photo, settings)

    assert response.status_code == kind.status, response.content
    assert words_of(response) == kind.words
    after = stored()
    if kind.audited:
        attempt = VerificationAttempt.objects.get()
        assert (attempt.decision, attempt.http_status, attempt.reason) == ("refused", kind.status, kind.words)
        assert response.json() == {"detail": kind.words, "decision": "refused", "attempt_id": attempt.pk}
        assert after == {**before, "attempts": before["attempts"] + 1}
    else:
        assert after == before


def test_a_refused_upload_leaves_the_next_good_one_unharmed(actors, real_photo, settings, monkeypatch):
    # The refusals above must not be a side effect of a broken endpoint: the same client, a good photo.
    sent = []
    monkeypatch.setattr(tasks, "_send_embedding", lambda template_ids: sent.append(template_ids) or True)
    _photo(png_bomb(100_000, 100_000), "bomb.png", "image/png")(actors, real_photo, settings)

    response = _photo(real_photo, "gerry.jpg")(actors, real_photo, settings)

    assert response.status_code == 202, response.content
    assert FaceTemplate.objects.get().original_filename == "gerry.jpg"


def test_an_image_in_another_format_the_worker_reads_passes_the_checks(actors, settings, monkeypatch):
    monkeypatch.setattr(tasks, "_send_embedding", lambda template_ids: True)
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "grey").save(buffer, "WEBP")

    response = _photo(buffer.getvalue(), "photo.webp", "image/webp")(actors, b"", settings)

    assert response.status_code == 202, response.content


def test_a_bomb_inside_a_bulk_import_is_refused_before_it_becomes_a_template(actors, base_model_version, tmp_path):
    # Each photo of a zip passes the same checks as an upload (the zip itself: test_bulk_import_admin.py).
    from identity import bulk_import

    (tmp_path / "E7").mkdir()
    (tmp_path / "E7" / "bomb.png").write_bytes(png_bomb(100_000, 100_000))
    summary = bulk_import.import_folder(tmp_path, actors.hr)

    assert [outcome.reason for outcome in summary.unreadable] == [
        enrollment.TOO_MANY_PIXELS.format(filename="bomb.png", size="far too many pixels", limit=40)
    ]
    assert not FaceTemplate.objects.exists()
    assert not any(path.is_file() for path in settings.MEDIA_ROOT.rglob("*"))
