"""Benchmark: one real training run through FRID, end to end, as an organisation runs it.

    .venv/bin/python bench/training_run.py [--faces ../shared/faces] [--employees 300]
        [--photos-each 2] [--held-out 200] [--strangers 1000] [--public-people N] [--trainable PREFIX ...]
        [--cache DIR] [--keep] [--epochs N] [--learning-rate X] [--train-option KEY=VALUE ...]
        [--dev-test-held-out N] [--probes-each N] [--no-roll-back]

People are LFW people outside View 1's DevTest lists (DevTest is the gate's reference set and the
pairs evaluate_model scores), shuffled with a fixed seed:
- --employees people with two photos or more are enrolled through FRID's enrollment code (the
  worker's: detection, the quality rules, embedding) from up to --photos-each photos each, as
  employees who agreed to training;
- held-out people, never trained on: people with two photos or more for the open-set test (the
  first --held-out of them that enroll from one photo) and --strangers people with a single photo
  as its strangers;
- everybody else is the public folder (symlinks to their LFW folders, one per person).

Steps, each timed, on a fresh data directory (its own embedded PostgreSQL, media and, unless
--cache names one, a cold training cache: the run's time includes finding every face):
1. migrate and import dlib's network (the base version);
2. enroll the employees;
3. ``manage.py train_model --public DIR --json`` in its own process, as HR or the training worker
   runs it: the figures before and after come from its JSON line;
4. ``manage.py evaluate_model --model NEW --versus BASE --pairs pairsDevTest.txt --all-pairs --json``;
5. open-set, the attendance case: the held-out people enrolled from one photo each (base version
   active), then another photo of each and one photo of each stranger searched under the kiosk's
   rule (identity.matching.identify: the version's calibrated threshold for the gallery's size
   and its margin) - with the base version, then with the new one after re-embedding and the
   switch (identity.switching.embed_then_switch, the switch_version task's code, run here), then
   with the base again after rolling back (its answers must be the first pass's). Each version is
   also read at its own thresholds for exactly 0.5%, 1% and 2% of the strangers accepted, so that
   the two are compared at the same false-accept rate whatever their calibration gives.

A steadier open set without changing what is trained on: --dev-test-held-out N adds up to N LFW
DevTest people with two photos or more to the held-out people (DevTest is the gate's reference set,
never trained on); --probes-each N searches up to N later photos of each held-out person (each a
probe; the figures also count each person's first probe alone). Both versions are searched with the
same probes, so result.json's "paired" says, at each exact share of strangers, how many probes only
the base or only the new version recognised (McNemar's test on those).

Prints tables and writes them, with every figure, to DATA_DIR/result.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "var" / "bench" / "training-run"
SEED = 11
STRANGERS_ACCEPTED = (0.005, 0.01, 0.02)
BATCH = 32


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("FRID_FACES_DIR", ROOT.parent / "shared" / "faces")))
    parser.add_argument("--employees", type=int, default=300)
    parser.add_argument("--photos-each", type=int, default=2)
    parser.add_argument("--held-out", type=int, default=200)
    parser.add_argument("--strangers", type=int, default=1000,
                        help="Single-photo people searched as strangers (more of them: a steadier 1%% point).")
    parser.add_argument("--public-people", type=int, help="At most this many public people (default: all; a quick look).")
    parser.add_argument("--trainable", nargs="+", metavar="PREFIX", help="Passed to train_model (default: its own).")
    parser.add_argument("--cache", type=Path, help="A training cache to reuse (default: a cold one in the data dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the data directory of an earlier run.")
    parser.add_argument("--epochs", type=int, help="Passed to train_model (default: its own).")
    parser.add_argument("--learning-rate", help="Passed to train_model (default: its own).")
    parser.add_argument("--train-option", nargs="+", metavar="KEY=VALUE", default=[],
                        help="Passed to train_model --option (a training parameter; default: its own).")
    parser.add_argument("--dev-test-held-out", type=int, default=0,
                        help="Also this many DevTest people (never trained on) in the open set (default 0).")
    parser.add_argument("--probes-each", type=int, default=1,
                        help="Search up to this many later photos of each held-out person (default 1).")
    parser.add_argument("--no-roll-back", action="store_true", help="Skip the roll-back and its third search.")
    return parser.parse_args()


OPTIONS = arguments()
if not OPTIONS.keep and DATA_DIR.exists():
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from frid_site import services; "
                    "services.stop_all(__import__('pathlib').Path(sys.argv[2]))", str(ROOT), str(DATA_DIR)], check=False)
    shutil.rmtree(DATA_DIR)
DATA_DIR.mkdir(parents=True, exist_ok=True)
os.environ.update({
    "FRID_DATA_DIR": str(DATA_DIR), "FRID_FACES_DIR": str(OPTIONS.faces.resolve()),
    "FRID_TRAINING_CACHE_DIR": str((OPTIONS.cache or DATA_DIR / "training-cache").resolve()),
    "DJANGO_SETTINGS_MODULE": "frid_site.settings",
})
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

import numpy  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from frid_site import services  # noqa: E402
from identity import duplicates, enrollment, matching, switching  # noqa: E402
from identity.models import Employee, FaceTemplate  # noqa: E402
from training.models import ModelVersion, ModelVersionEvent, TrainingRun  # noqa: E402

READY = FaceTemplate.Status.READY


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Who is who ---------------------------------------------------------------------------------


def dev_test_people(faces: Path) -> set[str]:
    people = set()
    for line in (faces / "lfw-protocol" / "pairsDevTest.txt").read_text().splitlines():
        fields = line.split("\t")
        people.update(fields[0::2] if len(fields) == 4 else fields[:1])
    return people


def choose_people(faces: Path) -> dict[str, list[Path]]:
    excluded = dev_test_people(faces)
    folders = sorted(path for path in (faces / "lfw").iterdir() if path.is_dir() and path.name not in excluded)
    several = [path for path in folders if len(list(path.glob("*.jpg"))) >= 2]
    single = [path for path in folders if len(list(path.glob("*.jpg"))) == 1]
    random.Random(SEED).shuffle(several)
    random.Random(SEED).shuffle(single)
    employees = several[:OPTIONS.employees]
    # More candidates than needed: some first photos fail the enrollment rules (pose, size, two faces).
    held_out = several[OPTIONS.employees:OPTIONS.employees + OPTIONS.held_out * 13 // 10]
    dev_test = sorted(path for path in (faces / "lfw").iterdir()
                      if path.is_dir() and path.name in excluded and len(list(path.glob("*.jpg"))) >= 2)
    random.Random(SEED).shuffle(dev_test)
    return {"employees": employees, "held_out": held_out, "strangers": single[:OPTIONS.strangers],
            "public": several[OPTIONS.employees + len(held_out):][:OPTIONS.public_people],
            "dev_test": dev_test[:OPTIONS.dev_test_held_out]}


def public_folder(people: list[Path]) -> Path:
    folder = DATA_DIR / "public"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for person in people:
        (folder / person.name).symlink_to(person.resolve(), target_is_directory=True)
    return folder


# --- Enrollment ---------------------------------------------------------------------------------


def process(template_ids: list[int]) -> None:
    for start in range(0, len(template_ids), BATCH):
        enrollment.process_templates(template_ids[start:start + BATCH])


def enroll_employees(people: list[Path], hr) -> dict:
    added = []
    for number, person in enumerate(people):
        employee = Employee.objects.create(employee_number=f"E{number:04d}", name=person.name.replace("_", " "))
        employee.record_consent(hr)
        employee.record_training_consent(hr)
        for photo in sorted(person.glob("*.jpg"))[:OPTIONS.photos_each]:
            added.append(enrollment.add_photo(employee, photo.read_bytes(), photo.name).pk)
    process(added)
    kept = keep_flagged_duplicates(hr)
    ready = FaceTemplate.objects.filter(pk__in=added, status=READY)
    return {"people": len(people), "photos": len(added), "ready": ready.count(),
            "people_with_two_ready": sum(1 for count in _ready_per_employee(ready).values() if count >= 2),
            "flagged_as_duplicates_kept": kept}


def _ready_per_employee(ready) -> dict[int, int]:
    counts: dict[int, int] = {}
    for employee_id in ready.values_list("employee_id", flat=True):
        counts[employee_id] = counts.get(employee_id, 0) + 1
    return counts


def keep_flagged_duplicates(hr) -> int:
    """Different LFW people flagged as possible duplicates: HR, looking, would keep both."""
    held = list(FaceTemplate.objects.held_for_review())
    for template in held:
        duplicates.keep_both(template, hr)
    return len(held)


def enroll_held_out(people: list[Path], hr, limit: int, prefix: str = "H") -> dict[int, list[Path]]:
    """The first ``limit`` people enrolled from one photo (their next one if a photo fails the
    rules, as HR would); returns each one's probes: up to --probes-each later photos of theirs,
    never the enrolled one (the first of them is the probe of a plain run)."""
    employees = {person: Employee.objects.create(employee_number=f"{prefix}{number:04d}", name=person.name.replace("_", " "))
                 for number, person in enumerate(people)}
    photos = {person: sorted(person.glob("*.jpg")) for person in people}
    tried = {person: 0 for person in people}
    enrolled: dict[Path, int] = {}
    while True:
        added = {}
        for person in people:
            if person not in enrolled and tried[person] < len(photos[person]) - 1:
                photo = photos[person][tried[person]]
                tried[person] += 1
                added[person] = enrollment.add_photo(employees[person], photo.read_bytes(), photo.name).pk
        if not added:
            break
        process(list(added.values()))
        for person, template_id in added.items():
            if FaceTemplate.objects.filter(pk=template_id, status=READY).exists():
                enrolled[person] = tried[person]  # the probe is the next photo
    chosen = [person for person in people if person in enrolled][:limit]
    Employee.objects.filter(pk__in=[employees[person].pk for person in people if person not in chosen]).delete()
    keep_flagged_duplicates(hr)
    return {employees[person].pk: photos[person][enrolled[person]:enrolled[person] + OPTIONS.probes_each]
            for person in chosen}


# --- Searching ----------------------------------------------------------------------------------


def probe_embeddings(version: ModelVersion, photos: list[Path]) -> list[numpy.ndarray | None]:
    """Each photo as a kiosk frame (the live engine: one usable face, or nothing)."""
    analyses = []
    engine = version.engine(live=True)
    for start in range(0, len(photos), BATCH):
        analyses += engine.analyse_photos([photo.read_bytes() for photo in photos[start:start + BATCH]])
    return [None if analysis.problem else analysis.embedding for analysis in analyses]


def search(version: ModelVersion, probes: dict[int, list[Path]], strangers: list[Path]) -> dict:
    """The kiosk's decisions for every probe and stranger, and the same embeddings read at the
    version's own threshold for exactly 1% of the strangers."""
    employee_ids = [pk for pk, photos in probes.items() for _ in photos]
    embedded = probe_embeddings(version, [photo for pk in probes for photo in probes[pk]] + strangers)
    answers = [None if embedding is None else matching.identify(embedding, version) for embedding in embedded]
    decided = [None if answer is None or answer.employee is None else answer.employee.pk for answer in answers]
    own, others = decided[:len(employee_ids)], decided[len(employee_ids):]
    recognised = sum(1 for pk, answer in zip(employee_ids, own) if answer == pk)
    return {
        "version": version.name, "answers": decided,
        "recognised": recognised, "of": len(employee_ids), "people": len(probes),
        "taken_for_another": sum(1 for pk, answer in zip(employee_ids, own) if answer not in (None, pk)),
        "no_usable_face": sum(1 for embedding in embedded if embedding is None),
        "strangers_accepted": sum(1 for answer in others if answer is not None), "strangers": len(strangers),
        "gallery_threshold": answers[0].threshold if answers and answers[0] else None,
        "at_strangers_rates": at_strangers_rates(version, employee_ids, embedded),
    }


