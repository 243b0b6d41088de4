"""Benchmark: FRID's 1:N search in pgvector at 10k, 100k (and 1M) enrolled faces, beside exact search.

    nice -n 5 .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--probes 200]
        [--exact-probes 100] [--recall-probes 1000] [--ef 40 100 200] [--m 16] [--ef-construction 200]
        [--draw covariance|diagonal] [--shared-buffers 2GB] [--json var/bench/search/results.json]

The faces: real embeddings of LFW photos by FRID's engine (the base network, mirrored chips, the
face nearest the centre; computed once and cached under var/bench/), of people with at least 5
photos. Their within-person spread (each photo around its person's mean) and between-person spread
(the people's means around the overall mean) are measured as full covariances. A synthetic identity
is a real person's mean plus an offset drawn at the between-person spread; its enrolled template and
its probe (another photo) each add noise at the within-person spread. One template per employee.
``--draw diagonal`` draws each dimension on its own instead, as the first version of this benchmark
did: that spreads identities over all 128 directions (participation ratio ~120, where the real
people's means have ~22), which makes the graph search harder than real faces make it.

FRID's data: an embedded PostgreSQL of its own under var/bench/search (FRID_DATA_DIR), migrated,
with the base version imported. Employees and templates are written with COPY, the HNSW index
(identity's, m and ef_construction as given) is dropped before and built again after each size is
loaded, timed, with maintenance_work_mem = 2GB and max_parallel_maintenance_workers = 1.

Timed per size, one connection: identity.matching.identify(probe, version), the kiosk's whole
1:N decision (the gallery count for the threshold, the index search inside index_search(), the
margin rule), p50/p95 over --probes probes after a warm-up; the same with index scans off (exact,
sequential search) over --exact-probes; the search alone (FaceTemplate.nearest()[:20]) per
--ef value with its recall@1 and @10 against exact search, and the decision's right-person rate;
recall@1 again over --recall-probes probes, their exact nearest found by brute force in numpy.
Also: how an UPDATE of a template's other columns fares with the HNSW index (HOT or not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "var" / "bench" / "search"
DATA_DIR.mkdir(parents=True, exist_ok=True)
os.environ.pop("DATABASE_URL", None)
os.environ["FRID_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frid_site.settings")
sys.path.insert(0, str(PROJECT_ROOT))

import django  # noqa: E402

django.setup()

import numpy  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from identity.management.commands.check_search_recall import exact_nearest, index_nearest  # noqa: E402
from identity.matching import gallery_size, identify  # noqa: E402
from identity.models import FaceTemplate  # noqa: E402
from synthetic_faces import execute, load, noise, real_embeddings, spreads, synthetic  # noqa: E402
from training.models import ModelVersion  # noqa: E402

SEED = 11
INDEX = "facetemplate_embedding_hnsw"


def build_index(m: int, ef_construction: int) -> dict:
    execute(f"DROP INDEX IF EXISTS {INDEX}")
    execute("SET maintenance_work_mem = '2GB'")
    execute("SET max_parallel_maintenance_workers = 1")
    started = time.monotonic()
    execute(f"CREATE INDEX {INDEX} ON identity_facetemplate USING hnsw (embedding vector_l2_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")
    seconds = time.monotonic() - started
    execute("VACUUM ANALYZE identity_facetemplate")
    execute("ANALYZE identity_employee")
    size = execute(f"SELECT pg_relation_size('{INDEX}')")[0][0]
    return {"build_s": seconds, "index_mib": size / 2 ** 20}


def set_shared_buffers(size: str) -> None:
    """Restart the bench's embedded server with this shared_buffers (PostgreSQL's default, 128MB,
    holds a sixth of the index at 1M faces; the rest comes through the OS's cache)."""
    from frid_site import services

    execute(f"ALTER SYSTEM SET shared_buffers = '{size}'")
    connection.close()
    services.stop_postgres(DATA_DIR)
    services.start_postgres(DATA_DIR)


