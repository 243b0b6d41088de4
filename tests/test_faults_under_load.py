"""Faults with real processes, under load.

FRID runs as `./frid run` runs it (frid_site.runner on a data directory of its own: the embedded
PostgreSQL and Redis, the three workers, beat, gunicorn), while two kiosk clients check faces in
and an HR client enrolls people through the API, all along. Then, one after another:

- the verify worker is killed in the middle of a check,
- the enrollment worker is killed in the middle of a photo,
- the broker is stopped, and started again,
- the embedded PostgreSQL is stopped, and started again.

After each: no enrollment, attempt or attendance event that FRID answered for is missing; every
answer meanwhile was a correct one or a 503 that says what is wrong and to try again (never a
500, never a dropped connection); and FRID answers and embeds again without anyone touching it.
"Mid-task" is an explicit signal, never a guess at timing: the worker's pool process is paused,
its main process is asked which task that process is running, and it is killed only while one is.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest
from celery import Celery

from frid_site import services
from frid_site.outages import DATABASE_DOWN
from identity.enrollment import BROKER_DOWN_REASON
from identity.verification import BUSY
from tests.identity.real_faces import usable
from tests.test_runner import free_port, run_until_ready, stop

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Upper bounds for a cold, busy two-core machine (a worker's start loads TensorFlow), never measurements.
PATIENT_SECONDS = 240
ENROLLED_PEOPLE = 3
# More than the HR client can upload in the whole module, however slow the machine (one a second).
NEWCOMERS = 200
KIOSK_CLIENTS = 2
SECONDS_BETWEEN_UPLOADS = 1.0
CLEAR_ERRORS = (BUSY, DATABASE_DOWN)


# --- FRID, running ------------------------------------------------------------------------------


@dataclass
class Answer:
    what: str  # "verify", "employee", "photo"
    status: int | None  # None: no answer at all (the connection failed)
    data: dict
    error: str = ""
    seconds: float = 0.0  # for the record printed, never asserted


@dataclass
class Frid:
    data_dir: Path
    address: str
    hr_token: str
    kiosk_token: str
    probes: list[Path]  # photos of the enrolled people, never their enrollment photos
    newcomers: list[Path]  # photos HR uploads during the test, one person each
    log: Path
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, what: str, method: str, path: str, token: str, body: bytes = b"",
                content_type: str = "") -> Answer:
        host, port = self.address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {"not_json": raw[:300].decode(errors="replace")}
            answer = Answer(what, response.status, data, seconds=time.monotonic() - started)
        except OSError as error:
            answer = Answer(what, None, {}, repr(error), seconds=time.monotonic() - started)
        finally:
            connection.close()
        with self.lock:
            self.answers.append(answer)
        return answer

    def verify(self, photo: Path) -> Answer:
        body, content_type = multipart({}, [("image", photo.name, photo.read_bytes())])
        return self.request("verify", "POST", "/api/v1/verify/", self.kiosk_token, body, content_type)

    def enroll(self, number: str, photo: Path) -> Answer:
        """An employee (with consent) and one photo, as HR's integration sends them; the photo's answer."""
        person = json.dumps({"employee_number": number, "name": photo.parent.name.replace("_", " "),
                             "consent": True}).encode()
        created = self.request("employee", "POST", "/api/v1/employees/", self.hr_token, person, "application/json")
        if created.status != 201:
            return created
        body, content_type = multipart({}, [("image", photo.name, photo.read_bytes())])
        return self.request("photo", "POST", f"/api/v1/employees/{number}/photos/", self.hr_token, body, content_type)

    def database(self) -> psycopg.Connection:
        info = services.running_postmaster(self.data_dir)
        assert info is not None, "the embedded PostgreSQL is not running"
        return psycopg.connect(host=str(info.socket_dir), port=info.port, user=services.POSTGRES_USER,
                               dbname=services.DATABASE_NAME, autocommit=True)

    def worker(self, hostname_option: str) -> psutil.Process:
        """The running worker whose --hostname is hostname_option (as the runner starts it)."""
        for process in psutil.Process(self.runner.pid).children():
            if hostname_option in process.cmdline():
                return process
        raise AssertionError(f"no worker {hostname_option} is running")

    runner: subprocess.Popen | None = None


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    for name, filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def manage(environment: dict, *arguments: str) -> str:
    """The last line a management command prints (create_kiosk's and create_api_token's token)."""
    done = subprocess.run([sys.executable, "manage.py", *arguments], cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=PATIENT_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def wait_for(condition: Callable[[], bool], what: str, frid: Frid, timeout: float = PATIENT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"Waited {timeout:.0f} s for {what}; FRID's log ends with:\n{frid.log.read_text()[-5000:]}",
                        pytrace=False)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def people(faces_dir: Path) -> tuple[list[tuple[Path, list[Path]]], list[Path]]:
    """LFW people to enroll before the faults (an enrollment photo, probes) and newcomers for HR."""
    enrolled, newcomers = [], []
    for person in sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(enrolled) < ENROLLED_PEOPLE and len(photos) >= 3 and usable(photos[0]):
            enrolled.append((photos[0], [photo for photo in photos[1:3] if usable(photo)]))
        elif len(photos) == 1 and len(newcomers) < NEWCOMERS and usable(photos[0]):
            newcomers.append(photos[0])
        if len(enrolled) == ENROLLED_PEOPLE and len(newcomers) == NEWCOMERS:
            return enrolled, newcomers
    pytest.fail("Not enough usable LFW photos.")


@pytest.fixture(scope="module")
def frid(tmp_path_factory, people) -> Iterator[Frid]:
    directory = tmp_path_factory.mktemp("faults")
    address = f"127.0.0.1:{free_port()}"
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    environment.update(
        FRID_DATA_DIR=str(directory / "var"), FRID_ADDRESS=address, PYTHONUNBUFFERED="1",
        FRID_ADMIN_PASSWORD=uuid.uuid4().hex,
        # The load is one kiosk and one HR account asking far more often than people do.
        FRID_API_VERIFY_RATE="100000/minute", FRID_API_RATE="100000/minute", FRID_LOCKOUT_FAILURES="100000",
    )
    log = directory / "frid.log"
    runner, _ = run_until_ready(environment, log, address)
    try:
        enrolled, newcomers = people
        frid = Frid(
            data_dir=directory / "var", address=address,
            hr_token=manage(environment, "create_api_token", "admin"),
            # The clients send still photos: the liveness challenge is the browser tests' subject.
            kiosk_token=manage(environment, "create_kiosk", "Fault kiosk", "--no-liveness"),
            probes=[probe for _, probes in enrolled for probe in probes], newcomers=list(newcomers), log=log,
            runner=runner,
        )
        accepted = [frid.enroll(f"E{index}", photo) for index, (photo, _) in enumerate(enrolled)]
        assert [answer.status for answer in accepted] == [202] * len(enrolled), accepted
        wait_for(lambda: not pending_templates(frid), "the first employees' photos to be embedded", frid)
        wait_for(lambda: frid.verify(frid.probes[0]).status == 200, "the verify worker to answer", frid)
        # The clients check in with the probes that the base network verifies (most of them).
        frid.probes = [probe for probe in frid.probes if frid.verify(probe).data.get("decision") == "verified"]
        assert frid.probes, "no probe photo was verified"
        yield frid
    finally:
        stop(runner, log)


def pending_templates(frid: Frid) -> list[int]:
    with frid.database() as database:
        return [row[0] for row in database.execute("SELECT id FROM identity_facetemplate WHERE status = 'pending'")]


# --- Load ---------------------------------------------------------------------------------------


class Load:
    """Kiosk clients checking in without pause, and HR enrolling a newcomer every second."""

    def __init__(self, frid: Frid):
        self.frid = frid
        self.running = threading.Event()
        self.threads = [threading.Thread(target=self._kiosk, args=(index,), daemon=True) for index in range(KIOSK_CLIENTS)]
        self.threads.append(threading.Thread(target=self._hr, daemon=True))
        self.first_answer = len(frid.answers)

    def _kiosk(self, index: int) -> None:
        turn = index
        while self.running.is_set():
            self.frid.verify(self.frid.probes[turn % len(self.frid.probes)])
            turn += 1

    def _hr(self) -> None:
        while self.running.is_set() and self.frid.newcomers:
            photo = self.frid.newcomers.pop()
            self.frid.enroll(f"N-{uuid.uuid4().hex[:10]}", photo)
            time.sleep(SECONDS_BETWEEN_UPLOADS)

    def answers(self) -> list[Answer]:
        with self.frid.lock:
            return list(self.frid.answers[self.first_answer:])


@contextmanager
def under_load(frid: Frid) -> Iterator[Load]:
    load = Load(frid)
    load.running.set()
    for thread in load.threads:
        thread.start()
    try:
        yield load
    finally:
        load.running.clear()
        for thread in load.threads:
            thread.join(timeout=PATIENT_SECONDS)


# --- What must hold after every fault -----------------------------------------------------------


def assert_every_answer_was_right_or_a_clear_error(answers: list[Answer]) -> None:
    # What the clients got, for the record (pytest shows it with -rP, and with a failure).
    seen: dict[tuple, list[float]] = {}
    for answer in answers:
        kind = (answer.what, answer.status, answer.data.get("decision") or answer.data.get("detail", "")[:40])
        seen.setdefault(kind, []).append(answer.seconds)
    for (what, status, words), seconds in sorted(seen.items(), key=str):
        print(f"{len(seconds):4d} × {what} {status} {words} (slowest {max(seconds):.1f} s)")
    wrong = [answer for answer in answers
             if answer.status not in (200, 201, 202)
             and not (answer.status == 503 and answer.data.get("detail") in CLEAR_ERRORS)]
    assert not wrong, wrong[:5]


def assert_nothing_answered_is_missing(frid: Frid, answers: list[Answer]) -> None:
    """Every attempt, attendance event and photo FRID answered for is in the database, and every
    accepted photo ends embedded."""
    attempts = {answer.data["attempt_id"]: answer.data["decision"] for answer in answers if "attempt_id" in answer.data}
    events = {answer.data["event_id"] for answer in answers if answer.data.get("event_id")}
    photos = {answer.data["id"] for answer in answers if answer.what == "photo" and answer.status == 202}
    with frid.database() as database:
        stored = dict(database.execute("SELECT id, decision FROM identity_verificationattempt WHERE id = ANY(%s)",
                                       [list(attempts)]).fetchall())
        stored_events = {row[0] for row in database.execute(
            "SELECT id FROM identity_attendanceevent WHERE id = ANY(%s)", [list(events)])}
        stored_photos = {row[0] for row in database.execute(
            "SELECT id FROM identity_facetemplate WHERE id = ANY(%s)", [list(photos)])}
    assert stored == attempts
    assert stored_events == events
    assert stored_photos == photos

    def all_embedded() -> bool:
        with frid.database() as database:
            statuses = dict(database.execute("SELECT id, status FROM identity_facetemplate WHERE id = ANY(%s)",
                                             [list(photos)]).fetchall())
        return all(status == "ready" for status in statuses.values())

    wait_for(all_embedded, "every photo accepted meanwhile to be embedded", frid)


def enrolled_embeddings(frid: Frid) -> dict[int, str]:
    with frid.database() as database:
        return dict(database.execute(
            "SELECT id, embedding::text FROM identity_facetemplate WHERE status = 'ready'").fetchall())


def assert_frid_answers_again(frid: Frid) -> None:
    wait_for(lambda: frid.verify(frid.probes[0]).data.get("decision") == "verified", "a check to be verified again", frid)
    photo = frid.newcomers.pop()
    accepted = frid.enroll(f"A-{uuid.uuid4().hex[:10]}", photo)
    assert accepted.status == 202, accepted
    template = accepted.data["id"]

    def embedded() -> bool:
        with frid.database() as database:
            row = database.execute("SELECT status FROM identity_facetemplate WHERE id = %s", [template]).fetchone()
        return row[0] == "ready"

    wait_for(embedded, "a photo uploaded after the fault to be embedded", frid)


# --- Killing a worker mid-task ------------------------------------------------------------------


def kill_in_the_middle_of_a_task(frid: Frid, hostname_option: str, task_name: str) -> dict:
    """SIGKILL the worker (its whole group) while its pool process runs a task_name; that task."""
    hostname = hostname_option.replace("%h", socket.gethostname())
    control = Celery(broker=services.redis_url(frid.data_dir))
    deadline = time.monotonic() + PATIENT_SECONDS
    try:
        while time.monotonic() < deadline:
            worker = frid.worker(hostname_option)
            pool = worker.children()
            if not pool:
                time.sleep(0.1)
                continue
            for process in pool:
                process.suspend()  # now it cannot finish what it is doing while we ask
            try:
                replies = control.control.inspect(destination=[hostname], timeout=5, limit=1).active() or {}
                running = [task for task in replies.get(hostname, [])
                           if task["name"] == task_name and task["worker_pid"] in {p.pid for p in pool}]
                if running:
                    os.killpg(worker.pid, signal.SIGKILL)
                    return running[0]
            finally:
                for process in pool:
                    try:
                        process.resume()
                    except psutil.NoSuchProcess:
                        pass
            time.sleep(0.05)
    finally:
        control.close()
    pytest.fail(f"{hostname} ran no {task_name} within {PATIENT_SECONDS} s")


def test_a_verify_worker_killed_mid_check_loses_no_attempt_and_is_back_without_a_hand(frid):
    before = enrolled_embeddings(frid)
    with under_load(frid) as load:
        killed = kill_in_the_middle_of_a_task(frid, "verify@%h", "identity.tasks.embed_frames")
        # While the runner starts the worker again and it loads the network, checks are answered busy.
        wait_for(lambda: any(answer.data.get("detail") == BUSY for answer in load.answers()),
                 "a check to be answered busy", frid)
        wait_for(lambda: "runner: verify-worker exited with code -9; starting it again" in frid.log.read_text(),
                 "the runner to start the verify worker again", frid)
        assert_frid_answers_again(frid)
    answers = load.answers()
    assert killed["args"]  # the frames of a real check were in the killed process
    assert_every_answer_was_right_or_a_clear_error(answers)
    assert_nothing_answered_is_missing(frid, answers)
    assert before.items() <= enrolled_embeddings(frid).items()


def test_an_enrollment_worker_killed_mid_photo_loses_no_photo_and_is_back_without_a_hand(frid):
    before = enrolled_embeddings(frid)
    with under_load(frid) as load:
        killed = kill_in_the_middle_of_a_task(frid, "frid@%h", "identity.tasks.embed_templates")
        wait_for(lambda: "runner: worker exited with code -9; starting it again" in frid.log.read_text(),
                 "the runner to start the enrollment worker again", frid)
        assert_frid_answers_again(frid)
    answers = load.answers()
    assert_every_answer_was_right_or_a_clear_error(answers)
    assert_nothing_answered_is_missing(frid, answers)
    (killed_templates,) = killed["args"]
    with frid.database() as database:
        statuses = {row[0] for row in database.execute(
            "SELECT status FROM identity_facetemplate WHERE id = ANY(%s)", [killed_templates])}
    assert statuses == {"ready"}, "the photo whose worker was killed was not embedded after the restart"
    assert before.items() <= enrolled_embeddings(frid).items()


# --- Servers stopped ------------------------------------------------------------------------------


def test_while_the_broker_is_stopped_checks_are_answered_busy_and_photos_kept_then_all_goes_on(frid):
    before = enrolled_embeddings(frid)
    with under_load(frid) as load:
        services.stop_redis(frid.data_dir)
        try:
            check = frid.verify(frid.probes[0])
            photo = frid.enroll(f"B-{uuid.uuid4().hex[:10]}", frid.newcomers.pop())
            kept = frid.request("template", "GET", f"/api/v1/templates/{photo.data['id']}/", frid.hr_token)
            wait_for(lambda: any(answer.data.get("detail") == BUSY for answer in load.answers()),
                     "a kiosk client to be answered busy", frid)
        finally:
            services.start_redis(frid.data_dir)
        assert_frid_answers_again(frid)
    assert (check.status, check.data["detail"]) == (503, BUSY)
    assert photo.status == 202
    assert (kept.data["status"], kept.data["reason"]) == ("pending", BROKER_DOWN_REASON)
    answers = load.answers()
    assert_every_answer_was_right_or_a_clear_error(answers)
    assert_nothing_answered_is_missing(frid, answers)  # the photo kept while it was down included
    assert before.items() <= enrolled_embeddings(frid).items()


def test_while_postgresql_restarts_requests_get_a_clear_503_and_nothing_recorded_is_lost(frid):
    before = enrolled_embeddings(frid)
    with frid.database() as database:
        attempts_before = database.execute("SELECT count(*) FROM identity_verificationattempt").fetchone()[0]
        events_before = database.execute("SELECT count(*) FROM identity_attendanceevent").fetchone()[0]
    with under_load(frid) as load:
        services.stop_postgres(frid.data_dir)
        try:
            check = frid.verify(frid.probes[0])
            photo = frid.enroll(f"P-{uuid.uuid4().hex[:10]}", frid.newcomers.pop())
            # Down until both load clients have met it (an answer each, not a length of time).
            wait_for(lambda: {answer.what for answer in load.answers() if answer.data.get("detail") == DATABASE_DOWN}
                     >= {"verify", "employee"}, "both load clients to be told the database is down", frid)
        finally:
            services.start_postgres(frid.data_dir)
        assert_frid_answers_again(frid)
    assert (check.status, check.data["detail"]) == (503, DATABASE_DOWN)
    assert (photo.status, photo.data["detail"]) == (503, DATABASE_DOWN)
    answers = load.answers()
    assert_every_answer_was_right_or_a_clear_error(answers)
    assert_nothing_answered_is_missing(frid, answers)
    with frid.database() as database:
        assert database.execute("SELECT count(*) FROM identity_verificationattempt").fetchone()[0] >= attempts_before
        assert database.execute("SELECT count(*) FROM identity_attendanceevent").fetchone()[0] >= events_before
    assert before.items() <= enrolled_embeddings(frid).items()