def at_strangers_rates(version: ModelVersion, employee_ids: list[int], embedded: list) -> dict:
    """Recognised at the largest threshold that accepts at most each rate of the strangers, the
    margin rule kept: the two versions compared at the same false-accept rates."""
    rows = list(FaceTemplate.objects.searchable(version).values_list("employee_id", "embedding"))
    owners = numpy.array([owner for owner, _ in rows])
    gallery = numpy.array([numpy.asarray(vector) for _, vector in rows])
    margin = version.open_set_margin or 0.0
    nearest = []
    for embedding in embedded:
        if embedding is None:
            nearest.append((None, numpy.inf, False))
            continue
        distances = numpy.linalg.norm(gallery - embedding, axis=1)
        order = numpy.argsort(distances)
        first = owners[order[0]]
        second = next((distances[index] for index in order if owners[index] != first), numpy.inf)
        nearest.append((first, distances[order[0]], second - distances[order[0]] >= margin))
    strangers = sorted(distance for _, distance, clear in nearest[len(employee_ids):] if clear)
    found = {}
    first_probe = [index == 0 or employee_ids[index - 1] != pk for index, pk in enumerate(employee_ids)]
    for rate in STRANGERS_ACCEPTED:
        allowed = int(round(rate * (len(embedded) - len(employee_ids))))
        threshold = numpy.nextafter(strangers[allowed], 0) if len(strangers) > allowed else numpy.inf
        each = [bool(owner == pk and clear and distance <= threshold)
                for pk, (owner, distance, clear) in zip(employee_ids, nearest)]
        found[f"{rate:g}"] = {"threshold": float(threshold), "recognised": sum(each),
                              "recognised_first_probe": sum(hit for hit, first in zip(each, first_probe) if first),
                              "strangers_accepted": sum(1 for distance in strangers if distance <= threshold),
                              "each": each}
    return found


