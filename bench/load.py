"""Benchmark: 16 kiosks checking at once for 60 s with active liveness on, beside the same with it off.

    .venv/bin/python bench/load.py [--clients 16] [--seconds 60] [--gallery 50] [--person NAME]

What is timed: each client is a kiosk of its own (a token of its own, so that FRID_API_VERIFY_RATE,
60 checks a minute per kiosk by default, and the lockout, 5 failures in 3 minutes per kiosk, count
each client apart; neither is changed here). For --seconds it loops as the kiosk page does: POST
/api/v1/verify/challenge/, then POST /api/v1/verify/ with the frames and, where a challenge was
issued, its nonce in "challenge"; the next check starts as soon as an answer is read (no time spent
at the camera: a harder load than people make). Every call is timed from connecting to the answer's
last byte; the whole check is both.

- Liveness on (kiosks as registered: liveness required): the challenge's random steps are followed
  with real LFW photos of one person, as a camera frame each (bench/verify.py's webcam_frame: the
  photo enlarged to 480x480 on a grey 640x480 canvas, JPEG 90). LFW has no videos, so a movement is
  two photos of that person whose head pose (estimated by the active version's live engine from the
  landmarks, as the verify worker does) moves the asked way: for "left, then up" photos P0, P1, P2
  with the yaw rising from P0 to P1 and the pitch falling from P1 to P2 by the step's degrees plus a
  margin, sent as P0 x3, P1 x3, P2 x4 (10 frames, as the page takes). The photos of every challenge
  are chosen before timing, and each of the six challenges is checked once to be "verified".
- Liveness off (the same number of kiosks with their liveness setting off): the challenge call
  answers {"required": false} and the page's usual 3-frame burst follows (one frontal photo of the
  same person, three times).

A check counts as an error unless both calls answer 2xx and the verify answer is "verified" with
the enrolled person (and liveness_passed true where a challenge was issued): a busy 503, an expired
or refused challenge, a rejected movement, a throttled 429, a lockout (a "locked_out" 429, which must
never happen here) or a connection error. FRID runs as `./frid run` starts it (bench/verify.py's Frid:
the runner, embedded PostgreSQL and Redis, the verify worker, gunicorn with two processes) on a
temporary data directory, with --gallery employees enrolled by manage.py import_employees (one photo
each; the person at the kiosks with a frontal photo that is never sent as a frame). Everything
started here is stopped at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # already first when run as a script; bench/ is not a package

import verify as http_bench  # noqa: E402  (bench/verify.py: FRID's runner, frames, the gallery)

PROJECT_ROOT = http_bench.PROJECT_ROOT
DEFAULT_CLIENTS = 16
DEFAULT_SECONDS = 60.0
PHOTOS_LOOKED_AT = 40  # per candidate person, as camera frames through the live engine
CANDIDATE_PEOPLE = 6  # the LFW people with the most photos, looked at in that order
# Each movement in the frames exceeds the step's degrees by this much (the server measures the same
# bytes with the same engine, so this only absorbs rounding).
MARGIN_DEGREES = 3.0
# Every two photos of a check, and each of them to the enrolled photo, this far inside the 1:1
# threshold (tests/identity/turning_faces.py uses the same share): plainly the same person.
SAME_PERSON_SHARE = 0.85
FRONTAL_DEGREES = 12.0  # the enrollment photo and the no-liveness frame: yaw and pitch within this
VALIDATION_ATTEMPTS = 80  # challenges asked before timing until each of the six was verified once
ERROR_PAUSE_SECONDS = 1.0  # a client that got an error waits this long (no tight loop on a refusal)
REQUEST_TIMEOUT_SECONDS = 120

# --- Run in FRID (manage.py shell): what the verify worker measures, and the kiosks ---------------

# The liveness rules and the active version's 1:1 threshold, then, for each camera frame, its face's
# pose and live embedding (the verify worker's engine and figures), and for each raw photo whose frame
# is nearly frontal, whether enrollment would accept it (the non-live engine) and its embedding there.
ANALYSE_PHOTOS = """
import json, os
from pathlib import Path
from identity import liveness
from training.models import ModelVersion

