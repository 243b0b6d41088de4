"""Every Celery task of the training app, and every send.

Training runs go to the "training" queue, served by a worker of their own (GPU hosts in production;
on one machine a niced CPU worker) that starts a fresh process for every run
(``--max-tasks-per-child 1``): TensorFlow keeps GPU memory until its process exits and is not
fork-safe once initialised, so the network is loaded in the child, never in the worker's parent.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import transaction

from training import runs
from training.models import TrainingRun

logger = logging.getLogger(__name__)

# A run takes minutes on a GPU and up to an hour or two on CPU with large data.
TRAINING_SOFT_TIME_LIMIT = 4 * 3600
# Runs that lost their worker are looked for this often (the schedule's "fail stale runs" entry).
STALE_CHECK_SECONDS = 300.0


@shared_task(acks_late=True, soft_time_limit=TRAINING_SOFT_TIME_LIMIT, time_limit=TRAINING_SOFT_TIME_LIMIT + 300)
def train(run_id: int) -> dict:
    """Claim the run and execute it. A run that is no longer queued (done, failed, taken by another
    worker) is left alone, so a message delivered twice never trains twice."""
    run = runs.claim(run_id)
    if run is None:
        status = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        logger.info("training run %s not claimed (it is %s)", run_id, status or "gone")
        return {"run": run_id, "claimed": False, "status": status}
    runs.execute(run)
    return {"run": run.pk, "claimed": True, "status": run.status}


@shared_task
def train_on_schedule() -> dict:
    """Beat's entry point (the "Fine-tune the network" periodic task HR edits in the admin)."""
    run, created = start_run(TrainingRun.Trigger.SCHEDULE)
    return {"run": run.pk, "queued": created}


@shared_task
def fail_stale_training_runs() -> int:
    return runs.fail_stale_runs()


def start_run(trigger: str, parameters: dict | None = None, by=None) -> tuple[TrainingRun, bool]:
    """Queue a run and send it to the training queue once committed; an unfinished run already
    there is returned instead (created False)."""
    run, created = runs.queue(trigger, parameters, by=by)
    if created:
        transaction.on_commit(lambda: send_run(run))
    return run, created


def retry_run(run: TrainingRun, by=None) -> TrainingRun:
    again = runs.retry(run, by=by)
    transaction.on_commit(lambda: send_run(again))
    return again


def send_run(run: TrainingRun) -> None:
    result = train.apply_async(args=[run.pk])
    TrainingRun.objects.filter(pk=run.pk).update(task_id=result.id)


@worker_ready.connect
def _fail_runs_of_dead_processes(sender=None, **kwargs):
    # A worker killed mid-run leaves its run "running" and its message unacknowledged for hours;
    # a worker starting on the same host marks such runs failed at once (retryable by HR).
    try:
        failed = runs.fail_orphaned_runs()
        if failed:
            logger.warning("marked %d training run(s) of dead worker processes as failed", failed)
    except Exception:  # no database yet: the periodic check finds them later
        logger.exception("could not check for training runs of dead workers")
    finally:
        from django.db import connections

        connections.close_all()
