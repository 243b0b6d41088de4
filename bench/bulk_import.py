"""Benchmark: bulk onboarding (identity.bulk_import) beside dlib's own pipeline, on 1,000 real photos.

    .venv/bin/python bench/bulk_import.py [--photos 1000] [--strangers 200] [--workers 1 2]

The photos: the first photo of every 4th LFW person in alphabetical order (FRID_FACES_DIR, default
../shared/faces), the first 1,000 of them: 250x250 JPEGs, one folder per person, as HR would
hand them over. The script runs on a data directory of its own (a fresh embedded PostgreSQL in a
temporary folder, migrated, with the base model imported), removed at the end.

Both pipelines are timed in the same run, with their networks loaded beforehand:
- FRID: import_folder twice, its detection on one thread and then on one per core (the engine's
  default; the employees of the first import are deleted before the second), i.e. the whole enrollment: read, create employees and templates, detect
  (HOG, upsampled for small photos, CNN when HOG finds nothing), check quality, embed in batches of
  32 (with the mirror image), store chips and embeddings, check for duplicates in pgvector;
- FRID with its batches handed to Celery worker processes on the embeddings queue (as
  `import_employees --on-workers` does), once per count in --workers: that many workers
  (prefork, one process each, on the embedded Redis of the run's data directory), their network
  loaded by a warm-up import first; the import itself reads and adds the photos meanwhile;
- dlib: as face_recognition uses it: HOG upsample 1, 5-point shape, compute_face_descriptor
  (training.reference.dlib_descriptor), on the same files, nothing stored.
Then 200 people never enrolled are searched for among the enrolled (open-set false acceptances).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

EVERY_NTH_PERSON = 4


def choose_photos(faces_dir: Path, count: int, offset: int = 0) -> list[Path]:
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())
    return [sorted(person.glob("*.jpg"))[0] for person in people[offset::EVERY_NTH_PERSON][:count]]


def copy_as_employee_folders(photos: list[Path], folder: Path) -> None:
    for photo in photos:
        (folder / photo.parent.name).mkdir(parents=True)
        shutil.copyfile(photo, folder / photo.parent.name / photo.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--strangers", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="worker process counts to measure the import on (none: skip)")
    parser.add_argument("--faces-dir", type=Path, default=Path(
        os.environ.get("FRID_FACES_DIR", PROJECT_ROOT.parent / "shared" / "faces")))
    arguments = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="frid-bench-"))
    # Before Django loads the settings: they start the embedded PostgreSQL in FRID_DATA_DIR.
    os.environ["FRID_DATA_DIR"] = str(work / "data")
    os.environ["DJANGO_SETTINGS_MODULE"] = "frid_site.settings"
    os.environ["FRID_FACES_DIR"] = str(arguments.faces_dir)
    try:
        run(arguments, work)
    finally:
        from frid_site import services

        services.stop_all(work / "data")
        shutil.rmtree(work, ignore_errors=True)


def run(arguments, work: Path) -> None:
    import logging

    import django

    django.setup()
    logging.getLogger().setLevel(logging.WARNING)  # the table is the output, not the progress logs

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from identity import bulk_import
    from identity.matching import best_match
    from training.engine import FaceEngine
    from training import faces, reference
    from training.model_store import import_base_version

    call_command("migrate", verbosity=0)
    version, _ = import_base_version()
    user = get_user_model().objects.create_user("bench")
    photos = choose_photos(arguments.faces_dir, arguments.photos)
    folder = work / "photos"
    copy_as_employee_folders(photos, folder)

    # Both networks loaded before the clocks start: each is loaded once per worker process.
    version.embedder()
    reference._models()

    # First on one thread (as before the engine used every core), then as FRID runs: the same
    # photos, the first import's employees deleted in between so that both do the same work.
    from identity.models import Employee
    from training import engine as engine_module

    cores = engine_module._THREADS
    engine_module._THREADS = 1
    start = time.perf_counter()
    bulk_import.import_folder(folder, user)
    one_thread_seconds = time.perf_counter() - start
    engine_module._THREADS = cores
    Employee.objects.all().delete()

    start = time.perf_counter()
    summary = bulk_import.import_folder(folder, user)
    frid_seconds = time.perf_counter() - start

    on_workers = []  # (worker count, seconds, photos enrolled)
    for count in arguments.workers:
        Employee.objects.all().delete()
        seconds, enrolled = import_on_workers(folder, user, count, work, choose_photos(
            arguments.faces_dir, 64 * count, offset=1))
        on_workers.append((count, seconds, enrolled))

    start = time.perf_counter()
    dlib_faces = 0
    for photo in photos:
        dlib_faces += reference.dlib_descriptor(faces.load_image(photo)) is not None
    dlib_seconds = time.perf_counter() - start

    frid_rate = len(photos) / frid_seconds
    dlib_rate = len(photos) / dlib_seconds
    print(f"Bulk import of {len(photos)} LFW photos (250x250, first photo of every {EVERY_NTH_PERSON}th person), "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"{'pipeline':52} {'seconds':>8} {'images/s':>9} {'embedded':>9}")
    print(f"{'FRID bulk import, detection on 1 thread':52} {one_thread_seconds:8.1f} "
          f"{len(photos) / one_thread_seconds:9.1f} {summary.photos_enrolled:9d}")
    print(f"{f'FRID bulk import, detection on {cores} threads':52} {frid_seconds:8.1f} {frid_rate:9.1f} "
          f"{summary.photos_enrolled:9d}")
    for count, seconds, enrolled in on_workers:
        label = f"FRID bulk import, batches on {count} worker process{'es' if count > 1 else ''}"
        print(f"{label:52} {seconds:8.1f} {len(photos) / seconds:9.1f} {enrolled:9d}")
    print(f"{'dlib (HOG up 1, 5 points, compute_face_descriptor)':52} {dlib_seconds:8.1f} {dlib_rate:9.1f} "
          f"{dlib_faces:9d}")
    print(f"FRID / dlib throughput: {frid_rate / dlib_rate:.2f}x (one thread: {one_thread_seconds and len(photos) / one_thread_seconds / dlib_rate:.2f}x)")
    for count, seconds, _ in on_workers:
        print(f"FRID on {count} worker process{'es' if count > 1 else ''} / dlib throughput: "
              f"{len(photos) / seconds / dlib_rate:.2f}x")
    print(f"FRID / dlib per embedded face: {summary.photos_enrolled / frid_seconds / (dlib_faces / dlib_seconds):.2f}x")
    print(f"FRID: {summary.photos_enrolled} enrolled, {len(summary.rejected)} rejected by the enrollment rules, "
          f"{len(summary.unreadable)} unreadable; {len(summary.possible_duplicates)} flagged as possible duplicates")
    # Open set: people never enrolled (every 4th person from the third), searched among everyone
    # enrolled. A match is a false acceptance: with N people enrolled, each search is N comparisons.
    engine = FaceEngine(version.embedder())
    searched = accepted = 0
    threshold = None
    for photo in choose_photos(arguments.faces_dir, arguments.strangers, offset=2):
        image = faces.load_image(photo)
        face = faces.central_face(faces.detect_faces(image), image.shape)
        if face is None:
            continue
        searched += 1
        match = best_match(engine.embed_faces([face])[0].embedding, version)
        accepted += match.employee is not None
        threshold = match.threshold
    print(f"Strangers (first photo of every {EVERY_NTH_PERSON}th person from the 3rd, never enrolled): "
          f"{accepted} of {searched} matched someone of the {summary.photos_enrolled} enrolled "
          f"(1:N threshold {threshold:.3f}; two-photo threshold {version.threshold:.3f})")


def import_on_workers(folder: Path, user, count: int, work: Path, warm_up_photos: list[Path]) -> tuple[float, int]:
    """Seconds to import ``folder`` with its batches on ``count`` fresh worker processes, and the
    photos enrolled. The workers load the network on a warm-up import of other photos first."""
    from django.conf import settings

    from frid_site import services
    from identity import bulk_import, tasks
    from identity.models import Employee

    data_dir = Path(settings.FRID_DATA_DIR)
    services.start_redis(data_dir)
    services.redis_client(data_dir).flushall()
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("CELERY_BROKER_URL", None)  # the run's embedded Redis, as this process uses
    log = open(work / f"workers-{count}.log", "w")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "frid_site", "worker", "-Q", "embeddings", "-c", "1",
             "--pool", "prefork", "--loglevel", "WARNING", "-n", f"bench-{count}-{number}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        for number in range(count)
    ]
    try:
        warm_up = work / f"warm-up-{count}"
        copy_as_employee_folders(warm_up_photos, warm_up)
        # Batches of 8: every worker gets one while another is still loading TensorFlow.
        saved, bulk_import.BATCH_SIZE = bulk_import.BATCH_SIZE, 8
        bulk_import.import_folder(warm_up, user, send=tasks.send_import_batch)
        bulk_import.BATCH_SIZE = saved
        Employee.objects.all().delete()

        start = time.perf_counter()
        summary = bulk_import.import_folder(folder, user, send=tasks.send_import_batch)
        return time.perf_counter() - start, summary.photos_enrolled
    finally:
        for worker in workers:
            os.killpg(worker.pid, 9)
            worker.wait()
        log.close()


if __name__ == "__main__":
    main()
