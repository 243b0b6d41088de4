"""Synthetic enrolled faces that resemble real ones, for the benchmarks at scale (bench/search.py,
bench/verify_at_scale.py).

Real embeddings of LFW photos by FRID's engine (the base network, mirrored chips; computed once
and cached under var/bench/ by bench/template_updates.py), of people with at least 5 photos. Their
within-person spread (each photo around its person's mean) and between-person spread (the people's
means around the overall mean) are measured as full covariances. A synthetic identity is a real
person's mean plus an offset at the between-person spread; its template and its probes each add
within-person noise. Written into FRID's tables with COPY. Needs Django set up by the caller.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import numpy
from django.db import connection

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE = PROJECT_ROOT / "var" / "bench" / "search-lfw-embeddings.npz"
MIN_PHOTOS = 5
MAX_PHOTOS = 8


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
    # Cholesky factors of the full covariances: real embeddings' dimensions are correlated, so
    # their spread lies mostly in fewer directions than 128 independent ones would.
    within_covariance = numpy.cov(residuals.T) * (len(residuals) - 1) / (len(residuals) - len(people))
    between_covariance = numpy.cov(means.T)
    eigenvalues = numpy.linalg.eigvalsh(between_covariance)
    same = [numpy.linalg.norm(a - b) for person in people for i, a in enumerate(rows[owners == person])
            for b in rows[owners == person][i + 1:]]
    different = numpy.linalg.norm(means[:, None] - means[None], axis=2)[numpy.triu_indices(len(means), 1)]
    return {"means": means, "within": within, "between": between, "people": len(people), "photos": len(rows),
            "within_factor": numpy.linalg.cholesky(within_covariance),
            "between_factor": numpy.linalg.cholesky(between_covariance),
            "between_participation_ratio": float(eigenvalues.sum() ** 2 / (eigenvalues ** 2).sum()),
            "same_person_distance_median": float(numpy.median(same)),
            "person_means_distance_median": float(numpy.median(different))}


def noise(spread: dict, which: str, count: int, rng, draw: str) -> numpy.ndarray:
    """``count`` offsets at the ``which`` ("within" or "between") person spread: per dimension
    ("diagonal"), or with the real spread's correlations between dimensions ("covariance")."""
    normal = rng.normal(size=(count, 128))
    if draw == "diagonal":
        return normal * spread[which]
    return normal @ spread[f"{which}_factor"].T


def synthetic(spread: dict, count: int, rng, draw: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``count`` identities' centres (a real person's mean plus an offset at the between-person
    spread) and each one's enrolled template (its centre plus within-person noise)."""
    base = spread["means"][rng.integers(0, len(spread["means"]), count)]
    centres = base + noise(spread, "between", count, rng, draw)
    return centres, centres + noise(spread, "within", count, rng, draw)


# --- FRID's tables ---------------------------------------------------------------------------------


def execute(sql: str, parameters=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description else None


def load(templates: numpy.ndarray, first: int, version, number_prefix: str = "") -> None:
    """Employees first..first+len-1 and one ready template each, by COPY."""
    now = datetime.now(timezone.utc).isoformat()
    employees = io.StringIO()
    for number in range(first, first + len(templates)):
        employees.write(f"{number}\t{number_prefix}{number}\tPerson {number}\t\t\tt\t{now}\n")
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
    execute("SELECT setval(pg_get_serial_sequence('identity_employee', 'id'), (SELECT max(id) FROM identity_employee))")




SYNTHETIC_PREFIX = "synthetic-"


def fill_to(total: int, faces_dir: Path, seed: int = 11, draw: str = "covariance") -> int:
    """Synthetic employees (numbers "synthetic-N"), one ready template each under the active
    version, until ``total`` templates are searchable; the HNSW index is dropped for the COPY and
    built again from the model's own definition (faster than inserting row by row). Returns how
    many were added."""
    from identity.models import FaceTemplate
    from training.models import ModelVersion

    version = ModelVersion.objects.active()
    missing = total - FaceTemplate.objects.searchable(version).count()
    if missing <= 0:
        return 0
    rows, owners = real_embeddings(faces_dir)
    _, templates = synthetic(spreads(rows, owners), missing, numpy.random.default_rng(seed), draw)
    first = (execute("SELECT coalesce(max(id), 0) FROM identity_employee")[0][0] or 0) + 1
    (index,) = [index for index in FaceTemplate._meta.indexes if index.name == "facetemplate_embedding_hnsw"]
    execute(f"DROP INDEX IF EXISTS {index.name}")
    load(templates, first, version, SYNTHETIC_PREFIX)
    execute("SET maintenance_work_mem = '1GB'")
    with connection.schema_editor() as editor:
        editor.add_index(FaceTemplate, index)
    execute("ANALYZE identity_facetemplate")
    execute("ANALYZE identity_employee")
    return missing