def paired(first: dict, second: dict, employee_ids: list[int]) -> dict:
    """At each exact share of strangers: probes recognised by only one of the two versions, and
    McNemar's exact two-sided p-value on them (the versions see the same probes and strangers)."""
    from math import comb

    def mcnemar(only_first: int, only_second: int) -> float:
        n = only_first + only_second
        tail = sum(comb(n, k) for k in range(min(only_first, only_second) + 1)) / 2 ** n if n else 1.0
        return min(1.0, 2 * tail)

    first_probe = [index == 0 or employee_ids[index - 1] != pk for index, pk in enumerate(employee_ids)]
    figures = {}
    for rate, row in first["at_strangers_rates"].items():
        a, b = row["each"], second["at_strangers_rates"][rate]["each"]
        figures[rate] = {}
        for part, mask in (("all_probes", [True] * len(a)), ("first_probe", first_probe)):
            only_first = sum(1 for x, y, m in zip(a, b, mask) if m and x and not y)
            only_second = sum(1 for x, y, m in zip(a, b, mask) if m and y and not x)
            figures[rate][part] = {"only_base": only_first, "only_new": only_second, "both": sum(
                1 for x, y, m in zip(a, b, mask) if m and x and y), "probes": sum(mask),
                "mcnemar_p": mcnemar(only_first, only_second)}
    return figures