version = ModelVersion.objects.active()
print(json.dumps({
    "threshold": version.threshold,
    "steps": {name: {"axis": step.axis, "sign": step.sign, "degrees": step.degrees}
              for name, step in liveness.STEPS.items()},
    "challenges": [list(steps) for steps in liveness.CHALLENGES],
    "frames": liveness.FRAMES, "min_frames": liveness.MIN_FRAMES, "max_frames": liveness.MAX_FRAMES,
}), flush=True)
live, enrollment = version.engine(live=True), version.engine()
items = json.loads(Path(os.environ["FRID_BENCH_PHOTOS"]).read_text())
frontal = float(os.environ["FRID_BENCH_FRONTAL"])
for start in range(0, len(items), 10):
    batch = items[start:start + 10]
    analyses = live.analyse_photos([Path(item["frame"]).read_bytes() for item in batch])
    for item, analysis in zip(batch, analyses):
        figures = analysis.as_json()
        answer = {"photo": item["photo"], "problem": figures["problem"], "quality": figures["quality"],
                  "embedding": figures["embedding"], "enrollment": None}
        quality = figures["quality"]
        if figures["embedding"] is not None and abs(quality["yaw"]) <= frontal and abs(quality["pitch"]) <= frontal:
            enrolled = enrollment.analyse_photos([Path(item["photo"]).read_bytes()])[0]
            if enrolled.embedding is not None:
                answer["enrollment"] = [float(value) for value in enrolled.embedding]
        print(json.dumps(answer), flush=True)
"""

# Kiosks as the admin registers them (create_kiosk has no liveness option; the admin's box does
# this), their tokens printed once as JSON.
CREATE_KIOSKS = """
import json, os
from identity.models import Kiosk

tokens = {}
for name, liveness_required in json.loads(os.environ["FRID_BENCH_KIOSKS"]):
    kiosk = Kiosk(name=name, location="bench/load.py", liveness_required=liveness_required)
    tokens[name] = kiosk.new_token()
    kiosk.save()
print(json.dumps(tokens))
"""

# What the audit recorded for the timed kiosks: decisions, liveness results and lockouts.
AUDIT_OF_KIOSKS = """
import json, os
from django.db.models import Count
from identity.models import Kiosk, VerificationAttempt

names = json.loads(os.environ["FRID_BENCH_KIOSK_NAMES"])
ids = list(Kiosk.objects.filter(name__in=names).values_list("pk", flat=True))
rows = (VerificationAttempt.objects.filter(kiosk_id__in=ids)
        .values("kiosk__liveness_required", "decision", "liveness_passed").annotate(count=Count("pk")))
print(json.dumps([{"liveness": row["kiosk__liveness_required"], "decision": row["decision"],
                   "liveness_passed": row["liveness_passed"], "count": row["count"]} for row in rows]))
"""


def shell_lines(frid: http_bench.Frid, code: str, **environment: str) -> list[dict]:
    """The JSON lines a `manage.py shell -c` in the benchmark's FRID printed."""
    process = frid.shell(code, TF_CPP_MIN_LOG_LEVEL="2", **environment)
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"manage.py shell failed (exit {process.returncode}); its output:\n{output[-3000:]}")
    lines = []
    for line in output.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # anything else the shell printed
        if isinstance(value, (dict, list)):
            lines.append(value)
    return lines


# --- The frames that follow each challenge --------------------------------------------------------


@dataclass
class Shot:
    """One LFW photo as a camera frame, as the live engine measured it."""

    photo: Path
    frame: bytes
    yaw: float
    pitch: float
    embedding: numpy.ndarray
    enrollment: numpy.ndarray | None  # the embedding enrollment gives the raw photo, if it accepts it

    def angle(self, axis: str) -> float:
        return self.yaw if axis == "yaw" else self.pitch


@dataclass
class Rules:
    threshold: float
    steps: dict[str, dict]
    challenges: list[tuple[str, ...]]
    frames: int


@dataclass
class Plan:
    """The person at the kiosks: the photo enrolled, three photos per challenge, the frontal frame."""

    person: str
    enrolled: Shot
    sequences: dict[tuple[str, ...], tuple[Shot, Shot, Shot]]
    frontal: Shot
    slack: float  # the smallest excess of a movement over its step's degrees, over all challenges

    def frames_for(self, steps: tuple[str, ...], count: int) -> list[bytes]:
        first, middle, last = self.sequences[steps]
        each = count // 3
        return [first.frame] * each + [middle.frame] * each + [last.frame] * (count - 2 * each)


