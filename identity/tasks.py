"""Every Celery task of the identity app, and every send.

Queues (settings.CELERY_TASK_ROUTES): "verify" for live checks (a worker that runs nothing else and
keeps the network loaded), "embeddings" for single enrollment photos, "bulk" for zip imports; the
last two are served by a worker at lower CPU priority, so bulk work never delays a kiosk.
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.signals import celeryd_after_setup, worker_process_init, worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from django.dispatch import receiver

from identity import enrollment, retention, switching, verification
from identity.models import FaceTemplate
from training.models import TrainingRun
from training.signals import candidate_accepted

logger = logging.getLogger(__name__)

# A pending template whose task has not run after this long is queued again.
REQUEUE_AFTER = timedelta(minutes=2)
VERIFY_QUEUE = "verify"


# --- Enrollment ---------------------------------------------------------------------------------


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),  # the database restarting: try again shortly
    retry_backoff=5,
    max_retries=8,
    soft_time_limit=5 * 60,
    time_limit=6 * 60,
)
def embed_templates(template_ids: list[int]) -> dict:
    templates = enrollment.process_templates(template_ids)
    return {"processed": [template.pk for template in templates]}


def queue_embedding(template_ids: list[int]) -> None:
    """Queue the templates' task once the current transaction has committed."""
    transaction.on_commit(lambda: _send_embedding(template_ids))


def _send_embedding(template_ids: list[int]) -> bool:
    if send_import_batch(template_ids):
        return True
    enrollment.mark_waiting_for_broker(template_ids)  # they stay pending; requeue_pending retries
    return False


def send_import_batch(template_ids: list[int]) -> bool:
    """Hand pending templates to the embedding workers now; False when the broker is unreachable
    (a bulk import then embeds the batch itself)."""
    try:
        embed_templates.apply_async(args=[template_ids], retry=False)
    except Exception as error:  # any broker failure
        logger.warning("could not queue templates %s, the broker is unreachable: %s", template_ids, error)
        return False
    return True


def add_photo(employee, data: bytes, filename: str) -> FaceTemplate:
    """An uploaded photo kept as a pending template, its embedding queued (admin, API)."""
    template = enrollment.add_photo(employee, data, filename)
    queue_embedding([template.pk])
    return template


def retry_templates(templates) -> int:
    """Send rejected (or stuck) templates through processing again."""
    template_ids = [template.pk for template in templates]
    updated = enrollment.mark_for_retry(template_ids)
    queue_embedding(template_ids)
    return updated


@shared_task(autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, max_retries=8,
             soft_time_limit=60, time_limit=90)
def requeue_pending_templates(older_than_seconds: float = REQUEUE_AFTER.total_seconds()) -> int:
    """Queue again the pending templates whose task was lost (broker down, worker killed)."""
    template_ids = enrollment.claim_pending_for_requeue(timedelta(seconds=older_than_seconds))
    for start in range(0, len(template_ids), 32):
        batch = template_ids[start:start + 32]
        if _send_embedding(batch):
            enrollment.clear_broker_reason(batch)
    return len(template_ids)


# --- Bulk imports -------------------------------------------------------------------------------


@shared_task(
    acks_late=True,  # a redelivery after a worker died is noticed and marks the import failed
    soft_time_limit=3 * 3600,  # ~10,000 photos on 2 cores
    time_limit=3 * 3600 + 120,
)
def run_bulk_import(import_id: int) -> None:
    from identity import bulk_import

    bulk_import.run_archive_import(import_id, send=send_import_batch if settings.FRID_BULK_IMPORT_ON_WORKERS else None)


def queue_bulk_import(import_id: int) -> None:
    """Send the import to a bulk worker once the upload commits."""
    transaction.on_commit(lambda: send_bulk_import(import_id))


def send_bulk_import(import_id: int) -> bool:
    """Send the import now; when the broker is down, it is marked failed in plain words."""
    from identity import bulk_import

    try:
        run_bulk_import.apply_async(args=[import_id], retry=False)
    except Exception as error:  # any broker failure
        logger.warning("could not queue bulk import %s, the broker is unreachable: %s", import_id, error)
        bulk_import.mark_broker_down(import_id)
        return False
    return True