# --- Commands -----------------------------------------------------------------------------------


def manage(*arguments: str) -> tuple[str, float]:
    started = time.monotonic()
    completed = subprocess.run([sys.executable, str(ROOT / "manage.py"), *arguments], capture_output=True, text=True,
                               cwd=ROOT, env=os.environ)
    seconds = time.monotonic() - started
    if completed.returncode:
        sys.exit(f"manage.py {' '.join(arguments)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return completed.stdout, seconds


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def main() -> None:
    timings, result = {}, {"options": {key: str(value) for key, value in vars(OPTIONS).items()}}
    services.start_redis(DATA_DIR)  # the accepted run queues its switch, as it would for the worker

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    call_command("import_base_model", verbosity=0)
    base = ModelVersion.objects.active()
    hr = get_user_model().objects.create_user("bench-hr")
    timings["set up (migrate, import the base network)"] = time.monotonic() - started

    people = choose_people(OPTIONS.faces)
    folder = public_folder(people["public"])
    log(f"{len(people['employees'])} employees, {len(people['public'])} public people, "
        f"{len(people['held_out'])} held-out candidates, {len(people['strangers'])} strangers")

    started = time.monotonic()
    result["employees"] = enroll_employees(people["employees"], hr)
    timings["enroll the employees"] = time.monotonic() - started
    log(f"enrolled: {result['employees']}")

    output, timings["train_model --public (cold caches)" if not OPTIONS.cache else "train_model --public"] = manage(
        "train_model", "--public", str(folder), "--json", *(["--trainable", *OPTIONS.trainable] if OPTIONS.trainable else []),
        *(["--epochs", str(OPTIONS.epochs)] if OPTIONS.epochs else []),
        *(["--learning-rate", OPTIONS.learning_rate] if OPTIONS.learning_rate else []),
        *(["--option", *OPTIONS.train_option] if OPTIONS.train_option else []))
    run = last_json(output)
    result["run"] = run
    row = TrainingRun.objects.get(pk=run["run"])
    result["training_run"] = {"parameters": row.parameters, "losses": row.losses}
    log(f"training run {run['run']}: {run['status']}, candidate {run['version']}, {run['metrics']['seconds']:.0f} s")
    if run["status"] != "accepted":
        print(json.dumps(run["metrics"]["gate"], indent=2))
        sys.exit("The gate rejected the candidate: nothing to switch to (figures above).")
    candidate = ModelVersion.objects.get(name=run["version"])

    output, timings["evaluate_model --versus --all-pairs (DevTest)"] = manage(
        "evaluate_model", "--model", candidate.name, "--versus", base.name, "--all-pairs", "--json",
        "--pairs", str(OPTIONS.faces / "lfw-protocol" / "pairsDevTest.txt"), "--images", str(OPTIONS.faces / "lfw"))
    result["evaluate_model"] = last_json(output)

    started = time.monotonic()
    probes = enroll_held_out(people["held_out"], hr, OPTIONS.held_out)
    if people["dev_test"]:
        probes.update(enroll_held_out(people["dev_test"], hr, len(people["dev_test"]), prefix="D"))
    result["held_out"] = {"people": len(probes), "probes": sum(len(photos) for photos in probes.values()),
                          "dev_test_people": sum(1 for photos in probes.values() if photos[0].parent in people["dev_test"])}
    log(f"held out: {result['held_out']}")
    timings["enroll the held-out people (one photo each)"] = time.monotonic() - started
    strangers = [sorted(person.glob("*.jpg"))[0] for person in people["strangers"]]

    started = time.monotonic()
    result["open_set_base"] = search(base, probes, strangers)
    timings["open set: search with the base version"] = time.monotonic() - started
    started = time.monotonic()
    result["switch"] = switching.embed_then_switch(candidate.pk, by_id=hr.pk)
    timings["re-embed every template and switch"] = time.monotonic() - started
    result["open_set_candidate"] = search(ModelVersion.objects.get(pk=candidate.pk), probes, strangers)
    result["paired"] = paired(result["open_set_base"], result["open_set_candidate"],
                              [pk for pk, photos in probes.items() for _ in photos])
    if not OPTIONS.no_roll_back:
        started = time.monotonic()
        switching.embed_then_switch(base.pk, by_id=hr.pk, action=ModelVersionEvent.Action.ROLLED_BACK)
        timings["roll back"] = time.monotonic() - started
        rolled_back = search(ModelVersion.objects.get(pk=base.pk), probes, strangers)
        result["roll_back_restores_the_answers"] = rolled_back["answers"] == result["open_set_base"]["answers"]
    result["timings"] = timings
    (DATA_DIR / "result.json").write_text(json.dumps(result, indent=2, default=float))
    report(result, base, candidate)


def report(result: dict, base: ModelVersion, candidate: ModelVersion) -> None:
    metrics = result["run"]["metrics"]
    key = "tar_at_far_1e-3"
    print("\n| measured by the gate (all pairs) | base | fine-tuned |\n|---|---|---|")
    for part in ("validation", "reference"):
        print(f"| {part}: TAR at FAR 1e-3 | {percent(metrics['before'][part][key])} | {percent(metrics['after'][part][key])} |")
    print(f"\nGate: {'accepted' if metrics['gate']['accepted'] else 'rejected'}: {' '.join(metrics['gate']['reasons'])}")

    evaluated = result["evaluate_model"]
    versus = evaluated["versus"][base.name]
    print(f"\n| evaluate_model on LFW DevTest | {base.name} | {candidate.name} |\n|---|---|---|")
    print(f"| 10-fold accuracy, 1,000 pairs | {percent(versus['accuracy_10fold'])} ± {percent(versus['accuracy_10fold_std'])} "
          f"| {percent(evaluated['accuracy_10fold'])} ± {percent(evaluated['accuracy_10fold_std'])} |")
    for name, label in (("tar_at_far_1e-3", "TAR at FAR 1e-3"), ("tar_at_far_1e-2", "TAR at FAR 1e-2"), ("auc", "AUC")):
        print(f"| all pairs of its {evaluated['images']} photos: {label} | {versus['all_pairs'][name]:.4f} "
              f"| {evaluated['all_pairs'][name]:.4f} |")

    print(f"\n| open set: {result['open_set_base']['people']} held-out people enrolled from one photo each, "
          f"{result['open_set_base']['of']} probes; "
          f"{result['open_set_base']['strangers']} strangers | {base.name} | {candidate.name} |\n|---|---|---|")
    first, second = result["open_set_base"], result["open_set_candidate"]
    print(f"| recognised at the version's calibrated thresholds (the kiosk) | {first['recognised']} "
          f"| {second['recognised']} |")
    print(f"| strangers accepted there | {first['strangers_accepted']} | {second['strangers_accepted']} |")
    print(f"| employees taken for another there | {first['taken_for_another']} | {second['taken_for_another']} |")
    for rate in first["at_strangers_rates"]:
        print(f"| recognised at exactly {float(rate):.1%} of the strangers accepted, margin rule "
              f"| {first['at_strangers_rates'][rate]['recognised']} | {second['at_strangers_rates'][rate]['recognised']} |")
    for rate in first["at_strangers_rates"]:
        print(f"| first probe of each person only, at exactly {float(rate):.1%} "
              f"| {first['at_strangers_rates'][rate]['recognised_first_probe']} "
              f"| {second['at_strangers_rates'][rate]['recognised_first_probe']} |")
    print(f"| no usable face in the probe | {first['no_usable_face']} | {second['no_usable_face']} |")
    print(f"\n{first['people']} people, {first['of']} probes. Paired, probes recognised by only one version:")
    for rate, parts in result["paired"].items():
        for part, row in parts.items():
            print(f"  at exactly {float(rate):.1%}, {part}: only base {row['only_base']}, only new {row['only_new']}, "
                  f"both {row['both']} of {row['probes']}; McNemar p = {row['mcnemar_p']:.3f}")
    if "roll_back_restores_the_answers" in result:
        print(f"\nRoll-back restores the base version's answers: {result['roll_back_restores_the_answers']}")
    print("\n| step | seconds |\n|---|---|")
    for step, seconds in result["timings"].items():
        print(f"| {step} | {seconds:.0f} |")


if __name__ == "__main__":
    try:
        main()
    finally:
        services.stop_all(DATA_DIR)