def exact_top1(probes: numpy.ndarray, templates: numpy.ndarray) -> numpy.ndarray:
    """Each probe's smallest distance to any template, by brute force in numpy (float32, as stored)."""
    templates = templates.astype(numpy.float64)
    squared_norms = (templates ** 2).sum(axis=1)
    best = []
    for start in range(0, len(probes), 64):
        block = numpy.round(probes[start:start + 64], 6).astype(numpy.float32).astype(numpy.float64)
        squared = (block ** 2).sum(axis=1)[:, None] - 2 * block @ templates.T + squared_norms
        best.append(numpy.sqrt(numpy.maximum(squared.min(axis=1), 0)))
    return numpy.concatenate(best)


def percentile(values, q) -> float:
    return float(numpy.percentile(numpy.array(values) * 1000, q))


def timed(function, probes) -> tuple[list, list]:
    seconds, results = [], []
    for probe in probes:
        started = time.perf_counter()
        results.append(function(probe))
        seconds.append(time.perf_counter() - started)
    return seconds, results


def measure(size: int, probes: numpy.ndarray, owners: numpy.ndarray, version: ModelVersion, options,
            templates: numpy.ndarray) -> dict:
    row = {"size": size}
    warm = probes[: min(50, len(probes))]
    for probe in warm:
        identify(probe, version)
    seconds, matches = timed(lambda probe: identify(probe, version), probes)
    row.update(identify_p50_ms=percentile(seconds, 50), identify_p95_ms=percentile(seconds, 95),
               right_person=sum(m.nearest is not None and m.nearest.pk == int(o) for m, o in zip(matches, owners))
               / len(probes),
               accepted_right=sum(m.employee is not None and m.employee.pk == int(o) for m, o in zip(matches, owners))
               / len(probes))
    seconds, _ = timed(lambda probe: FaceTemplate.objects.searchable(version).count(), probes[:20])
    row["exact_count_p50_ms"] = percentile(seconds, 50)
    seconds, sizes = timed(lambda probe: gallery_size(FaceTemplate.objects.searchable(version)), probes[:50])
    row.update(gallery_size_p50_ms=percentile(seconds, 50), gallery_size=sizes[0])
    exact_probes = probes[: options.exact_probes]
    execute("SET enable_indexscan = off")
    try:
        seconds, exact_matches = timed(lambda probe: identify(probe, version), exact_probes)
        exact = [exact_nearest(probe, version, 10) for probe in exact_probes]
    finally:
        execute("SET enable_indexscan = on")
    row.update(exact_p50_ms=percentile(seconds, 50), exact_p95_ms=percentile(seconds, 95))
    row["exact_same_decision"] = sum(
        (a.nearest and a.nearest.pk) == (b.nearest and b.nearest.pk) and a.employee == b.employee
        for a, b in zip(matches, exact_matches)) / len(exact_probes)
    row["ef"] = {}
    nearest = exact_top1(probes[: options.recall_probes], templates) if options.recall_probes else None
    for ef in options.ef:
        settings.FRID_HNSW_EF_SEARCH = ef
        for probe in warm:
            index_nearest(probe, version, 10)
        seconds, found = timed(lambda probe: index_nearest(probe, version, 20), exact_probes)
        top1 = sum(bool(f) and (f[0][0] == e[0][0] or abs(f[0][1] - e[0][1]) < 1e-9) for f, e in zip(found, exact))
        top10 = sum(len({pk for pk, _ in f[:10]} & {pk for pk, _ in e}) / len(e) for f, e in zip(found, exact))
        row["ef"][ef] = {"search_p50_ms": percentile(seconds, 50), "search_p95_ms": percentile(seconds, 95),
                         "recall_at_1": top1 / len(exact), "recall_at_10": top10 / len(exact)}
        if options.recall_probes:
            # recall@1 over many more probes, their exact nearest found in numpy (exact search in
            # PostgreSQL takes 1.7 s a probe at 1M)
            many = probes[: options.recall_probes]
            seconds, found = timed(lambda probe: index_nearest(probe, version, 20), many)
            hits = sum(bool(f) and f[0][1] <= distance + 1e-4 for f, distance in zip(found, nearest))
            row["ef"][ef].update(many_probes=len(many), many_recall_at_1=hits / len(many),
                                 many_p50_ms=percentile(seconds, 50), many_p95_ms=percentile(seconds, 95))
    settings.FRID_HNSW_EF_SEARCH = options.service_ef
    return row


