"""Face search in pgvector and the open-set decision: who is this, or nobody we know.

The one place where a face is compared with the enrolled ones: verification (1:N at a kiosk, 1:1
on a personal device) and enrollment's duplicate warnings both come here. Only embeddings of the
same model version are ever compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import connections
from pgvector.django import L2Distance

from identity.models import Employee, FaceTemplate, index_search  # noqa: F401 (index_search: FRID's search settings)
from training.models import ModelVersion
from training.verification import decide

# Templates fetched per search to find the two nearest distinct employees (an employee has a few
# templates at most, so this many always holds two of them when the gallery does).
NEAREST_TEMPLATES = 20
# Galleries up to this many templates are counted exactly for the threshold; a larger one's size is
# PostgreSQL's estimate (the planner's rows for the same query, from the table's statistics): an
# exact count of 100,000 templates takes 64 ms, ten times the search itself (bench/search.py), and
# the threshold moves with log N, so a few percent off moves it by a hair.
EXACT_GALLERY_COUNT = 5000


@dataclass(frozen=True)
class Match:
    employee: Employee | None  # None: nobody enrolled is near enough (an unknown person)
    nearest: Employee | None
    distance: float | None
    threshold: float
    second_distance: float | None = None  # the second-nearest employee's
    margin: float | None = None
    gallery_size: int = 0  # templates searched


def nearest_employees(embedding, templates, count: int = 2) -> list[tuple[Employee, float]]:
    """The ``count`` nearest distinct employees among ``templates`` (searchable ones), with the
    distance to each one's nearest template, nearest first."""
    found: dict[int, tuple[Employee, float]] = {}
    for template in templates.select_related("employee")[:NEAREST_TEMPLATES]:
        found.setdefault(template.employee_id, (template.employee, template.distance))
        if len(found) == count:
            break
    return list(found.values())


def gallery_size(searchable) -> int:
    """How many templates ``searchable`` holds: exact up to EXACT_GALLERY_COUNT, estimated above."""
    searchable = searchable.order_by()
    estimated = planner_rows(searchable)
    # Counting stops at EXACT_GALLERY_COUNT + 1 rows, but even that costs 3.5 ms at 1M faces (a
    # third of the search): skip it where the estimate is far above the limit.
    if estimated > 2 * EXACT_GALLERY_COUNT:
        return estimated
    counted = searchable[:EXACT_GALLERY_COUNT + 1].count()
    return counted if counted <= EXACT_GALLERY_COUNT else max(counted, estimated)


def planner_rows(queryset) -> int:
    """PostgreSQL's estimate of the rows ``queryset`` returns (from the table's statistics)."""
    sql, parameters = queryset.values("id").query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, parameters)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def best_match(embedding, version: ModelVersion, *, exclude_employee: int | None = None,
               margin: float | None = None) -> Match:
    """The nearest ready template of an active employee under ``version``, decided against the
    version's threshold for a gallery of this size (ModelVersion.threshold_for_gallery: the more
    faces enrolled, the stricter, so strangers stay unknown). With ``margin``, the nearest
    employee must also be nearer than the second-nearest by at least that much."""
    searchable = FaceTemplate.objects.searchable(version)
    if exclude_employee is not None:
        searchable = searchable.exclude(employee_id=exclude_employee)
    size = gallery_size(searchable)
    threshold = version.threshold_for_gallery(size, margin=margin)
    nearest = nearest_employees(embedding, searchable.nearest(embedding, version))
    if not nearest:
        # Nobody found: an estimate from statistics older than a mass removal may still say many.
        size = searchable.order_by()[:EXACT_GALLERY_COUNT + 1].count()
        return Match(None, None, None, threshold, margin=margin, gallery_size=size)
    (employee, distance), second = nearest[0], (nearest[1][1] if len(nearest) > 1 else None)
    accepted = decide(distance, threshold) and (
        margin is None or second is None or second - distance >= margin
    )
    return Match(employee if accepted else None, employee, distance, threshold, second, margin, size)


def identify(embedding, version: ModelVersion) -> Match:
    """Open-set identification at a kiosk (1:N), with the margin rule the version was calibrated
    with (and its threshold for that rule and this gallery's size)."""
    return best_match(embedding, version, margin=version.open_set_margin)


def verify_claim(embedding, claimed: Employee, version: ModelVersion) -> Match:
    """1:1: is this the claimed employee? Within the version's one-to-one threshold of one of the
    claimed employee's templates, and no other employee nearer."""
    searchable = FaceTemplate.objects.searchable(version)
    # The claimed employee's few templates, every one measured (no ORDER BY ... LIMIT, so never an
    # HNSW scan, which would drop nearly everything it returns for this filter in a large gallery).
    own_templates = list(searchable.filter(employee=claimed).annotate(
        distance=L2Distance("embedding", list(map(float, embedding)))).only("id", "employee_id"))
    size = len(own_templates)
    own = min(own_templates, key=lambda template: template.distance, default=None)
    if own is None:
        return Match(None, None, None, version.threshold, gallery_size=size)
    nearest = nearest_employees(embedding, searchable.nearest(embedding, version), count=1)
    other_nearer = bool(nearest) and nearest[0][0].pk != claimed.pk and nearest[0][1] < own.distance
    accepted = decide(own.distance, version.threshold) and not other_nearer
    second = nearest[0][1] if other_nearer else None
    return Match(claimed if accepted else None, nearest[0][0] if nearest else claimed, own.distance,
                 version.threshold, second, None, size)