def analyse_candidates(frid: http_bench.Frid, work: Path, people: list[Path]) -> tuple[Rules, dict[str, list[Shot]]]:
    frames_dir = work / "frames"
    items, frames = [], {}
    for person in people:
        (frames_dir / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:PHOTOS_LOOKED_AT]:
            frame = http_bench.webcam_frame(photo)
            path = frames_dir / person.name / photo.name
            path.write_bytes(frame)
            frames[str(photo)] = frame
            items.append({"photo": str(photo), "frame": str(path)})
    (work / "photos.json").write_text(json.dumps(items))
    lines = shell_lines(frid, ANALYSE_PHOTOS, FRID_BENCH_PHOTOS=str(work / "photos.json"),
                        FRID_BENCH_FRONTAL=str(FRONTAL_DEGREES))
    header, analysed = lines[0], lines[1:]
    if len(analysed) != len(items):
        raise RuntimeError(f"The analysis answered {len(analysed)} of {len(items)} photos.")
    rules = Rules(header["threshold"], header["steps"], [tuple(steps) for steps in header["challenges"]],
                  min(max(header["frames"], header["min_frames"]), header["max_frames"]))
    shots: dict[str, list[Shot]] = {person.name: [] for person in people}
    for answer in analysed:
        if answer["embedding"] is None:
            continue  # no usable face in the frame
        photo = Path(answer["photo"])
        enrollment = numpy.array(answer["enrollment"]) if answer["enrollment"] else None
        shots[photo.parent.name].append(Shot(photo, frames[answer["photo"]], answer["quality"]["yaw"],
                                             answer["quality"]["pitch"], numpy.array(answer["embedding"]), enrollment))
    return rules, shots


def plan_person(person: str, shots: list[Shot], rules: Rules) -> Plan | None:
    """The best plan for this person: for an enrollable frontal photo, each challenge's three
    photos with the largest smallest excess of movement; None if some challenge cannot be followed."""
    bound = SAME_PERSON_SHARE * rules.threshold
    if len(shots) < 4:
        return None
    embeddings = numpy.stack([shot.embedding for shot in shots])
    close = numpy.linalg.norm(embeddings[:, None, :] - embeddings[None, :, :], axis=-1) <= bound
    # slack[name][i, j]: how far the pose moved from photo i to photo j the step's way, past its degrees
    slack = {}
    for name, step in rules.steps.items():
        angles = numpy.array([shot.angle(step["axis"]) for shot in shots])
        slack[name] = step["sign"] * (angles[None, :] - angles[:, None]) - step["degrees"]
    best = None
    for index, enrolled in enumerate(shots):
        if enrolled.enrollment is None:
            continue
        usable = (numpy.linalg.norm(embeddings - enrolled.enrollment, axis=-1) <= bound)
        usable[index] = False  # the enrolled photo itself is never a frame
        if usable.sum() < 3:
            continue
        mask = usable[:, None, None] & usable[None, :, None] & usable[None, None, :]
        mask &= close[:, :, None] & close[None, :, :] & close[:, None, :]
        sequences, smallest = {}, numpy.inf
        for steps in rules.challenges:
            first, second = steps
            score = numpy.minimum(slack[first][:, :, None], slack[second][None, :, :])
            score = numpy.where(mask, score, -numpy.inf)
            i, j, k = numpy.unravel_index(int(numpy.argmax(score)), score.shape)
            if score[i, j, k] < MARGIN_DEGREES:
                break
            sequences[steps] = (shots[i], shots[j], shots[k])
            smallest = min(smallest, float(score[i, j, k]))
        else:
            frontal = min((shot for shot, ok in zip(shots, usable) if ok), key=lambda shot: abs(shot.yaw) + abs(shot.pitch))
            if best is None or smallest > best.slack:
                best = Plan(person, enrolled, sequences, frontal, smallest)
    return best


def choose_plan(frid: http_bench.Frid, work: Path, faces_dir: Path, person: str | None) -> tuple[Rules, Plan]:
    folders = sorted((path for path in (faces_dir / "lfw").iterdir() if path.is_dir()),
                     key=lambda path: (-len(list(path.glob("*.jpg"))), path.name))
    candidates = [faces_dir / "lfw" / person] if person else folders[:CANDIDATE_PEOPLE]
    rules, shots = analyse_candidates(frid, work, candidates)
    for candidate in candidates:
        plan = plan_person(candidate.name, shots[candidate.name], rules)
        if plan is not None:
            return rules, plan
    raise SystemExit(f"None of {', '.join(path.name for path in candidates)} has photos that follow every challenge "
                     f"({MARGIN_DEGREES}° past each step) within the same-person bound; try --person.")