# --- Verification -------------------------------------------------------------------------------


class VerificationBusy(Exception):
    """No verify worker answered in time (or the broker is down)."""


@shared_task(
    acks_late=False,  # a late answer is worthless: never redelivered,
    max_retries=0,  # never retried,
    ignore_result=False,  # and the web process waits for this result
    soft_time_limit=20,
    time_limit=30,
)
def embed_frames(frames: list[str]) -> dict:
    """Faces and embeddings of a live check's frames (base64 JPEG/PNG), by the active version."""
    from training.models import ModelVersion

    try:
        version = ModelVersion.objects.active()
    except ModelVersion.DoesNotExist:
        return {"version": None, "frames": []}
    analyses = version.engine(live=True).analyse_photos([base64.b64decode(frame) for frame in frames])
    return {"version": version.pk, "frames": [analysis.as_json() for analysis in analyses]}


def verify(check: verification.Check) -> verification.Outcome:
    """Verify a check end to end: validate, embed on a verify worker, decide, audit."""
    try:
        claimed = verification.check_request(check, settings.FRID_MAX_UPLOAD_BYTES)
    except verification.Refusal as refusal:
        return verification.refuse(check, refusal)
    try:
        answer = _embed_on_a_verify_worker(check.frames)
    except VerificationBusy:
        return verification.busy(check, claimed)
    frames = [verification.FrameResult.from_json(frame) for frame in answer["frames"]]
    outcome = verification.decide(check, claimed, frames, answer["version"])
    if outcome.keep_capture:
        queue_capture_template(outcome.attempt.pk)
    return outcome


def _embed_on_a_verify_worker(frames: list[bytes]) -> dict:
    timeout = settings.FRID_VERIFY_TIMEOUT_SECONDS
    encoded = [base64.b64encode(frame).decode("ascii") for frame in frames]
    try:
        # Expires with the wait: a worker that takes it up later throws it away.
        # argsrepr: what Celery logs and reports of the arguments, the frames themselves never.
        result = embed_frames.apply_async(args=[encoded], queue=VERIFY_QUEUE, expires=timeout, retry=False,
                                          argsrepr=f"[{len(frames)} frames]")
    except Exception as error:  # the broker is unreachable
        logger.warning("could not send a verification to the broker: %s", error)
        raise VerificationBusy() from error
    try:
        return result.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
    except CeleryTimeout as error:
        raise VerificationBusy() from error
    except Exception as error:  # the worker failed, or the result backend is unreachable
        logger.warning("a verification failed on the worker: %r", error)
        raise VerificationBusy() from error
    finally:
        _forget(result)


def _forget(result) -> None:
    """Drop the check's result from the backend; with the backend down there is none to drop,
    and the answer (busy) is already decided."""
    try:
        result.forget()
    except Exception as error:
        logger.info("could not forget a verification's result, the result backend is unreachable: %s", error)


# A verify worker loads the network in its pool process, after the fork (TensorFlow is not
# fork-safe once initialised), and runs one check on a blank frame so the first kiosk is not slow.
_warm_up_after_fork = False
WARM_MESSAGE = "Verify worker ready: the network is loaded"


@celeryd_after_setup.connect
def _note_verify_worker(sender=None, instance=None, **kwargs):
    global _warm_up_after_fork
    queues = instance.app.amqp.queues.consume_from or {} if instance is not None else {}
    _warm_up_after_fork = VERIFY_QUEUE in queues


@worker_process_init.connect
def _warm_up(**kwargs):
    if not _warm_up_after_fork:
        return
    try:
        from training.models import ModelVersion

        ModelVersion.objects.active().engine(live=True).warm_up()
        logger.info(WARM_MESSAGE)
    except Exception:  # no model yet, or no database: the first check loads it instead
        logger.exception("Could not load the network ahead of the first verification")
    finally:
        from django.db import connections

        connections.close_all()  # never share a connection opened before a later fork


