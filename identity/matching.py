"""Face search in pgvector and the open-set decision: who is this, or nobody we know."""

from __future__ import annotations

from dataclasses import dataclass

from identity.models import Employee, FaceTemplate
from training.models import ModelVersion
from training.verification import decide


@dataclass(frozen=True)
class Match:
    employee: Employee | None  # None: nobody enrolled is near enough (an unknown person)
    nearest: Employee | None
    distance: float | None
    threshold: float


def best_match(embedding, version: ModelVersion) -> Match:
    """The nearest ready template of an active employee under ``version``, decided against the
    version's threshold for a gallery of this size (ModelVersion.threshold_for_gallery: the more
    faces enrolled, the stricter, so strangers stay unknown). Only embeddings of the same version
    are ever compared."""
    templates = FaceTemplate.objects.searchable(version)
    threshold = version.threshold_for_gallery(templates.count())
    nearest = templates.nearest(embedding, version).select_related("employee").first()
    if nearest is None:
        return Match(None, None, None, threshold)
    accepted = decide(nearest.distance, threshold)
    return Match(nearest.employee if accepted else None, nearest.employee, nearest.distance, threshold)
