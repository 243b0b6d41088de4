"""Switching the embedding network that search uses, atomically and reversibly.

A new version changes the embedding space: stored embeddings of the old one mean nothing to it.
So before a version becomes active every ready template gets an embedding of it (TemplateEmbedding,
computed in the background from the template's stored chip, while search goes on with the active
version), and then ONE transaction swaps them in and activates the version. Search only reads
FaceTemplate.embedding and only compares embeddings of the active version, so nothing is ever
searched with a half-embedded version. The old embeddings stay as TemplateEmbedding rows: rolling
back is the same switch the other way (templates enrolled since get an old-version embedding first).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import numpy
from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from identity.models import FaceTemplate, TemplateEmbedding
from training.models import ModelVersion, ModelVersionEvent

logger = logging.getLogger(__name__)

BATCH = 64
# Photos enrolled while re-embedding ran need embedding too before the switch; tries before giving up.
SWITCH_ATTEMPTS = 3
READY = FaceTemplate.Status.READY


class NotReady(RuntimeError):
    """Some ready templates still have no embedding of the version: it cannot be searched yet."""


def missing_embeddings(version: ModelVersion):
    """Ready templates that have no embedding of ``version`` anywhere yet."""
    return (
        FaceTemplate.objects.filter(status=READY)
        .exclude(model_version=version)
        .exclude(Exists(TemplateEmbedding.objects.filter(template=OuterRef("pk"), model_version=version)))
    )


def embed_missing(version: ModelVersion, progress: Callable[[int, int], None] | None = None) -> int:
    """Give every ready template an embedding of ``version`` (from its chip); returns how many
    were computed. Safe to run again after a crash: only what is missing is done."""
    total = missing_embeddings(version).count()
    done = 0
    embedder = version.embedder() if total else None
    while True:
        batch = list(missing_embeddings(version).order_by("pk")[:BATCH])
        if not batch:
            return done
        chips = numpy.stack([_chip(template) for template in batch])
        embeddings = embedder.embed(chips)
        TemplateEmbedding.objects.bulk_create(
            [TemplateEmbedding(template=template, model_version=version, embedding=[float(v) for v in embedding])
             for template, embedding in zip(batch, embeddings)],
            update_conflicts=True, unique_fields=["template", "model_version"], update_fields=["embedding"],
        )
        done += len(batch)
        if progress:
            progress(done, max(total, done))


def switch(version: ModelVersion, *, by=None, by_name: str = "",
           action: str = ModelVersionEvent.Action.ACTIVATED, details: dict | None = None) -> int:
    """Make ``version`` the one search uses, in one transaction: every ready template's embedding
    becomes its ``version`` embedding and the old one is kept for roll-back. Raises NotReady when a
    ready template has no embedding of ``version`` (run embed_missing first). Returns the number
    of templates switched."""
    with transaction.atomic():
        # Enrollment workers wait while the embeddings are swapped; search reads on.
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {FaceTemplate._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        missing = missing_embeddings(version).count()
        if missing:
            raise NotReady(f"{missing} ready photos have no embedding of {version.name} yet.")
        switched = _swap_embeddings(version)
        version.activate(by=by, by_name=by_name, action=action, details={**(details or {}), "templates": switched})
    logger.info("switched search to %s (%d templates)", version.name, switched)
    return switched


def _swap_embeddings(version: ModelVersion) -> int:
    templates = FaceTemplate._meta.db_table
    others = TemplateEmbedding._meta.db_table
    with connection.cursor() as cursor:
        # Keep each template's current embedding under its own version ...
        cursor.execute(
            f"""INSERT INTO {others} (template_id, model_version_id, embedding, created_at)
                SELECT id, model_version_id, embedding, now() FROM {templates}
                WHERE status = %s AND model_version_id <> %s
                ON CONFLICT (template_id, model_version_id) DO UPDATE SET embedding = EXCLUDED.embedding""",
            [READY, version.pk],
        )
        # ... and search with the new version's.
        cursor.execute(
            f"""UPDATE {templates} AS t SET embedding = o.embedding, model_version_id = o.model_version_id
                FROM {others} AS o
                WHERE o.template_id = t.id AND o.model_version_id = %s AND t.status = %s
                  AND t.model_version_id <> %s""",
            [version.pk, READY, version.pk],
        )
        return cursor.rowcount


def _chip(template: FaceTemplate) -> numpy.ndarray:
    from PIL import Image

    try:
        with template.chip.open("rb") as stream:
            return numpy.asarray(Image.open(io.BytesIO(stream.read())).convert("RGB"))
    except (FileNotFoundError, ValueError) as error:
        raise NotReady(
            f"The face chip of {template.employee} (photo {template.pk}) is missing from storage, so it "
            f"cannot be embedded with a new version: delete that photo and upload it again."
        ) from error


def embed_then_switch(version_id: int, *, by_id: int | None = None, action: str = ModelVersionEvent.Action.ACTIVATED,
                      run_id: int | None = None) -> dict:
    """The background switch: embed what is missing, reporting on the training run if there is
    one, then switch. A version already active needs nothing."""
    from django.contrib.auth import get_user_model

    from training.models import TrainingRun

    version = ModelVersion.objects.get(pk=version_id)
    by = get_user_model().objects.filter(pk=by_id).first() if by_id else None

    def report(phase: str) -> None:
        if run_id:
            TrainingRun.objects.filter(pk=run_id).update(phase=phase[:100])

    if version.is_active and not missing_embeddings(version).exists():
        return {"version": version.name, "switched": 0, "embedded": 0}
    embedded = 0
    for attempt in range(1, SWITCH_ATTEMPTS + 1):
        embedded += embed_missing(version, progress=lambda done, total: report(
            f"accepted: re-embedding photos ({done} of {total}), then switching"))
        try:
            switched = switch(version, by=by, by_name="" if by else (f"training run {run_id}" if run_id else "FRID"),
                              action=action, details={"run": run_id} if run_id else None)
            break
        except NotReady:  # photos enrolled meanwhile with the old version: embed those too
            if attempt == SWITCH_ATTEMPTS:
                raise
    report(f"accepted: search now uses {version.name}")
    return {"version": version.name, "switched": switched, "embedded": embedded}