def hot_updates(count: int = 2000) -> dict:
    """UPDATEs of a template's other columns, one per statement: how many were HOT (no index touched)."""
    ids = [pk for (pk,) in execute(f"SELECT id FROM identity_facetemplate ORDER BY random() LIMIT {count}")]
    result = {}
    # attempts first (pages as COPY and the index build left them: full), then reason (some room
    # freed by then), then status to another value (an indexed column: never HOT).
    for column, value in (("attempts", "attempts + 1"), ("reason", "'checked'"), ("status", "'pending'")):
        execute("SELECT pg_stat_force_next_flush()")
        before = execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'identity_facetemplate'")[0]
        started = time.perf_counter()
        for pk in ids:
            execute(f"UPDATE identity_facetemplate SET {column} = {value} WHERE id = %s", [pk])
        seconds = time.perf_counter() - started
        time.sleep(1)
        execute("SELECT pg_stat_force_next_flush()")
        execute("SELECT pg_stat_clear_snapshot()")
        after = execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'identity_facetemplate'")[0]
        result[column] = {"updates": after[0] - before[0], "hot": after[1] - before[1],
                          "ms_per_update": 1000 * seconds / len(ids)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--exact-probes", type=int, default=100)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--service-ef", type=int, default=getattr(settings, "FRID_HNSW_EF_SEARCH", 40),
                        help="hnsw.ef_search for the identify() rows (default: FRID's setting)")
    parser.add_argument("--hot-updates", type=int, default=2000)
    index = next(index for index in FaceTemplate._meta.indexes if index.name == INDEX)
    parser.add_argument("--m", type=int, default=index.m, help=f"HNSW m (FRID's index: {index.m})")
    parser.add_argument("--ef-construction", type=int, default=index.ef_construction,
                        help=f"HNSW ef_construction (FRID's index: {index.ef_construction})")
    parser.add_argument("--draw", choices=["covariance", "diagonal"], default="covariance",
                        help="Synthetic offsets with the real spreads' correlations, or per dimension only")
    parser.add_argument("--recall-probes", type=int, default=1000,
                        help="Probes for recall@1 against exact search done in numpy (default 1000)")
    parser.add_argument("--shared-buffers", help="Restart the embedded server with this shared_buffers (e.g. 2GB)")
    parser.add_argument("--json", type=Path, default=DATA_DIR / "results.json")
    options = parser.parse_args()
    settings.FRID_HNSW_EF_SEARCH = options.service_ef

    rows, people = real_embeddings(settings.FRID_FACES_DIR)
    spread = spreads(rows, people)
    print(f"{spread['photos']} LFW photos of {spread['people']} people: median same-person distance "
          f"{spread['same_person_distance_median']:.3f}, median distance between people's means "
          f"{spread['person_means_distance_median']:.3f}; per-dimension spread within {spread['within'].mean():.4f}, "
          f"between {spread['between'].mean():.4f}; between-person participation ratio "
          f"{spread['between_participation_ratio']:.1f}; drawn: {options.draw}")

    if options.shared_buffers:
        set_shared_buffers(options.shared_buffers)
    call_command("migrate", verbosity=0)
    call_command("import_base_model", verbosity=0)
    version = ModelVersion.objects.active()
    execute("TRUNCATE identity_facetemplate, identity_employee RESTART IDENTITY CASCADE")
    rng = numpy.random.default_rng(SEED)
    loaded, centres_all, templates_all, results = 0, [], [], []
    for size in sorted(options.sizes):
        centres, enrolled = synthetic(spread, size - loaded, rng, options.draw)
        execute(f"DROP INDEX IF EXISTS {INDEX}")
        started = time.monotonic()
        load(enrolled, loaded + 1, version)
        load_seconds = time.monotonic() - started
        centres_all.append(centres)
        templates_all.append(numpy.round(enrolled, 6).astype(numpy.float32))  # as COPY wrote them
        loaded = size
        index = build_index(options.m, options.ef_construction)
        every = numpy.concatenate(centres_all)
        count = max(options.probes, options.recall_probes)
        chosen = rng.choice(size, count, replace=False)
        probes = every[chosen] + noise(spread, "within", count, rng, options.draw)
        row = {**measure(size, probes, chosen + 1, version, options, numpy.concatenate(templates_all)), **index,
               "load_s": load_seconds,
               "table_mib": execute("SELECT pg_table_size('identity_facetemplate')")[0][0] / 2 ** 20}
        results.append(row)
        print(json.dumps(row), flush=True)
    hot = hot_updates(options.hot_updates) if options.hot_updates else {}

    print(f"\n{platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
          f"identify() with hnsw.ef_search {options.service_ef}, iterative_scan strict_order; HNSW m={options.m}, "
          f"ef_construction={options.ef_construction}; shared_buffers {execute('SHOW shared_buffers')[0][0]}\n")
    print("| faces | identify p50 | identify p95 | exact p50 | exact p95 | p50 ratio exact/index | gallery size p50 (size) "
          "| exact count p50 | right person | same decision as exact | index build | index size |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['size']:,} | {row['identify_p50_ms']:.2f} ms | {row['identify_p95_ms']:.2f} ms | "
              f"{row['exact_p50_ms']:.1f} ms | {row['exact_p95_ms']:.1f} ms | {row['exact_p50_ms'] / row['identify_p50_ms']:.1f}x | "
              f"{row['gallery_size_p50_ms']:.2f} ms ({row['gallery_size']:,}) | {row['exact_count_p50_ms']:.1f} ms | {row['right_person']:.3f} | {row['exact_same_decision']:.3f} | "
              f"{row['build_s']:.1f} s | {row['index_mib']:.1f} MiB |")
    print("\nThe index search alone (FaceTemplate.nearest()[:20]) against exact search:\n")
    print(f"| faces | ef_search | search p50 | search p95 | recall@1 | recall@10 | {options.recall_probes} probes: "
          "p50 | p95 | recall@1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results:
        for ef, figures in row["ef"].items():
            many = (f"{figures['many_p50_ms']:.2f} ms | {figures['many_p95_ms']:.2f} ms | {figures['many_recall_at_1']:.4f}"
                    if "many_probes" in figures else " | | ")
            print(f"| {row['size']:,} | {ef} | {figures['search_p50_ms']:.2f} ms | {figures['search_p95_ms']:.2f} ms | "
                  f"{figures['recall_at_1']:.3f} | {figures['recall_at_10']:.3f} | {many} |")
    if hot:
        print(f"\nUPDATEs of one column of {options.hot_updates} random templates, one statement each:")
        for column, figures in hot.items():
            print(f"  {column}: {figures['hot']} of {figures['updates']} HOT, {figures['ms_per_update']:.3f} ms each")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "host": platform.node(),
                                        "draw": options.draw, "m": options.m,
                                        "ef_construction": options.ef_construction,
                                        "spread": {k: v for k, v in spread.items() if not hasattr(v, "shape")},
                                        "service_ef": options.service_ef, "rows": results, "hot_updates": hot},
                                       indent=2))
    print(f"\nresults: {options.json}")


if __name__ == "__main__":
    main()
