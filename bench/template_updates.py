"""Benchmark: automatic templates from verified captures, on LFW people with many photos.

    .venv/bin/python bench/template_updates.py [--min-photos 15] [--max-photos 40] [--strangers 2000]

Each LFW person with at least --min-photos photos is an employee, enrolled from their first photo
(the first one with a face); their later photos (up to --max-photos in all) are searched IN ORDER,
as if they came to a kiosk day after day. One photo each of --strangers other people (fewer photos
than --min-photos) are searched too, spread over the same stream. Every search follows the kiosk's
rule (identity.matching.identify): the nearest employee within the threshold AND nearer than the
second-nearest employee by the open-set margin (0.08, the base version's). With automatic updates a
verified search whose distance is at most threshold - margin becomes a template of the matched
employee (identity.template_updates: capped per person, the oldest automatic one replaced first,
HR's photo never), whoever the probe really was: a stranger accepted can become a wrong template,
and that is counted.

The threshold is chosen per row so that 1% of the stranger searches are accepted (the largest such
threshold, found by bisection: with updates the gallery, and so the strangers accepted, depend on
it). The "service threshold" rows use the base version's rule instead, unchanged:
ModelVersion.threshold_for_gallery(templates searched, margin 0.08), which tightens as templates
are added. Embeddings are computed once (the base network, mirrored chips, the face nearest the
centre as evaluation takes it) and cached under var/bench/; the searches are pure numpy.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frid_site.settings")

import django  # noqa: E402

django.setup()

import numpy  # noqa: E402
from django.conf import settings  # noqa: E402

from identity import template_updates  # noqa: E402
from identity.models import FaceTemplate  # noqa: E402
from training import model_store  # noqa: E402
from training.models import ModelVersion  # noqa: E402

OPEN_SET_MARGIN = model_store.BASE_OPEN_SET["margin"]
STRANGERS_ACCEPTED = 0.01
SEED = 7
MARGINS = (0.0, 0.05, 0.08, 0.10, 0.15)
CAPS = (1, 3, 5, 10)
DEFAULT_CAP = 5
# Bisection bounds for the threshold: well below and above any threshold FRID uses.
LOWEST, HIGHEST, STEPS = 0.35, 0.65, 16
CAPTURE, PHOTO = FaceTemplate.Source.CAPTURE, FaceTemplate.Source.PHOTO


# --- Photos and embeddings ----------------------------------------------------------------------


def choose_photos(faces_dir: Path, min_photos: int, max_photos: int, strangers: int):
    """Employees' photos in order (name -> paths) and one photo each of the strangers."""
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())
    photos = {person.name: sorted(person.glob("*.jpg")) for person in people}
    employees = {name: paths[:max_photos] for name, paths in photos.items() if len(paths) >= min_photos}
    others = [paths[0] for name, paths in photos.items() if len(paths) < min_photos]
    step = max(1, len(others) // strangers)
    return employees, others[::step][:strangers]


def embed(paths: list[Path], cache: Path) -> dict[Path, numpy.ndarray | None]:
    """The base network's embedding of each photo's central face (None: no face), cached."""
    names = [str(path) for path in paths]
    if cache.exists():
        stored = numpy.load(cache, allow_pickle=False)
        if list(stored["names"]) == names:
            return {path: (row if found else None) for path, row, found in zip(paths, stored["rows"], stored["found"])}
    from training.dlib_import import import_dlib_network
    from training.embedder import Embedder
    from training.engine import FaceEngine

    model, _ = import_dlib_network()
    started = time.monotonic()
    result = FaceEngine(Embedder(model, mirror=True)).embed_files(paths).embeddings
    print(f"embedded {len(paths)} photos in {time.monotonic() - started:.0f} s", file=sys.stderr)
    found = numpy.array([result[path] is not None for path in paths])
    rows = numpy.stack([result[path] if result[path] is not None else numpy.zeros(128) for path in paths])
    cache.parent.mkdir(parents=True, exist_ok=True)
    numpy.savez(cache, names=numpy.array(names), rows=rows, found=found)
    return {path: (row if ok else None) for path, row, ok in zip(paths, rows, found)}


@dataclass
class Data:
    vectors: numpy.ndarray  # every usable photo's embedding, one row each
    distances: numpy.ndarray  # between every two rows
    enrolled: list[int]  # per employee, the row of their enrollment photo
    stream: list[tuple[int, int]]  # (row, employee or -1 for a stranger), in the order searched


def prepare(employees: dict[str, list[Path]], strangers: list[Path], embedded: dict) -> Data:
    rows, enrolled, timelines = [], [], []
    for number, paths in enumerate(employees.values()):
        usable = [embedded[path] for path in paths if embedded[path] is not None]
        enrolled.append(len(rows))
        rows.append(usable[0])
        timelines.append([])
        for vector in usable[1:]:
            timelines[-1].append(len(rows))
            rows.append(vector)
    stranger_rows = []
    for path in strangers:
        if embedded[path] is not None:
            stranger_rows.append(len(rows))
            rows.append(embedded[path])
    # Everyone's probes advance at the same pace through the stream (a person with 14 later photos
    # and one with 39 both span it), strangers at random places in it.
    random = numpy.random.default_rng(SEED)
    events = [(index / len(timeline) + random.uniform(0, 1e-6), row, employee)
              for employee, timeline in enumerate(timelines) for index, row in enumerate(timeline)]
    events += [(random.uniform(0, 1), row, -1) for row in stranger_rows]
    stream = [(row, employee) for _, row, employee in sorted(events)]
    vectors = numpy.stack(rows).astype(numpy.float64)
    squared = (vectors**2).sum(1)
    distances = numpy.sqrt(numpy.maximum(squared[:, None] - 2 * vectors @ vectors.T + squared[None, :], 0))
    return Data(vectors, distances, enrolled, stream)


# --- The simulation -----------------------------------------------------------------------------


@dataclass
class Template:
    pk: int
    row: int
    employee: int
    source: str
    created_at: datetime


@dataclass
class Result:
    threshold: float
    genuine: int = 0
    recognised: int = 0
    recognised_late: int = 0  # in the second half of each person's probes
    genuine_late: int = 0
    misidentified: int = 0  # an employee accepted as another employee
    strangers: int = 0
    strangers_accepted: int = 0
    added: int = 0
    wrong_added: int = 0  # a template of somebody else's face
    templates: int = 0
    thresholds: list[float] = field(default_factory=list)

    @property
    def stranger_rate(self) -> float:
        return self.strangers_accepted / self.strangers


def simulate(data: Data, threshold, margin: float | None, cap: int) -> Result:
    """Search the stream in order; ``threshold`` is a number or a function of the templates
    searched; ``margin`` None: no automatic updates."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    gallery = [Template(employee, row, employee, PHOTO, start) for employee, row in enumerate(data.enrolled)]
    late_from = _second_halves(data)
    result = Result(threshold if not callable(threshold) else float("nan"))
    for step, (row, person) in enumerate(data.stream):
        rows = numpy.array([template.row for template in gallery])
        owners = numpy.array([template.employee for template in gallery])
        limit = threshold(len(gallery)) if callable(threshold) else threshold
        result.thresholds.append(limit)
        employee, nearest = _decide(data.distances[row, rows], owners, limit)
        if person < 0:
            result.strangers += 1
            result.strangers_accepted += employee is not None
        else:
            late = step >= late_from[person]
            result.genuine += 1
            result.genuine_late += late
            result.recognised += employee == person
            result.recognised_late += late and employee == person
            result.misidentified += employee is not None and employee != person
        if margin is None or employee is None or not template_updates.should_keep(nearest, limit, margin):
            continue
        now = start + timedelta(days=step + 1)
        mine = [template for template in gallery if template.employee == employee]
        replaced = {template.pk for template in template_updates.templates_to_replace(mine, cap)}
        gallery = [template for template in gallery if template.pk not in replaced]
        gallery.append(Template(len(data.enrolled) + step, row, employee, CAPTURE, now))
        result.added += 1
        result.wrong_added += person != employee
    result.templates = len(gallery)
    return result


def _decide(distances: numpy.ndarray, owners: numpy.ndarray, threshold: float) -> tuple[int | None, float]:
    """The kiosk's margin rule over templates: (employee or None, distance to the nearest)."""
    order = numpy.argsort(distances)
    first = owners[order[0]]
    others = order[owners[order] != first]
    second = distances[others[0]] if len(others) else numpy.inf
    nearest = float(distances[order[0]])
    accepted = nearest <= threshold and second - nearest >= OPEN_SET_MARGIN
    return (int(first) if accepted else None), nearest


def _second_halves(data: Data) -> dict[int, int]:
    steps: dict[int, list[int]] = {}
    for step, (_, person) in enumerate(data.stream):
        if person >= 0:
            steps.setdefault(person, []).append(step)
    return {person: found[len(found) // 2] for person, found in steps.items()}


def calibrated(data: Data, margin: float | None, cap: int) -> Result:
    """The run at the largest threshold accepting at most 1% of the strangers (bisection)."""
    low, high = LOWEST, HIGHEST
    best = simulate(data, low, margin, cap)
    for _ in range(STEPS):
        middle = (low + high) / 2
        result = simulate(data, middle, margin, cap)
        if result.stranger_rate <= STRANGERS_ACCEPTED:
            low, best = middle, result
        else:
            high = middle
    return best


# --- Output -------------------------------------------------------------------------------------


def row(label: str, result: Result) -> str:
    threshold = (f"{result.threshold:.4f}" if result.thresholds and result.threshold == result.threshold
                 else f"{min(result.thresholds):.4f}–{max(result.thresholds):.4f}")
    return (f"| {label} | {threshold} | {result.recognised / result.genuine:.2%} "
            f"| {result.recognised_late / result.genuine_late:.2%} | {result.misidentified} "
            f"| {result.strangers_accepted} of {result.strangers} ({result.stranger_rate:.2%}) "
            f"| {result.added} | {result.wrong_added} | {result.templates} |")


HEADER = ("| automatic templates | threshold | recognised | recognised, later half | employees taken for another "
          "| strangers accepted | templates added | of somebody else | templates at the end |\n"
          "|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-photos", type=int, default=15)
    parser.add_argument("--max-photos", type=int, default=40)
    parser.add_argument("--strangers", type=int, default=2000)
    parser.add_argument("--faces-dir", type=Path, default=settings.FRID_FACES_DIR)
    arguments = parser.parse_args()

    employees, strangers = choose_photos(arguments.faces_dir, arguments.min_photos, arguments.max_photos,
                                         arguments.strangers)
    paths = [path for photos in employees.values() for path in photos] + strangers
    cache = settings.FRID_DATA_DIR / "bench" / (
        f"template_updates-{arguments.min_photos}-{arguments.max_photos}-{arguments.strangers}.npz")
    data = prepare(employees, strangers, embed(paths, cache))
    genuine = sum(person >= 0 for _, person in data.stream)
    print(f"{len(employees)} employees enrolled from one photo, {genuine} later photos of them searched in order, "
          f"{len(data.stream) - genuine} strangers; {platform.node()}, {time.strftime('%Y-%m-%d')}")

    started = time.monotonic()
    print(f"\nAt the threshold that accepts 1% of the strangers (cap {DEFAULT_CAP} per person):\n")
    print(HEADER)
    print(row("none", calibrated(data, None, DEFAULT_CAP)))
    for margin in MARGINS:
        print(row(f"margin {margin:.2f}", calibrated(data, margin, DEFAULT_CAP)))

    chosen = settings.FRID_AUTO_TEMPLATE_MARGIN
    print(f"\nCap per person at margin {chosen:.2f}, same rule:\n")
    print(HEADER)
    for cap in CAPS:
        print(row(f"cap {cap}", calibrated(data, chosen, cap)))

    base = ModelVersion(threshold=model_store.BASE_THRESHOLD, metrics=model_store.BASE_METRICS)

    def service_threshold(templates: int) -> float:
        return base.threshold_for_gallery(templates, margin=OPEN_SET_MARGIN)

    print(f"\nThe service's threshold (base version, for the templates searched), cap {DEFAULT_CAP}:\n")
    print(HEADER)
    print(row("none", simulate(data, service_threshold, None, DEFAULT_CAP)))
    print(row(f"margin {chosen:.2f}", simulate(data, service_threshold, chosen, DEFAULT_CAP)))
    print(f"\nsearches simulated in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
