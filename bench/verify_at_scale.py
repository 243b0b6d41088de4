"""Benchmark: the verify endpoint's latency with 1,000 and with 100,000 faces enrolled.

    .venv/bin/python bench/verify_at_scale.py [--sizes 1000 100000] [--requests 300] [--gallery 50]

The issue's target: with 100k faces enrolled, /api/v1/verify/'s p50 stays within 10 ms of its p50
at 1k. FRID runs as in production (bench/verify.py's Frid: the runner, embedded PostgreSQL and
Redis, workers, gunicorn) on a data directory of its own. --gallery real LFW people are enrolled
by import_employees, among them the kiosk's person (another photo of them is the probe); the rest
of each size is synthetic employees with one template each, drawn like real embeddings
(bench/synthetic_faces.py), written by COPY with the HNSW index built again after. Per size, one
kiosk client sends --requests checks of the same 640x480 frame one after another (warm-up first)
and the whole answer is timed. The sizes are measured in the order given, on the same processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from verify import (DEFAULT_PROBE, PROJECT_ROOT, Frid, Kiosk, choose_people, copy_as_employee_folders,
                    load_average, run_bench, run_level, warm_up, webcam_frame)

# Run by `manage.py shell -c` against the benchmark's FRID.
FILL = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, "bench")
import synthetic_faces
from django.conf import settings
added = synthetic_faces.fill_to(int(os.environ["FRID_BENCH_TOTAL"]), Path(settings.FRID_FACES_DIR))
print(json.dumps({"added": added}))
"""


def fill(frid: Frid, total: int) -> int:
    process = frid.shell(FILL, FRID_BENCH_TOTAL=str(total))
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"filling the gallery to {total} failed (exit {process.returncode}):\n{output[-3000:]}")
    return json.loads(output.strip().splitlines()[-1])["added"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--requests", type=int, default=300, help="checks per size, one client (default 300)")
    parser.add_argument("--gallery", type=int, default=50, help="real LFW employees among them (default 50)")
    parser.add_argument("--probe", default=DEFAULT_PROBE, help=f"the LFW person at the kiosk (default {DEFAULT_PROBE})")
    parser.add_argument("--faces-dir", type=Path, default=Path(
        os.environ.get("FRID_FACES_DIR", PROJECT_ROOT.parent / "shared" / "faces")))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (FRID's logs) at the end")
    arguments = parser.parse_args()
    # One client sends checks back to back, far above what a kiosk's throttle allows (60 a minute):
    # this measures latency, so the throttle is lifted unless the environment sets a rate.
    os.environ.setdefault("FRID_API_VERIFY_RATE", "100000/minute")
    run_bench("frid-bench-verify-at-scale-", arguments.keep, lambda work, frid: run(arguments, work, frid))


def run(arguments, work: Path, frid: Frid) -> None:
    people = choose_people(arguments.faces_dir, arguments.gallery, 0, arguments.probe)
    copy_as_employee_folders(people.gallery, work / "gallery")
    load_before = load_average()
    print(f"Starting FRID on {frid.data_dir} ...", file=sys.stderr, flush=True)
    frid.start()
    frid.manage("import_employees", str(work / "gallery"), "--consent-recorded-by", "admin")
    token = frid.manage("create_kiosk", "bench", "--no-liveness").strip().splitlines()[-1]
    kiosk = Kiosk(frid.address, token, webcam_frame(people.probe))
    warm_up(kiosk)
    rows = []
    for size in arguments.sizes:
        print(f"filling to {size:,} faces ...", file=sys.stderr, flush=True)
        added = fill(frid, size)
        run_level(kiosk, "warm-up", 1, 20)
        print(f"{size:,} faces: {arguments.requests} checks ...", file=sys.stderr, flush=True)
        level = run_level(kiosk, f"{size} faces", 1, arguments.requests)
        if set(level.answers) != {(200, "verified")}:
            raise RuntimeError(f"at {size:,} faces not every check was verified: {dict(level.answers)}")
        rows.append((size, added, level))
    print(f"\nFRID /api/v1/verify/ over HTTP, one client: one 640x480 JPEG of {people.probe.parent.name}; "
          f"{len(people.gallery)} real employees, the rest synthetic; {os.cpu_count()} CPUs; "
          f"load average before the run {load_before}\n")
    print("| faces enrolled | synthetic added | checks | p50 | p95 | answers |")
    print("|---|---|---|---|---|---|")
    for size, added, level in rows:
        answers = ", ".join(f"{status} {decision}: {count}" for (status, decision), count in sorted(level.answers.items()))
        print(f"| {size:,} | {added:,} | {level.requests} | {level.p50_ms:.1f} ms | {level.p95_ms:.1f} ms | {answers} |")
    first = rows[0][2]
    for size, _, level in rows[1:]:
        print(f"\np50 at {size:,} minus p50 at {rows[0][0]:,}: {level.p50_ms - first.p50_ms:+.1f} ms "
              f"(target: within 10 ms); medians' spread by bootstrap ±{spread_of_median(level.seconds):.1f} / "
              f"±{spread_of_median(first.seconds):.1f} ms")


def spread_of_median(seconds: list[float], resamples: int = 1000) -> float:
    """Standard deviation of the median over bootstrap resamples, in ms."""
    import random

    generator = random.Random(0)
    medians = [statistics.median(generator.choices(seconds, k=len(seconds))) for _ in range(resamples)]
    return 1000 * statistics.stdev(medians)


if __name__ == "__main__":
    main()
