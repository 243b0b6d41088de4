"""training.runs without TensorFlow: queueing one run at a time, claiming atomically, and runs
whose worker died becoming failed and retryable."""

from datetime import timedelta

import pytest
from django.utils import timezone

from training import runs
from training.models import TrainingRun

Status = TrainingRun.Status
pytestmark = pytest.mark.django_db


def test_a_second_train_now_shows_the_run_already_queued():
    first, created = runs.queue(TrainingRun.Trigger.ADMIN)
    again, created_again = runs.queue(TrainingRun.Trigger.SCHEDULE)

    assert created and not created_again
    assert again.pk == first.pk
    assert TrainingRun.objects.count() == 1
    assert first.parameters == {"public": "", "reference": "", "training": {}}


def test_a_run_is_claimed_once_and_never_while_another_is_running():
    first, _ = runs.queue(TrainingRun.Trigger.ADMIN)
    assert runs.claim(first.pk, worker="a pid 1").status == Status.RUNNING
    assert runs.claim(first.pk, worker="b pid 2") is None  # delivered twice: not trained twice

    second = TrainingRun.objects.create(trigger=TrainingRun.Trigger.COMMAND)
    assert runs.claim(second.pk, worker="b pid 2") is None  # the unique index refuses a second running run
    assert TrainingRun.objects.get(pk=second.pk).status == Status.QUEUED


def test_a_run_that_stopped_reporting_becomes_failed_and_can_be_retried(settings):
    run, _ = runs.queue(TrainingRun.Trigger.ADMIN, {"public": "/faces"})
    runs.claim(run.pk, worker="gone pid 1")
    TrainingRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=settings.FRID_TRAINING_STALE_MINUTES + 1), phase="training: epoch 3 of 15"
    )

    assert runs.fail_stale_runs() == 1
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "epoch 3 of 15" in run.error and "Retry" in run.error

    again = runs.retry(run)
    assert again.pk != run.pk and again.status == Status.QUEUED
    assert again.parameters["public"] == "/faces"


def test_a_run_of_a_dead_process_on_this_host_fails_when_a_worker_starts():
    run, _ = runs.queue(TrainingRun.Trigger.ADMIN)
    runs.claim(run.pk, worker="testhost pid 999999999")  # no such process
    queued = TrainingRun.objects.create(trigger=TrainingRun.Trigger.ADMIN)

    assert runs.fail_orphaned_runs("otherhost") == 0
    assert runs.fail_orphaned_runs("testhost") == 1
    assert TrainingRun.objects.get(pk=run.pk).status == Status.FAILED
    assert TrainingRun.objects.get(pk=queued.pk).status == Status.QUEUED


def test_a_recent_running_run_is_left_alone():
    run, _ = runs.queue(TrainingRun.Trigger.ADMIN)
    runs.claim(run.pk)

    assert runs.fail_stale_runs() == 0
    assert runs.fail_orphaned_runs() == 0  # this very process
    with pytest.raises(runs.RunFailed, match="Only failed runs"):
        runs.retry(TrainingRun.objects.get(pk=run.pk))


def test_stopping_a_queued_run_fails_it_with_who_stopped_it(django_user_model):
    hr = django_user_model.objects.create_user("hr")
    run, _ = runs.queue(TrainingRun.Trigger.ADMIN)

    assert runs.stop(run, by=hr)
    run.refresh_from_db()
    assert run.status == Status.FAILED and "Stopped by hr" in run.error
    assert not runs.stop(run, by=hr)
