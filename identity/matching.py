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
    version's threshold. Only embeddings of the same version are ever compared."""
    nearest = FaceTemplate.objects.nearest(embedding, version).select_related("employee").first()
    if nearest is None:
        return Match(None, None, None, version.threshold)
    accepted = decide(nearest.distance, version.threshold)
    return Match(nearest.employee if accepted else None, nearest.employee, nearest.distance, version.threshold)
