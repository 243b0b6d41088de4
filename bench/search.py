"""Benchmark: FRID's 1:N search in pgvector at 10k, 100k (and 1M) enrolled faces, beside exact search.

    nice -n 5 .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--probes 200]
        [--exact-probes 100] [--ef 40 100 200] [--json var/bench/search/results.json]

The faces: real embeddings of LFW photos by FRID's engine (the base network, mirrored chips, the
face nearest the centre; computed once and cached under var/bench/), of people with at least 5
photos. Their within-person spread (each photo around its person's mean) and between-person spread
(the people's means around the overall mean) are measured per dimension. A synthetic identity is a
real person's mean plus an offset drawn at the between-person spread; its enrolled template and
its probe (another photo) each add noise at the within-person spread. One template per employee.

FRID's data: an embedded PostgreSQL of its own under var/bench/search (FRID_DATA_DIR), migrated,
with the base version imported. Employees and templates are written with COPY, the HNSW index
(identity's, m=16, ef_construction=64) is dropped before and built again after each size is
loaded, timed, with maintenance_work_mem = 2GB and max_parallel_maintenance_workers = 1.

Timed per size, one connection: identity.matching.identify(probe, version), the kiosk's whole
1:N decision (the gallery count for the threshold, the index search inside index_search(), the
margin rule), p50/p95 over --probes probes after a warm-up; the same with index scans off (exact,
sequential search) over --exact-probes; the search alone (FaceTemplate.nearest()[:20]) per
--ef value with its recall@1 and @10 against exact search, and the decision's right-person rate.
Also: how an UPDATE of a template's other columns fares with the HNSW index (HOT or not).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "var" / "bench" / "search"
CACHE = PROJECT_ROOT / "var" / "bench" / "search-lfw-embeddings.npz"
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
from training.models import ModelVersion  # noqa: E402

MIN_PHOTOS = 5
MAX_PHOTOS = 8
SEED = 11
INDEX = "facetemplate_embedding_hnsw"


# --- Embeddings -----------------------------------------------------------------------------------


def real_embeddings(faces_dir: Path) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(embeddings, person index per row) of LFW people with >= MIN_PHOTOS photos (up to MAX_PHOTOS)."""
    people = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())
    chosen = [(person, sorted(person.glob("*.jpg"))[:MAX_PHOTOS]) for person in people]
    chosen = [(person, photos) for person, photos in chosen if len(photos) >= MIN_PHOTOS]
    paths = [photo for _, photos in chosen for photo in photos]
    owners = [index for index, (_, photos) in enumerate(chosen) for _ in photos]
    import template_updates  # bench/template_updates.py: the base network's embedding of each photo, cached

    embedded = template_updates.embed(paths, CACHE)
    kept = [index for index, path in enumerate(paths) if embedded[path] is not None]
    return numpy.stack([embedded[paths[index]] for index in kept]), numpy.array(owners)[kept]


def spreads(rows: numpy.ndarray, owners: numpy.ndarray) -> dict:
    people = sorted(set(owners.tolist()))
    means = numpy.stack([rows[owners == person].mean(axis=0) for person in people])
    residuals = numpy.concatenate([rows[owners == person] - means[i] for i, person in enumerate(people)])
    within = residuals.std(axis=0, ddof=1) * numpy.sqrt(len(residuals) / (len(residuals) - len(people)))
    between = means.std(axis=0, ddof=1)
    same = [numpy.linalg.norm(a - b) for person in people for i, a in enumerate(rows[owners == person])
            for b in rows[owners == person][i + 1:]]
    different = numpy.linalg.norm(means[:, None] - means[None], axis=2)[numpy.triu_indices(len(means), 1)]
    return {"means": means, "within": within, "between": between, "people": len(people), "photos": len(rows),
            "same_person_distance_median": float(numpy.median(same)),
            "person_means_distance_median": float(numpy.median(different))}


