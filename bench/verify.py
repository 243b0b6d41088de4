"""Benchmark: a kiosk's check over HTTP, idle and during a bulk import, beside dlib's own pipeline.

    .venv/bin/python bench/verify.py [--requests 240] [--bulk-photos 1000] [--gallery 50]

What is timed: one 640x480 JPEG (a real LFW face enlarged to 480x480 and centred on a grey canvas,
quality 90, as a webcam frame) posted to /api/v1/verify/ with a kiosk's token, through the web
server, the verify worker (detect, align, embed) and the pgvector search, until the whole answer is
read. With 1, 4 and 16 concurrent clients (threads on 127.0.0.1; the --requests of a level are
shared between its clients, each looping over its part): p50, p95 and throughput. Then the same
while a bulk import of --bulk-photos LFW photos runs, uploaded as an admin's zip is (a BulkImport
row with the archive, sent to the bulk worker by identity.tasks.send_bulk_import). In the same run,
dlib's own pipeline on the same frame in this process (training.reference: decode, HOG upsampled
once, 5-point shape, compute_face_descriptor), as the ratio of medians.

FRID runs as it does in production, started by its runner (python -m frid_site.runner: embedded
PostgreSQL and Redis, a verify worker, a niced bulk worker, beat, gunicorn) on a data directory of
its own in a temporary folder, with --gallery employees enrolled (one photo each, by
manage.py import_employees) among them the probe's person, enrolled with another photo than the
probe. Everything started here is stopped at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from frid_site import services  # noqa: E402

PYTHON = sys.executable
T = TypeVar("T")
FRAME_SIZE = (640, 480)
FACE_SIZE = 480  # LFW's 250x250 photos enlarged about 2x: a face of about 200 px, as at a kiosk
CLIENT_COUNTS = (1, 4, 16)
# The people: sorted LFW names. The bulk import takes the first photo of every 4th person (as
# bench/bulk_import.py does); the gallery comes from the others with at least two photos.
BULK_EVERY_NTH = 4
DEFAULT_PROBE = "Colin_Powell"
START_TIMEOUT_SECONDS = 300  # migrations, the base model's import and four processes on busy cores
STOP_TIMEOUT_SECONDS = 120
WARM_UP_TIMEOUT_SECONDS = 120
REQUEST_TIMEOUT_SECONDS = 60
IMPORT_TIMEOUT_SECONDS = 1800


# --- The photos -----------------------------------------------------------------------------------


def webcam_frame(photo: Path) -> bytes:
    """The photo enlarged and centred in a grey 640x480 frame, as a JPEG of quality 90."""
    face = Image.open(photo).convert("RGB").resize((FACE_SIZE, FACE_SIZE), Image.BILINEAR)
    frame = Image.new("RGB", FRAME_SIZE, (128, 128, 128))
    frame.paste(face, ((FRAME_SIZE[0] - FACE_SIZE) // 2, (FRAME_SIZE[1] - FACE_SIZE) // 2))
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class People:
    gallery: list[Path]  # one photo per employee enrolled before timing
    probe: Path  # another photo of the first gallery employee
    bulk: list[Path]  # one photo per employee of the bulk import, nobody of the gallery


def choose_people(faces_dir: Path, gallery_size: int, bulk_size: int, probe_person: str) -> People:
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())
    photos = {person.name: sorted(person.glob("*.jpg")) for person in people}
    if len(photos.get(probe_person, [])) < 2:
        raise SystemExit(f"{probe_person} needs at least two photos in {faces_dir / 'lfw'}; choose another --probe.")
    bulk_people = [person.name for person in people[::BULK_EVERY_NTH] if person.name != probe_person]
    others = [name for name in sorted(set(photos) - set(bulk_people) - {probe_person}) if len(photos[name]) >= 2]
    gallery = [probe_person] + others[::max(1, len(others) // gallery_size)][:gallery_size - 1]
    bulk = [photos[name][0] for name in bulk_people[:bulk_size]]
    return People(gallery=[photos[name][0] for name in gallery], probe=photos[probe_person][1], bulk=bulk)


def copy_as_employee_folders(photos: list[Path], folder: Path) -> None:
    for photo in photos:
        (folder / photo.parent.name).mkdir(parents=True)
        shutil.copyfile(photo, folder / photo.parent.name / photo.name)


def zip_as_employee_folders(photos: list[Path], archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:  # JPEGs do not compress
        for photo in photos:
            bundle.write(photo, f"{photo.parent.name}/{photo.name}")


# --- FRID, as the runner starts it ----------------------------------------------------------------


class Frid:
    """The runner on a data directory of its own, and the management commands run against it."""

    def __init__(self, work: Path):
        self.work = work
        self.data_dir = work / "bench-data"
        self.address = f"127.0.0.1:{free_port()}"
        self.log_path = work / "runner.log"
        self.environment = {name: value for name, value in os.environ.items()
                            if name not in ("DATABASE_URL", "CELERY_BROKER_URL", "FRID_ADMIN_USERNAME")}
        self.environment.update(
            FRID_DATA_DIR=str(self.data_dir), FRID_ADDRESS=self.address, FRID_ADMIN_USERNAME="admin",
            FRID_ADMIN_PASSWORD=secrets.token_urlsafe(16), PYTHONUNBUFFERED="1",
        )
        self.runner: subprocess.Popen | None = None
        self.descendants: list = []

    def start(self) -> None:
        with open(self.log_path, "w") as log:
            # A process group of its own: a Ctrl-C here reaches only this script, which stops the
            # runner in order (the runner then stops its children).
            self.runner = subprocess.Popen([PYTHON, "-m", "frid_site.runner"], cwd=PROJECT_ROOT,
                                           env=self.environment, stdout=log, stderr=subprocess.STDOUT,
                                           process_group=0)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while "FRID is running at" not in self.log_path.read_text(errors="replace"):
            if self.runner.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"FRID did not come up; the end of its log:\n{self.log_tail()}")
            time.sleep(1)
        self.descendants = self._children()

    def manage(self, *arguments: str) -> str:
        """A management command run against this FRID; its standard output."""
        completed = subprocess.run([PYTHON, "manage.py", *arguments], cwd=PROJECT_ROOT, env=self.environment,
                                   capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"manage.py {arguments[0]} failed:\n{completed.stdout[-2000:]}{completed.stderr[-3000:]}")
        return completed.stdout

    def shell(self, code: str, **environment: str) -> subprocess.Popen:
        """`manage.py shell -c code` in the background, its standard output readable line by line."""
        return subprocess.Popen([PYTHON, "manage.py", "shell", "--no-imports", "-c", code], cwd=PROJECT_ROOT,
                                env={**self.environment, **environment}, stdout=subprocess.PIPE, text=True)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGINT to the runner, as Ctrl-C would; whatever is left after the grace period is killed."""
        if self.runner is not None and self.runner.poll() is None:
            self.descendants = self.descendants or self._children()
            self.runner.send_signal(signal.SIGINT)
            try:
                self.runner.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                print("FRID's runner did not stop in time; killing what it started", file=sys.stderr)
                self.runner.kill()
                self.runner.wait()
        for process in self.descendants:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
            except psutil.NoSuchProcess:
                pass
        if self.data_dir.exists():
            services.stop_all(self.data_dir)  # a runner that died early leaves its servers running

    def _children(self) -> list:
        try:
            return psutil.Process(self.runner.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- The kiosk's requests -------------------------------------------------------------------------


class Kiosk:
    """POSTs of one frame to /api/v1/verify/, as the kiosk page sends them."""

    def __init__(self, address: str, token: str, frame: bytes):
        self.host, port = address.split(":")
        self.port = int(port)
        boundary = f"----frid-bench-{secrets.token_hex(8)}"
        self.body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"frame.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n".encode() + frame + f"\r\n--{boundary}--\r\n".encode()
        )
        self.headers = {"Authorization": f"Token {token}", "Content-Type": f"multipart/form-data; boundary={boundary}",
                        "Content-Length": str(len(self.body)), "Accept": "application/json"}

    def verify(self) -> tuple[float, int, str]:
        """(seconds, HTTP status, decision) of one check, timed from connecting to the answer's last byte."""
        start = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            connection.request("POST", "/api/v1/verify/", body=self.body, headers=self.headers)
            response = connection.getresponse()
            payload = response.read()
            seconds = time.perf_counter() - start
        except (OSError, http.client.HTTPException) as error:
            return time.perf_counter() - start, 0, type(error).__name__
        finally:
            connection.close()
        try:
            decision = json.loads(payload).get("decision") or "?"
        except ValueError:
            decision = "not JSON"
        return seconds, response.status, decision