# --- Periodic jobs ------------------------------------------------------------------------------


@shared_task(soft_time_limit=10 * 60, time_limit=11 * 60)
def purge_expired_captures() -> int:
    """Delete captured frames older than FRID_CAPTURE_RETENTION_DAYS; the attempts stay."""
    return verification.purge_expired_captures()


@shared_task(soft_time_limit=10 * 60, time_limit=11 * 60)
def purge_rejected_photos() -> int:
    """Delete rejected enrollment photos older than FRID_REJECTED_PHOTO_RETENTION_DAYS; the rows stay."""
    return retention.purge_rejected_photos()


@shared_task(soft_time_limit=10 * 60, time_limit=11 * 60)
def purge_import_zips() -> int:
    """Delete finished bulk imports' zips older than FRID_IMPORT_ZIP_RETENTION_DAYS; the imports stay."""
    return retention.purge_import_zips()


@worker_ready.connect
def _requeue_after_a_restart(sender=None, **kwargs):
    # A worker killed mid-task leaves its message unacknowledged until the broker's visibility
    # timeout (hours); queue every pending template again now. Processing is idempotent.
    if not _warm_up_after_fork:
        requeue_pending_templates.delay(0)


# --- Switching the network (after a training run, an activation or a roll-back in the admin) --------


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=8,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
)
def switch_version(version_id: int, by_id: int | None = None, action: str = "activated",
                   run_id: int | None = None) -> dict:
    """Embed every ready template with the version (in the background, search going on with the
    active one), then switch to it in one transaction. Idempotent: run again, it resumes."""
    return switching.embed_then_switch(version_id, by_id=by_id, action=action, run_id=run_id)


# An accepted run's phase (at most 100 characters) when its switch could not be sent.
SWITCH_NOT_QUEUED = "accepted, not switched: the task broker was unreachable (press Activate on the version)"


def queue_switch(version, by=None, action: str = "activated", run=None) -> None:
    """Switch to ``version`` in the background, once the current transaction has committed."""
    transaction.on_commit(lambda: send_switch(version, by=by, action=action, run=run))


def send_switch(version, by=None, action: str = "activated", run=None) -> bool:
    """Send the switch now; False (logged, and said on the run's page) when the broker is
    unreachable: nothing changes, search keeps the active version, HR can activate it later."""
    arguments = [version.pk, getattr(by, "pk", None), action, getattr(run, "pk", None)]
    try:
        switch_version.apply_async(args=arguments, queue="bulk", retry=False)
    except Exception as error:  # any broker failure: the version stays as it is, ready to activate
        logger.warning("could not queue the switch to %s, the broker is unreachable: %s", version.name, error)
        if run is not None:
            TrainingRun.objects.filter(pk=run.pk).update(phase=SWITCH_NOT_QUEUED)
        return False
    return True


@receiver(candidate_accepted)
def _switch_to_accepted_candidate(sender=None, version=None, run=None, **kwargs):
    queue_switch(version, by=getattr(run, "created_by", None), run=run)


# --- Automatic templates ------------------------------------------------------------------------


@shared_task(
    acks_late=True,  # idempotent: a capture already kept is not kept twice
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def keep_capture_as_template(attempt_id: int) -> int | None:
    """A verified kiosk capture kept as an automatic template of its employee, on an embeddings
    worker (identity.template_updates); the new template's id, or None when it did not qualify."""
    from identity import template_updates

    template = template_updates.keep_capture(attempt_id)
    return template.pk if template else None


def queue_capture_template(attempt_id: int) -> None:
    """Send the capture's task once the attempt is committed. Never fails a check: a capture that
    cannot be sent is only a template not added."""
    transaction.on_commit(lambda: _send_capture_template(attempt_id))


def _send_capture_template(attempt_id: int) -> None:
    try:
        keep_capture_as_template.apply_async(args=[attempt_id], retry=False)
    except Exception as error:  # any broker failure
        logger.warning("could not queue attempt %s's capture as a template: %s", attempt_id, error)