def synthetic(spread: dict, count: int, rng) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``count`` identities' centres: a real person's mean plus an offset at the between-person spread."""
    base = spread["means"][rng.integers(0, len(spread["means"]), count)]
    centres = base + rng.normal(size=(count, 128)) * spread["between"]
    return centres, centres + rng.normal(size=(count, 128)) * spread["within"]


# --- The database ---------------------------------------------------------------------------------


def execute(sql: str, parameters=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description else None


def load(templates: numpy.ndarray, first: int, version: ModelVersion) -> None:
    """Employees first..first+len-1 and one ready template each, by COPY."""
    now = datetime.now(timezone.utc).isoformat()
    employees = io.StringIO()
    for number in range(first, first + len(templates)):
        employees.write(f"{number}\t{number}\tPerson {number}\t\t\tt\t{now}\n")
    raw = connection.connection
    with raw.cursor() as cursor:
        with cursor.copy("COPY identity_employee (id, employee_number, name, email, department, is_active, "
                         "created_at) FROM STDIN") as copy:
            copy.write(employees.getvalue())
        with cursor.copy("COPY identity_facetemplate (employee_id, source_image, original_filename, source, "
                         "chip, status, reason, embedding, model_version_id, duplicate_decision, attempts, "
                         "queued_at, created_at) FROM STDIN") as copy:
            for offset, row in enumerate(templates):
                vector = "[" + ",".join(f"{value:.6f}" for value in row) + "]"
                copy.write(f"{first + offset}\tfaces/x.jpg\tx.jpg\tphoto\t\tready\t\t{vector}\t{version.pk}\t\t0\t"
                           f"{now}\t{now}\n")
    raw.commit() if not raw.autocommit else None


def build_index() -> dict:
    execute(f"DROP INDEX IF EXISTS {INDEX}")
    execute("SET maintenance_work_mem = '2GB'")
    execute("SET max_parallel_maintenance_workers = 1")
    started = time.monotonic()
    execute(f"CREATE INDEX {INDEX} ON identity_facetemplate USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 16, ef_construction = 64)")
    seconds = time.monotonic() - started
    execute("VACUUM ANALYZE identity_facetemplate")
    execute("ANALYZE identity_employee")
    size = execute(f"SELECT pg_relation_size('{INDEX}')")[0][0]
    return {"build_s": seconds, "index_mib": size / 2 ** 20}


def percentile(values, q) -> float:
    return float(numpy.percentile(numpy.array(values) * 1000, q))


def timed(function, probes) -> tuple[list, list]:
    seconds, results = [], []
    for probe in probes:
        started = time.perf_counter()
        results.append(function(probe))
        seconds.append(time.perf_counter() - started)
    return seconds, results


def measure(size: int, probes: numpy.ndarray, owners: numpy.ndarray, version: ModelVersion, options) -> dict:
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
    for ef in options.ef:
        settings.FRID_HNSW_EF_SEARCH = ef
        for probe in warm:
            index_nearest(probe, version, 10)
        seconds, found = timed(lambda probe: index_nearest(probe, version, 20), exact_probes)
        top1 = sum(bool(f) and (f[0][0] == e[0][0] or abs(f[0][1] - e[0][1]) < 1e-9) for f, e in zip(found, exact))
        top10 = sum(len({pk for pk, _ in f[:10]} & {pk for pk, _ in e}) / len(e) for f, e in zip(found, exact))
        row["ef"][ef] = {"search_p50_ms": percentile(seconds, 50), "search_p95_ms": percentile(seconds, 95),
                         "recall_at_1": top1 / len(exact), "recall_at_10": top10 / len(exact)}
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
    parser.add_argument("--json", type=Path, default=DATA_DIR / "results.json")
    options = parser.parse_args()
    settings.FRID_HNSW_EF_SEARCH = options.service_ef

    rows, people = real_embeddings(settings.FRID_FACES_DIR)
    spread = spreads(rows, people)
    print(f"{spread['photos']} LFW photos of {spread['people']} people: median same-person distance "
          f"{spread['same_person_distance_median']:.3f}, median distance between people's means "
          f"{spread['person_means_distance_median']:.3f}; per-dimension spread within {spread['within'].mean():.4f}, "
          f"between {spread['between'].mean():.4f}")

    call_command("migrate", verbosity=0)
    call_command("import_base_model", verbosity=0)
    version = ModelVersion.objects.active()
    execute("TRUNCATE identity_facetemplate, identity_employee RESTART IDENTITY CASCADE")
    rng = numpy.random.default_rng(SEED)
    loaded, centres_all, results = 0, [], []
    for size in sorted(options.sizes):
        centres, enrolled = synthetic(spread, size - loaded, rng)
        execute(f"DROP INDEX IF EXISTS {INDEX}")
        started = time.monotonic()
        load(enrolled, loaded + 1, version)
        load_seconds = time.monotonic() - started
        centres_all.append(centres)
        loaded = size
        index = build_index()
        every = numpy.concatenate(centres_all)
        chosen = rng.choice(size, options.probes, replace=False)
        probes = every[chosen] + rng.normal(size=(options.probes, 128)) * spread["within"]
        row = {**measure(size, probes, chosen + 1, version, options), **index, "load_s": load_seconds,
               "table_mib": execute("SELECT pg_table_size('identity_facetemplate')")[0][0] / 2 ** 20}
        results.append(row)
        print(json.dumps(row), flush=True)
    hot = hot_updates(options.hot_updates) if options.hot_updates else {}

    print(f"\n{platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
          f"identify() with hnsw.ef_search {options.service_ef}, iterative_scan strict_order\n")
    print("| faces | identify p50 | identify p95 | exact p50 | exact p95 | p50 ratio exact/index | gallery size p50 (size) "
          "| exact count p50 | right person | same decision as exact | index build | index size |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['size']:,} | {row['identify_p50_ms']:.2f} ms | {row['identify_p95_ms']:.2f} ms | "
              f"{row['exact_p50_ms']:.1f} ms | {row['exact_p95_ms']:.1f} ms | {row['exact_p50_ms'] / row['identify_p50_ms']:.1f}x | "
              f"{row['gallery_size_p50_ms']:.2f} ms ({row['gallery_size']:,}) | {row['exact_count_p50_ms']:.1f} ms | {row['right_person']:.3f} | {row['exact_same_decision']:.3f} | "
              f"{row['build_s']:.1f} s | {row['index_mib']:.1f} MiB |")
    print("\nThe index search alone (FaceTemplate.nearest()[:20]) against exact search:\n")
    print("| faces | ef_search | search p50 | search p95 | recall@1 | recall@10 |")
    print("|---|---|---|---|---|---|")
    for row in results:
        for ef, figures in row["ef"].items():
            print(f"| {row['size']:,} | {ef} | {figures['search_p50_ms']:.2f} ms | {figures['search_p95_ms']:.2f} ms | "
                  f"{figures['recall_at_1']:.3f} | {figures['recall_at_10']:.3f} |")
    if hot:
        print(f"\nUPDATEs of one column of {options.hot_updates} random templates, one statement each:")
        for column, figures in hot.items():
            print(f"  {column}: {figures['hot']} of {figures['updates']} HOT, {figures['ms_per_update']:.3f} ms each")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "host": platform.node(),
                                        "spread": {k: v for k, v in spread.items() if not hasattr(v, "shape")},
                                        "service_ef": options.service_ef, "rows": results, "hot_updates": hot},
                                       indent=2))
    print(f"\nresults: {options.json}")


if __name__ == "__main__":
    main()
