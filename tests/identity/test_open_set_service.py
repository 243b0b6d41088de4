"""Open-set figures on real photos, through the service path: 200 LFW people enrolled, another
photo of each verified at a kiosk, and 200 people who are not enrolled.

The service path is everything a kiosk check goes through (tasks.verify: a real verify worker, HOG
only, the margin rule, the gallery-size threshold). It is compared with what the engine alone
achieves on the same photos (nearest enrolled embedding, no quality rules, no margin) when it
accepts as many strangers as the service did. The figures are logged and written to
var/test/open_set_service-<N>-photo.json for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy
import pytest
from django.conf import settings as django_settings

from identity import enrollment, tasks, verification
from identity.models import Employee, FaceTemplate, Kiosk, VerificationAttempt
from training.engine import FaceEngine

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.slow

EMPLOYEES = 200
STRANGERS = 200
STRANGERS_ACCEPTED_AT_MOST = 5  # of 200, at a 1% target: see the assertion
CANDIDATES = 240  # calibration people added at most, so that 200 reach their enrollment photos
BATCH = 32
PATIENT_TIMEOUT_SECONDS = 90
READY = FaceTemplate.Status.READY


def calibration_people(faces_dir: Path) -> set[str]:
    """The people of LFW's DevTrain list, whose photos chose the base version's thresholds."""
    names = set()
    for line in (faces_dir / "lfw-protocol" / "pairsDevTrain.txt").read_text().splitlines():
        parts = line.split()
        names.update(parts[0::2] if len(parts) == 4 else parts[:1])
    return names


def lfw_people(faces_dir: Path) -> tuple[list[Path], list[Path]]:
    """A fixed spread of LFW. To enroll: people with 3 or more photos (enrollment photos and retakes
    from the first ones, the last one kept to verify with), first those the thresholds were not
    calibrated on, then, to make up the numbers, calibration people with 4 or more. Strangers:
    people with a single photo, none from the calibration set."""
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())
    counts = {person: len(list(person.glob("*.jpg"))) for person in people}
    calibration = calibration_people(faces_dir)
    fresh = [person for person in people if counts[person] >= 3 and person.name not in calibration]
    seen = [person for person in people if counts[person] >= 4 and person.name in calibration]
    candidates = fresh + seen[:: max(1, len(seen) // CANDIDATES)][:CANDIDATES]
    single = [person for person in people if counts[person] == 1 and person.name not in calibration]
    strangers = single[:: len(single) // STRANGERS][:STRANGERS]
    return candidates, [next(person.glob("*.jpg")) for person in strangers]


def enroll(people: list[Path], photos_each: int) -> dict[str, Path]:
    """Enroll each person from their first acceptable photos (the enrollment rules judge; a
    rejected photo is replaced by the person's next one, as HR would), never their last photo.
    Returns the probe photo of each of the first EMPLOYEES people fully enrolled."""
    employees = {person.name: Employee.objects.create(employee_number=person.name, name=person.name) for person in people}
    candidates = {person.name: sorted(person.glob("*.jpg"))[:-1] for person in people}
    ready = {name: 0 for name in employees}
    while True:
        added = []
        for name, photos in candidates.items():
            if ready[name] < photos_each and photos:
                photo = photos.pop(0)
                added.append(enrollment.add_photo(employees[name], photo.read_bytes(), photo.name).pk)
        if not added:
            break
        for start in range(0, len(added), BATCH):
            enrollment.process_templates(added[start:start + BATCH])
        for name in employees:
            ready[name] = FaceTemplate.objects.filter(employee__employee_number=name, status=READY).count()
    enrolled = [person for person in people if ready[person.name] == photos_each][:EMPLOYEES]
    assert len(enrolled) == EMPLOYEES, f"only {len(enrolled)} people could be enrolled"
    Employee.objects.exclude(employee_number__in=[person.name for person in enrolled]).delete()
    return {person.name: sorted(person.glob("*.jpg"))[-1] for person in enrolled}


def engine_alone(version, probes: dict[str, Path], strangers: list[Path], strangers_accepted: int) -> int:
    """People the engine alone recognises (nearest enrolled embedding is theirs, within a threshold
    that accepts ``strangers_accepted`` strangers), on the same photos."""
    stored = list(FaceTemplate.objects.searchable(version).values_list("employee__employee_number", "embedding"))
    numbers = numpy.array([number for number, _ in stored])
    gallery = numpy.array([embedding for _, embedding in stored])
    engine = FaceEngine(version.embedder())

    def nearest(paths):
        embedded = engine.embed_files(paths).embeddings
        found = []
        for path in paths:
            if embedded[path] is None:
                found.append((None, numpy.inf))
                continue
            distances = numpy.linalg.norm(gallery - embedded[path], axis=1)
            found.append((numbers[int(numpy.argmin(distances))], float(distances.min())))
        return found

    stranger_distances = numpy.sort([distance for _, distance in nearest(strangers)])
    # The largest threshold that accepts no more strangers than the service did.
    threshold = numpy.nextafter(stranger_distances[strangers_accepted], -numpy.inf)
    probe_results = nearest(list(probes.values()))
    return int(sum(number == name and distance <= threshold
                   for name, (number, distance) in zip(probes, probe_results)))


def service(probes: dict[str, Path], strangers: list[Path]) -> tuple[int, int, int]:
    """Through tasks.verify at a kiosk: people recognised as themselves, frames rejected, strangers verified."""
    kiosk = Kiosk(name="Open-set test", liveness_required=False)  # still photos, as these tests send
    kiosk.new_token()
    kiosk.save()

    def check(photo: Path):
        return tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [photo.read_bytes()], kiosk=kiosk))

    recognised = rejected = 0
    for name, photo in probes.items():
        outcome = check(photo)
        recognised += outcome.employee is not None and outcome.employee.employee_number == name
        rejected += outcome.attempt.decision == VerificationAttempt.Decision.REJECTED
    strangers_verified = sum(check(photo).employee is not None for photo in strangers)
    return recognised, rejected, strangers_verified


@pytest.mark.parametrize("photos_each", [1, 2])
def test_two_hundred_enrolled_lfw_people_and_two_hundred_strangers(
    photos_each, faces_dir, base_model_version, workers, settings, tmp_path
):
    settings.FRID_VERIFY_TIMEOUT_SECONDS = PATIENT_TIMEOUT_SECONDS
    settings.MEDIA_ROOT = tmp_path / "media"
    # 400 checks at one kiosk, most strangers not recognised: the lockout (tested on its own) would
    # stop the kiosk after five of them.
    settings.FRID_LOCKOUT_FAILURES = 10**6
    workers.start(queues="verify")
    people, strangers = lfw_people(faces_dir)
    probes = enroll(people, photos_each)
    workers.wait_until_warm()

    recognised, rejected, strangers_verified = service(probes, strangers)
    alone = engine_alone(base_model_version, probes, strangers, strangers_verified)

    calibration = calibration_people(faces_dir)
    figures = {
        "enrolled": EMPLOYEES, "photos_each": photos_each, "strangers": STRANGERS,
        "enrolled_from_calibration_set": sum(name in calibration for name in probes),
        "service_recognised": recognised, "service_rejected_frames": rejected,
        "service_strangers_verified": strangers_verified, "engine_alone_recognised": alone,
        "gallery_threshold": base_model_version.threshold_for_gallery(
            EMPLOYEES * photos_each, margin=base_model_version.open_set_margin),
        "margin": base_model_version.open_set_margin,
    }
    logger.warning("open-set service figures: %s", figures)
    out = Path(django_settings.FRID_DATA_DIR) / f"open_set_service-{photos_each}-photo.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    # The thresholds are calibrated to take 1% of strangers for somebody: 2 of 200 on average, but
    # the count is binomial, and CPUs that round TensorFlow's sums differently move a stranger or
    # two across the line (CI once saw 3). A true 1% gives more than 5 with probability
    # 1.6%; a calibration gone wrong at 5% gives 6 or more with probability 94%.
    assert strangers_verified <= STRANGERS_ACCEPTED_AT_MOST
    assert recognised >= alone - 0.02 * EMPLOYEES  # the service path loses at most 2 points
