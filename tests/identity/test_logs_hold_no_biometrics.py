"""No biometric data in logs (issue 9): an enrollment of a real LFW photo and a verification of
another photo of the same person, through a real verify worker, leave no image bytes, no face
chip and no embedding in any log record of this process (every logger, at DEBUG) or in the
worker's own log (at DEBUG too).

``biometric_leaks`` is the check; the first tests show it catches each kind of leak, so that the
last one, which finds nothing, means something.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from decimal import Decimal
from pathlib import Path

import numpy
import pytest
from celery.app.trace import LOG_SUCCESS
from celery.utils.saferepr import saferepr

from identity import tasks, verification
from identity.models import Kiosk, VerificationAttempt
from tests.identity.real_faces import PATIENT_TIMEOUT_SECONDS, enroll, people_with_two_photos

# What image bytes look like in a log line: raw (decoded as Latin-1, or as a bytes repr) or base64.
IMAGE_MARKERS = ("\\xff\\xd8\\xff", "\xff\xd8\xff", "\\x89PNG", "\x89PNG", "/9j/4", "iVBORw0KGgo")
# Any run this long of an image's base64 (or of its bytes' repr) found in a log is that image.
CHUNK = 48
# This many of an embedding's 128 values printed, at 4 decimals or more, is that embedding.
EMBEDDING_VALUES = 8
# A bracketed list of 16 or more decimal numbers (an embedding however printed: list, numpy, JSON).
NUMBER_LIST = re.compile(r"\[\s*(?:-?\d*\.\d+(?:[eE][-+]?\d+)?[\s,]+){15}-?\d*\.\d+")
NUMBER = re.compile(r"-?\d*\.\d+(?:[eE][-+]?\d+)?")


def biometric_leaks(text: str, images: list[bytes], embeddings: list) -> list[str]:
    """What in ``text`` is biometric: image bytes, an image's base64, an embedding's values."""
    leaks = [f"image bytes ({marker!r})" for marker in IMAGE_MARKERS if marker in text]
    for index, image in enumerate(images):
        for shown, how in ((base64.b64encode(image).decode("ascii"), "base64"), (repr(image)[2:-1], "repr")):
            if any(shown[start:start + CHUNK] in text for start in range(0, max(1, len(shown) - CHUNK), CHUNK // 2)):
                leaks.append(f"image {index} as {how}")
    if NUMBER_LIST.search(text):
        leaks.append(f"a list of numbers: {NUMBER_LIST.search(text).group()[:80]}...")
    printed = _precise_numbers(text)
    for index, embedding in enumerate(embeddings):
        shown = sum(any(abs(value - number) <= tolerance for number, tolerance in printed)
                    for value in map(float, embedding))
        if shown >= EMBEDDING_VALUES:
            leaks.append(f"{shown} values of embedding {index}")
    return leaks


def _precise_numbers(text: str) -> list[tuple[float, float]]:
    """Each decimal number printed to 4 places or more, with how far its rounding may be off
    (float32 values printed as float64 included)."""
    numbers = set()
    for match in NUMBER.findall(text):
        exponent = Decimal(match).as_tuple().exponent
        if isinstance(exponent, int) and exponent <= -4:
            number = float(match)
            numbers.add((number, max(0.5 * 10.0**exponent, 1e-6 * abs(number))))
    return list(numbers)


def records_text(records: list[logging.LogRecord]) -> str:
    """Everything a handler could write: the message, the traceback, and every attribute (a
    structured handler writes the extras too)."""
    lines = []
    for record in records:
        lines.append(record.getMessage())
        lines.append(repr({name: value for name, value in vars(record).items() if name not in ("msg", "args")}))
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> bytes:
    return min((faces_dir / "lfw").glob("*/*.jpg")).read_bytes()


def an_embedding() -> list[float]:
    # Only the checker's own test needs one that no photo gave: any 128 values of an embedding's size.
    return [float(value) for value in numpy.random.default_rng(9).normal(0, 0.1, 128)]


# --- The check catches leaks ----------------------------------------------------------------------


@pytest.mark.parametrize("printed", [
    lambda embedding: f"embedding {embedding}",
    lambda embedding: f"embedding {numpy.array(embedding, dtype=numpy.float32)}",
    lambda embedding: json.dumps({"embedding": embedding}),
    lambda embedding: " ".join(f"{value:.4f}" for value in embedding[:10]),
    lambda embedding: str(embedding[:20]),
])
def test_the_check_finds_an_embedding_however_printed(printed):
    embedding = an_embedding()
    assert biometric_leaks(printed(embedding), [], [embedding])


@pytest.mark.parametrize("printed", [
    lambda photo: f"frames {[base64.b64encode(photo).decode()]}",
    lambda photo: f"upload {photo[:200]!r}",
    lambda photo: f"body {photo[300:600]!r}",
    lambda photo: photo.decode("latin-1"),
    lambda photo: base64.b64encode(photo).decode()[1000:1100],
])
def test_the_check_finds_an_image_however_printed(photo, printed):
    assert biometric_leaks(printed(photo), [photo], [])


def test_the_check_passes_ordinary_log_lines(photo):
    text = ("Task identity.tasks.embed_frames[0b7c] succeeded in 0.0312s: (not logged)\n"
            "verified in 31.2 ms, distance 0.4123, threshold 0.5276, margin 0.08\n"
            "quality [0.91, 0.5, 0.25]; boxes [[12, 30, 118, 140]]")
    assert biometric_leaks(text, [photo], [an_embedding()]) == []


def test_celerys_success_line_of_a_live_check_leaves_the_embeddings_out(caplog):
    # As the worker logs it (saferepr, 1,024 characters), through the logging settings this process
    # and the workers load. Celery elides lists as deep as embed_frames' embeddings are today; a
    # flatter result, as here, it prints value by value.
    embedding = an_embedding()
    context = {"id": "0b7c", "name": "identity.tasks.embed_frames", "runtime": 0.03, "args": "[1 frames]",
               "kwargs": "{}", "return_value": saferepr({"version": 1, "embedding": embedding}, 1024)}
    assert biometric_leaks(LOG_SUCCESS % context, [], [embedding])  # what Celery writes by itself
    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        logging.getLogger("celery.app.trace").info(LOG_SUCCESS, context, extra={"data": context})
    assert "succeeded" in caplog.text
    assert biometric_leaks(records_text(caplog.records), [], [embedding]) == []


def test_a_live_checks_frames_reach_celerys_logs_and_events_only_as_a_count(photo, monkeypatch, settings):
    sent = {}

    def apply_async(*args, **options):
        sent.update(options)
        raise ConnectionError("no broker here")

    monkeypatch.setattr(tasks.embed_frames, "apply_async", apply_async)
    with pytest.raises(tasks.VerificationBusy):
        tasks._embed_on_a_verify_worker([photo, photo])
    assert sent["argsrepr"] == "[2 frames]"


# --- An enrollment and a verification -------------------------------------------------------------


@pytest.fixture
def verify_worker_at_debug(workers, settings, base_model_version, tmp_path):
    """A real verify worker that logs everything (DEBUG), as real_faces.verify_worker otherwise."""
    settings.FRID_VERIFY_TIMEOUT_SECONDS = PATIENT_TIMEOUT_SECONDS
    settings.MEDIA_ROOT = tmp_path / "media"
    workers.start(queues="verify", options=("--loglevel", "DEBUG"))
    workers.wait_until_warm()
    return workers


@pytest.mark.slow
def test_an_enrollment_and_a_verification_log_no_biometrics(verify_worker_at_debug, faces_dir, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    (enrolled, probe), = people_with_two_photos(faces_dir, 1)
    answers = []
    send = tasks._embed_on_a_verify_worker

    def keep_the_answer(*args, **kwargs):
        answers.append(send(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", keep_the_answer)
    kiosk = Kiosk(name="Front door")
    kiosk.new_token()
    if hasattr(kiosk, "liveness_required"):
        kiosk.liveness_required = False  # still frames here: liveness is tested on its own
    kiosk.save()

    employee = enroll("E1", enrolled)
    template = employee.templates.get()
    outcome = tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [probe.read_bytes()] * 2, kiosk=kiosk))

    assert outcome.attempt.decision == VerificationAttempt.Decision.VERIFIED, outcome.attempt.reason
    worker_log = verify_worker_at_debug.log_path.read_text()
    assert "identity.tasks.embed_frames" in worker_log and "succeeded" in worker_log  # the log that was checked
    embeddings = [template.embedding, *(frame["embedding"] for frame in answers[0]["frames"])]
    images = [enrolled.read_bytes(), probe.read_bytes(), template.chip.read()]
    assert biometric_leaks(records_text(caplog.records), images, embeddings) == []
    assert biometric_leaks(worker_log, images, embeddings) == []