# --- The kiosks' calls ----------------------------------------------------------------------------


@dataclass
class Answer:
    seconds: float
    status: int  # 0: no HTTP answer
    body: dict
    error: str = ""


class KioskClient:
    """One kiosk's two calls, as verify.js makes them."""

    def __init__(self, address: str, token: str):
        self.host, port = address.split(":")
        self.port = int(port)
        self.token = token

    def challenge(self) -> Answer:
        return self._post("/api/v1/verify/challenge/", b"", {})

    def verify(self, frames: list[bytes], nonce: str | None) -> Answer:
        boundary = f"----frid-load-{secrets.token_hex(8)}"
        parts = []
        if nonce:
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"challenge\"\r\n\r\n{nonce}\r\n".encode())
        for number, frame in enumerate(frames, start=1):
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"frame{number}.jpg\"\r\n"
                         f"Content-Type: image/jpeg\r\n\r\n".encode() + frame + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self._post("/api/v1/verify/", b"".join(parts),
                          {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def _post(self, path: str, body: bytes, headers: dict) -> Answer:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json",
                   "Content-Length": str(len(body)), **headers}
        start = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            seconds = time.perf_counter() - start
        except (OSError, http.client.HTTPException) as error:
            return Answer(time.perf_counter() - start, 0, {}, type(error).__name__)
        finally:
            connection.close()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = {"detail": "not JSON"}
        return Answer(seconds, response.status, answer if isinstance(answer, dict) else {"detail": str(answer)})


@dataclass
class Check:
    challenge: Answer
    verify: Answer | None
    error: str  # empty when the check went as expected

    @property
    def seconds(self) -> float:
        return self.challenge.seconds + (self.verify.seconds if self.verify else 0.0)


def one_check(client: KioskClient, plan: Plan, rules: Rules, liveness: bool) -> Check:
    """Challenge, frames, answer; what went wrong, in a few words, if anything did."""
    challenge = client.challenge()
    if challenge.status == 0:
        return Check(challenge, None, f"challenge: {challenge.error}")
    body = challenge.body
    if liveness:
        steps = tuple(body.get("steps") or ())
        if challenge.status != 201 or not body.get("required") or steps not in plan.sequences:
            return Check(challenge, None, f"challenge: {challenge.status} {describe(body)}")
        frames = plan.frames_for(steps, int(body.get("frames") or rules.frames))
        nonce = body["challenge"]
    else:
        if challenge.status != 200 or body.get("required") is not False:
            return Check(challenge, None, f"challenge: {challenge.status} {describe(body)}")
        frames, nonce = [plan.frontal.frame] * 3, None
    answer = client.verify(frames, nonce)
    if answer.status == 0:
        return Check(challenge, answer, f"verify: {answer.error}")
    body = answer.body
    employee = body.get("employee") or {}
    expected = (answer.status == 200 and body.get("decision") == "verified"
                and employee.get("employee_number") == plan.person
                and (body.get("liveness_passed") is True if liveness else True))
    return Check(challenge, answer, "" if expected else f"verify: {answer.status} {describe(body)}")


def describe(body: dict) -> str:
    words = body.get("decision") or ""
    reason = body.get("detail") or body.get("reason") or ""
    if body.get("employee"):
        words += f" as {body['employee'].get('employee_number')}"
    return f"{words}: {reason[:90]}" if reason else words or json.dumps(body)[:90]


# --- The levels -----------------------------------------------------------------------------------


@dataclass
class Level:
    phase: str
    clients: int
    frames: int  # per check
    checks: list[Check] = field(default_factory=list)
    per_kiosk: Counter = field(default_factory=Counter)  # checks made by each client
    wall_seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(1 for check in self.checks if check.error)

    @property
    def verified(self) -> int:
        return len(self.checks) - self.errors

    @property
    def locked_out(self) -> int:
        return sum(1 for check in self.checks for answer in (check.challenge, check.verify)
                   if answer is not None and answer.body.get("decision") == "locked_out")

    def timings(self, part: str) -> list[float]:
        """Seconds of every call that got an HTTP answer ("whole": both calls of a check)."""
        if part == "challenge":
            return [check.challenge.seconds for check in self.checks if check.challenge.status]
        if part == "verify":
            return [check.verify.seconds for check in self.checks if check.verify and check.verify.status]
        return [check.seconds for check in self.checks if check.verify and check.verify.status]

    @property
    def throughput(self) -> float:
        return len(self.checks) / self.wall_seconds


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 in milliseconds (NaN when nothing was measured)."""
    if not values:
        return (float("nan"),) * 3
    if len(values) == 1:
        return (1000 * values[0],) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return 1000 * statistics.median(values), 1000 * cuts[94], 1000 * cuts[98]


def run_level(phase: str, clients: list[KioskClient], plan: Plan, rules: Rules, liveness: bool, seconds: float) -> Level:
    """Each client checking one check after another until ``seconds`` have passed (the checks
    under way then are finished and counted)."""
    level = Level(phase, len(clients), rules.frames if liveness else 3)
    lock = threading.Lock()
    start_together = threading.Barrier(len(clients) + 1)
    deadline = [0.0]

    def loop(number: int, client: KioskClient) -> None:
        start_together.wait()
        while time.perf_counter() < deadline[0]:
            check = one_check(client, plan, rules, liveness)
            with lock:
                level.checks.append(check)
                level.per_kiosk[number] += 1
            if check.error:
                time.sleep(ERROR_PAUSE_SECONDS)

    threads = [threading.Thread(target=loop, args=(number, client), daemon=True) for number, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    start_together.wait()
    for thread in threads:
        thread.join()
    level.wall_seconds = time.perf_counter() - start
    return level


def validate(client: KioskClient, plan: Plan, rules: Rules) -> None:
    """Before timing, on a kiosk of its own: each challenge the server can draw, followed once, verified."""
    seen: set[tuple[str, ...]] = set()
    for _ in range(VALIDATION_ATTEMPTS):
        check = one_check(client, plan, rules, liveness=True)
        if check.error:
            raise RuntimeError(f"A challenge's frames were not verified before timing: {check.error} "
                               f"(asked {check.challenge.body.get('steps')}); try another --person.")
        seen.add(tuple(check.challenge.body["steps"]))
        if seen == set(plan.sequences):
            return
    raise RuntimeError(f"Only {sorted(seen)} of the challenges were drawn in {VALIDATION_ATTEMPTS} tries.")


# --- The run --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help=f"kiosks at once (default {DEFAULT_CLIENTS})")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of each level (default 60)")
    parser.add_argument("--gallery", type=int, default=50, help="employees enrolled before timing (default 50)")
    parser.add_argument("--person", help=f"the LFW person at the kiosks (default: the first of the {CANDIDATE_PEOPLE} "
                                         "with the most photos whose photos follow every challenge)")
    parser.add_argument("--faces-dir", type=Path, default=Path(
        os.environ.get("FRID_FACES_DIR", PROJECT_ROOT.parent / "shared" / "faces")))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (FRID's logs) at the end")
    arguments = parser.parse_args()

    return http_bench.run_bench("frid-bench-load-", arguments.keep, lambda work, frid: run(arguments, work, frid),
                                interrupted=130)


def run(arguments, work: Path, frid: http_bench.Frid) -> int:
    load_before = http_bench.load_average()
    print(f"Starting FRID on {frid.data_dir} ...", file=sys.stderr, flush=True)
    frid.start()
    print("Measuring the candidates' photos with the live engine ...", file=sys.stderr, flush=True)
    rules, plan = choose_plan(frid, work, arguments.faces_dir, arguments.person)
    people = http_bench.choose_people(arguments.faces_dir, arguments.gallery, 0, plan.person)
    http_bench.copy_as_employee_folders([plan.enrolled.photo] + people.gallery[1:], work / "gallery")
    print(f"Enrolling {arguments.gallery} employees ...", file=sys.stderr, flush=True)
    frid.manage("import_employees", str(work / "gallery"), "--consent-recorded-by", "admin")

    kiosks = ([(f"load-on-{number:02d}", True) for number in range(arguments.clients)]
              + [(f"load-off-{number:02d}", False) for number in range(arguments.clients)]
              + [("load-warm-up-on", True), ("load-warm-up-off", False)])
    tokens = shell_lines(frid, CREATE_KIOSKS, FRID_BENCH_KIOSKS=json.dumps(kiosks))[-1]
    client = lambda name: KioskClient(frid.address, tokens[name])  # noqa: E731
    print("Warming up and following each challenge once ...", file=sys.stderr, flush=True)
    http_bench.warm_up(http_bench.Kiosk(frid.address, tokens["load-warm-up-off"], plan.frontal.frame))
    validate(client("load-warm-up-on"), plan, rules)

    levels = []
    for phase, liveness in (("liveness on", True), ("liveness off", False)):
        print(f"{phase}, {arguments.clients} clients, {arguments.seconds:.0f} s ...", file=sys.stderr, flush=True)
        names = [name for name, required in kiosks[:2 * arguments.clients] if required == liveness]
        levels.append(run_level(phase, [client(name) for name in names], plan, rules, liveness, arguments.seconds))
    audit = shell_lines(frid, AUDIT_OF_KIOSKS, FRID_BENCH_KIOSK_NAMES=json.dumps(
        [name for name, _ in kiosks[:2 * arguments.clients]]))[-1]
    print_report(arguments, plan, rules, levels, audit, load_before)
    return 1 if any(level.errors for level in levels) else 0


def print_report(arguments, plan: Plan, rules: Rules, levels: list[Level], audit: list[dict], load_before: str) -> None:
    gallery = arguments.gallery
    print(f"FRID over HTTP, {arguments.clients} kiosks at once (a token each), {arguments.seconds:.0f} s per level; "
          f"{plan.person} at every kiosk (enrolled with {plan.enrolled.photo.name}), 1:N among {gallery} employees; "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; load average before the run {load_before}")
    print("Frames per challenge (photo: yaw°, pitch° as the live engine measures its camera frame; "
          f"each movement at least {plan.slack:.1f}° past its step's):")
    for steps, shots in plan.sequences.items():
        print(f"  {', then '.join(steps):14} " + " -> ".join(
            f"{shot.photo.stem} ({shot.yaw:+.1f}, {shot.pitch:+.1f})" for shot in shots))
    print(f"  no liveness: 3 x {plan.frontal.photo.stem} ({plan.frontal.yaw:+.1f}, {plan.frontal.pitch:+.1f})")
    print(f"{'':43} " + " ".join(f"{words:-^23}" for words in (" challenge ms ", " verify ms ", " whole check ms ")))
    print(f"{'phase':14} {'frames':>6} {'clients':>7} {'checks':>6} {'errors':>6} "
          + " ".join(f"{'p50':>7} {'p95':>7} {'p99':>7}" for _ in range(3)) + f" {'checks/s':>8}")
    for level in levels:
        figures = [value for part in ("challenge", "verify", "whole") for value in percentiles(level.timings(part))]
        print(f"{level.phase:14} {level.frames:6d} {level.clients:7d} {len(level.checks):6d} {level.errors:6d} "
              + " ".join(f"{value:7.0f}" for value in figures) + f" {level.throughput:8.2f}")
    on, off = levels
    for part, words in (("whole", "whole check"), ("verify", "verify call"), ("challenge", "challenge call")):
        on_p50, off_p50 = percentiles(on.timings(part))[0], percentiles(off.timings(part))[0]
        print(f"Liveness on / off, {words} p50: {on_p50 / off_p50:.2f}x ({on_p50:.0f} / {off_p50:.0f} ms)")
    print(f"Checks per second, liveness off / on: {off.throughput / on.throughput:.2f}x")
    for level in levels:
        errors = Counter(check.error for check in level.checks if check.error)
        busiest = max(level.per_kiosk.values(), default=0)
        print(f"{level.phase}: {level.errors} errors, {level.locked_out} locked-out answers; checks per kiosk "
              f"{min(level.per_kiosk[number] for number in range(level.clients))} to {busiest} ({busiest * 60 / level.wall_seconds:.0f} a minute at most)"
              + "".join(f"\n  {count} x {error}" for error, count in errors.most_common()))
    print("The audit of the timed kiosks (kiosk's liveness setting, decision, liveness_passed: attempts): "
          + "; ".join(f"{'on' if row['liveness'] else 'off'} {row['decision']} {row['liveness_passed']}: {row['count']}"
                      for row in sorted(audit, key=lambda row: (not row["liveness"], row["decision"], str(row["liveness_passed"])))))
    rate = os.environ.get("FRID_API_VERIFY_RATE")
    print(f"FRID_API_VERIFY_RATE {rate + ' (from the environment)' if rate else '60/minute (the default)'} per kiosk; "
          f"load average at the end {http_bench.load_average()}")


if __name__ == "__main__":
    sys.exit(main())
