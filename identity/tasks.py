"""Background work of the identity app (queue "embeddings")."""

from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

from identity import enrollment

# A pending template whose task has not run after this long is queued again.
REQUEUE_AFTER = timedelta(minutes=2)


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


@shared_task(autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, max_retries=8,
             soft_time_limit=60, time_limit=90)
def requeue_pending_templates(older_than_seconds: float = REQUEUE_AFTER.total_seconds()) -> int:
    return enrollment.requeue_pending(older_than=timedelta(seconds=older_than_seconds))


@worker_ready.connect
def _requeue_after_a_restart(sender=None, **kwargs):
    # A worker killed mid-task leaves its message unacknowledged until the broker's visibility
    # timeout (hours); queue every pending template again now. Processing is idempotent.
    requeue_pending_templates.delay(0)


@shared_task(
    acks_late=True,  # a redelivery after a worker died is noticed and marks the import failed
    soft_time_limit=3 * 3600,  # ~10,000 photos on 2 cores
    time_limit=3 * 3600 + 120,
)
def run_bulk_import(import_id: int) -> None:
    from identity import bulk_import

    bulk_import.run_archive_import(import_id)