@dataclass
class Level:
    phase: str
    clients: int
    seconds: list[float] = field(default_factory=list)
    answers: dict[tuple[int, str], int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    note: str = ""

    @property
    def requests(self) -> int:
        return len(self.seconds)

    @property
    def verified(self) -> int:
        return self.answers.get((200, "verified"), 0)

    @property
    def errors(self) -> int:
        """Answers that are not a decision on the face: HTTP errors, busy, rejected, refused."""
        return sum(count for (status, decision), count in self.answers.items()
                   if (status, decision) not in ((200, "verified"), (200, "not_recognised")))

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    @property
    def p95_ms(self) -> float:
        return 1000 * p95(self.seconds)

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_seconds


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def run_level(kiosk: Kiosk, phase: str, clients: int, requests: int) -> Level:
    """`clients` threads, each sending its share of `requests` checks one after another."""
    level = Level(phase, clients)
    each = max(1, requests // clients)
    lock = threading.Lock()
    start_together = threading.Barrier(clients + 1)

    def client() -> None:
        start_together.wait()
        for _ in range(each):
            seconds, status, decision = kiosk.verify()
            with lock:
                level.seconds.append(seconds)
                level.answers[status, decision] = level.answers.get((status, decision), 0) + 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_together.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    level.wall_seconds = time.perf_counter() - start
    return level


def warm_up(kiosk: Kiosk) -> None:
    """Until the verify worker answers "verified" (its network loaded), then a few more checks so
    that both web server processes have served one."""
    deadline = time.monotonic() + WARM_UP_TIMEOUT_SECONDS
    answers = []
    while True:
        _, status, decision = kiosk.verify()
        answers.append((status, decision))
        if (status, decision) == (200, "verified"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"FRID never answered 200 verified to the probe; its answers: {answers[-10:]}. "
                               "If it answers not_recognised, choose another --probe.")
        time.sleep(0.5)
    run_level(kiosk, "warm-up", 2, 10)


# --- The bulk import, as an admin's upload --------------------------------------------------------

# Run by `manage.py shell -c` against the benchmark's FRID: what the admin's upload does
# (BulkImportAdmin.save_model), then the import's progress once a second until it ends.
START_AND_FOLLOW_IMPORT = """
import json, os, time
from django.contrib.auth import get_user_model
from django.core.files import File
from identity import tasks
from identity.models import BulkImport

with open(os.environ["FRID_BENCH_ARCHIVE"], "rb") as stream:
    bulk = BulkImport(created_by=get_user_model().objects.get_by_natural_key("admin"))
    bulk.archive.save("bench-import.zip", File(stream), save=True)
tasks.send_bulk_import(bulk.pk)
while True:
    bulk.refresh_from_db()
    print(json.dumps({"status": bulk.status, "processed": bulk.processed_photos, "total": bulk.total_photos,
                      "enrolled": bulk.enrolled_photos, "error": bulk.error}), flush=True)
    if bulk.status in ("done", "failed"):
        break
    time.sleep(1)
"""


class BulkImportWatch:
    """The bulk import started in the benchmark's FRID, its latest progress kept up to date."""

    def __init__(self, frid: Frid, archive: Path):
        self.process = frid.shell(START_AND_FOLLOW_IMPORT, FRID_BENCH_ARCHIVE=str(archive))
        self.progress: dict = {}
        self.started = time.perf_counter()
        self.running_since: float | None = None
        self.ended: float | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                progress = json.loads(line)
            except ValueError:
                continue
            if progress["status"] == "running" and progress["processed"] > 0 and self.running_since is None:
                self.running_since = time.perf_counter()
            if progress["status"] in ("done", "failed") and self.ended is None:
                self.ended = time.perf_counter()
            self.progress = progress

    @property
    def embedding(self) -> bool:
        """Running, and past unpacking and its network's load: photos are being processed."""
        return self.running_since is not None and self.ended is None

    def wait_until_embedding(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.embedding:
            if self.ended is not None or self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The bulk import did not get going: {self.progress}")
            time.sleep(0.2)

    def wait_until_done(self) -> None:
        self.process.wait(IMPORT_TIMEOUT_SECONDS)
        self.reader.join(10)
        if self.progress.get("status") != "done":
            raise RuntimeError(f"The bulk import did not finish: {self.progress}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


# --- dlib's own pipeline, in this process ---------------------------------------------------------


def time_dlib(frame: bytes, repeat: int) -> tuple[list[float], int]:
    """Seconds per frame of dlib's pipeline from the JPEG's bytes to the descriptor, and faces found."""
    from training import faces, reference

    reference._models()  # loaded before the clock starts, as a worker would have it
    reference.dlib_descriptor(faces.decode_image(frame))
    timings, found = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        descriptor = reference.dlib_descriptor(faces.decode_image(frame))
        timings.append(time.perf_counter() - start)
        found += descriptor is not None
    return timings, found


# --- The run --------------------------------------------------------------------------------------


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _stop_as_on_ctrl_c(signal_number: int, frame: object) -> None:
    raise KeyboardInterrupt()  # SIGTERM cleans up as Ctrl-C does: through run_bench's finally


def run_bench(work_prefix: str, keep: bool, body: Callable[[Path, Frid], T], *,
              stop_first: Callable[[], None] | None = None, interrupted: T | None = None) -> T | None:
    """body(work, frid) on a temporary folder of its own and a Frid on it (not started: body starts
    it), and whatever happens (the end, an error, Ctrl-C or SIGTERM) everything stopped: stop_first()
    (what body started beside FRID), then FRID, then the folder removed unless keep. An error prints
    the end of FRID's log and goes on up; Ctrl-C answers `interrupted`. Shared by the HTTP
    benchmarks: this script and bench/load.py."""
    signal.signal(signal.SIGTERM, _stop_as_on_ctrl_c)
    work = Path(tempfile.mkdtemp(prefix=work_prefix))
    frid = Frid(work)
    try:
        return body(work, frid)
    except KeyboardInterrupt:
        print("Interrupted; stopping FRID", file=sys.stderr)
        return interrupted
    except Exception:
        print(f"The end of FRID's log:\n{frid.log_tail()}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stop_first is not None:
            stop_first()
        frid.stop()
        if keep:
            print(f"Kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=240,
                        help="checks per level, shared between its clients (default 240)")
    parser.add_argument("--bulk-photos", type=int, default=1000)
    parser.add_argument("--gallery", type=int, default=50, help="employees enrolled before timing (default 50)")
    parser.add_argument("--dlib-repeat", type=int, default=40, help="dlib runs on the frame (default 40)")
    parser.add_argument("--probe", default=DEFAULT_PROBE, help=f"the LFW person at the kiosk (default {DEFAULT_PROBE})")
    parser.add_argument("--faces-dir", type=Path, default=Path(
        os.environ.get("FRID_FACES_DIR", PROJECT_ROOT.parent / "shared" / "faces")))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (FRID's logs) at the end")
    arguments = parser.parse_args()

    watches: list[BulkImportWatch] = []

    def stop_watches() -> None:
        for watch in watches:
            watch.stop()

    run_bench("frid-bench-verify-", arguments.keep, lambda work, frid: run(arguments, work, frid, watches),
              stop_first=stop_watches)


def run(arguments, work: Path, frid: Frid, watches: list[BulkImportWatch]) -> None:
    people = choose_people(arguments.faces_dir, arguments.gallery, arguments.bulk_photos, arguments.probe)
    copy_as_employee_folders(people.gallery, work / "gallery")
    zip_as_employee_folders(people.bulk, work / "bulk.zip")
    frame = webcam_frame(people.probe)
    load_before = load_average()

    print(f"Starting FRID on {frid.data_dir} ...", file=sys.stderr, flush=True)
    frid.start()
    frid.manage("import_employees", str(work / "gallery"), "--consent-recorded-by", "admin")
    token = frid.manage("create_kiosk", "bench", "--no-liveness").strip().splitlines()[-1]
    kiosk = Kiosk(frid.address, token, frame)
    warm_up(kiosk)

    levels = []
    for clients in CLIENT_COUNTS:
        print(f"idle, {clients} clients ...", file=sys.stderr, flush=True)
        levels.append(run_level(kiosk, "idle", clients, arguments.requests))
    print("dlib ...", file=sys.stderr, flush=True)
    dlib_seconds, dlib_faces = time_dlib(frame, arguments.dlib_repeat)

    watch = BulkImportWatch(frid, work / "bulk.zip")
    watches.append(watch)
    watch.wait_until_embedding()
    for clients in CLIENT_COUNTS:
        print(f"during the import, {clients} clients ...", file=sys.stderr, flush=True)
        level = run_level(kiosk, "during import", clients, arguments.requests)
        if not watch.embedding:
            level.note = "the import ended during this level"
        levels.append(level)
    import_progress_after_timing = dict(watch.progress)
    watch.wait_until_done()
    import_seconds = watch.ended - watch.started
    print_report(people, levels, dlib_seconds, dlib_faces, load_before,
                 import_progress_after_timing, watch.progress, import_seconds)


def print_report(people: People, levels: list[Level], dlib_seconds: list[float], dlib_faces: int,
                 load_before: str, import_when_timing_ended: dict, import_at_end: dict, import_seconds: float) -> None:
    print(f"FRID /api/v1/verify/ over HTTP: one 640x480 JPEG of {people.probe.stem}, kiosk 1:N among "
          f"{len(people.gallery)} employees; {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average before the run {load_before}")
    print(f"{'phase':14} {'clients':>7} {'requests':>8} {'errors':>6} {'verified':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'req/s':>6}")
    for level in levels:
        print(f"{level.phase:14} {level.clients:7d} {level.requests:8d} {level.errors:6d} {level.verified:8d} "
              f"{level.p50_ms:8.1f} {level.p95_ms:8.1f} {level.throughput:6.1f}" + (f"  ({level.note})" if level.note else ""))
    dlib_p50 = 1000 * statistics.median(dlib_seconds)
    dlib_p95 = 1000 * p95(dlib_seconds)
    print(f"dlib in this process on the same frame (decode, HOG upsampled once, 5 points, compute_face_descriptor): "
          f"p50 {dlib_p50:.1f} ms, p95 {dlib_p95:.1f} ms, a face in {dlib_faces} of {len(dlib_seconds)}")
    idle = {level.clients: level for level in levels if level.phase == "idle"}
    loaded = {level.clients: level for level in levels if level.phase == "during import"}
    one_client = idle[1].p50_ms
    print(f"FRID p50 (1 client, idle, over HTTP) / dlib p50 (in-process): {one_client / dlib_p50:.2f}")
    print(f"Goal p50 <= 80 ms with one client: {one_client:.1f} ms, {'met' if one_client <= 80 else 'NOT met'}")
    ratios = {clients: loaded[clients].p50_ms / idle[clients].p50_ms for clients in loaded}
    print("Goal p50 during the import <= 2x idle: "
          + ", ".join(f"{clients} client{'s' if clients > 1 else ''} {ratio:.2f}x" for clients, ratio in ratios.items())
          + f": {'met' if all(ratio <= 2 for ratio in ratios.values()) else 'NOT met'}")
    print(f"Bulk import: {import_at_end['total']} photos, {import_at_end['enrolled']} enrolled, "
          f"{import_seconds:.0f} s from upload to done; {import_when_timing_ended['processed']} processed when "
          f"the timing during it ended; load average at the end {load_average()}")


if __name__ == "__main__":
    main()
