"""Real LFW people for tests that verify faces through a real verify worker: who to enroll, who
to verify with, and the warm worker itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity import enrollment
from identity.models import Employee, FaceTemplate
from training import faces

# An upper bound for a cold two-core machine, never a measurement: the worker is warm before any check.
PATIENT_TIMEOUT_SECONDS = 90


def usable(photo: Path) -> bool:
    found = faces.detect_faces(faces.decode_image(photo.read_bytes()), use_cnn_fallback=False)
    return len(found) == 1 and not faces.assess(found[0])


def people_with_two_photos(faces_dir: Path, count: int) -> list[tuple[Path, Path]]:
    """LFW people with an enrollment photo and another photo of them, both with one usable face."""
    chosen = []
    for person in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 2 and usable(photos[0]) and usable(photos[1]):
            chosen.append((photos[0], photos[1]))
            if len(chosen) == count:
                return chosen
    pytest.fail(f"Fewer than {count} LFW people have two usable photos.")


def stranger_photo(faces_dir: Path) -> Path:
    """A usable photo of an LFW person with a single photo (never enrolled by these tests)."""
    for person in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) == 1 and usable(photos[0]):
            return photos[0]
    pytest.fail("No LFW person with a single usable photo.")


def enroll(number: str, photo: Path) -> Employee:
    employee = Employee.objects.create(employee_number=number, name=photo.parent.name.replace("_", " "))
    template = enrollment.add_photo(employee, photo.read_bytes(), photo.name)
    enrollment.process_templates([template.pk])
    template.refresh_from_db()
    assert template.status == FaceTemplate.Status.READY, template.reason
    return employee


@pytest.fixture
def verify_worker(workers, settings, base_model_version, tmp_path):
    settings.FRID_VERIFY_TIMEOUT_SECONDS = PATIENT_TIMEOUT_SECONDS
    settings.MEDIA_ROOT = tmp_path / "media"
    workers.start(queues="verify")
    workers.wait_until_warm()
    return workers
