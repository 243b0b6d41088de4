"""training.tasks.train on a real training worker (one fresh process per run, as production runs
it): a verification during training still answers, and a worker killed in the middle of training
leaves the run failed and retryable and the active version untouched.

The kill waits for an explicit sign that training is under way: the run's first epoch on its row.
"""

from __future__ import annotations

import pytest

from identity import tasks as identity_tasks
from identity import verification
from identity.models import Kiosk, TemplateEmbedding, VerificationAttempt
from tests.identity.conftest import broker, empty_broker, workers  # noqa: F401 (fixtures)
from tests.identity.real_faces import PATIENT_TIMEOUT_SECONDS, enroll, people_with_two_photos
from tests.training.lfw_folders import linked_people
from training import runs, tasks
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.slow
TRAINING_WORKER = ("--max-tasks-per-child", "1")
# Loading TensorFlow, detecting 150 faces and caching activations on a busy two-core machine: an
# upper bound before the first epoch, never a measurement.
FIRST_EPOCH_TIMEOUT_SECONDS = 600


def test_a_worker_killed_mid_training_leaves_the_run_failed_and_the_model_untouched(
    faces_dir, base_model_version, workers, settings, tmp_path  # noqa: F811 (workers: a fixture)
):
    settings.FRID_VERIFY_TIMEOUT_SECONDS = PATIENT_TIMEOUT_SECONDS
    (photo, probe), = people_with_two_photos(faces_dir, 1)
    employee = enroll("E1", photo)
    kiosk = Kiosk(name="Front door", liveness_required=False)  # a still photo, as this test sends
    kiosk.new_token()
    kiosk.save()
    parameters = {
        "public": str(linked_people(faces_dir, tmp_path / "public", 30, reference=False)),
        "reference": str(linked_people(faces_dir, tmp_path / "reference", 12, reference=True)),
        "training": {"epochs": 500, "patience": 500},  # far longer than the test lets it run
    }
    workers.start(queues="verify")
    trainer = workers.start(queues="training", options=TRAINING_WORKER)
    workers.wait_until_warm()

    run, _ = tasks.start_run(TrainingRun.Trigger.ADMIN, parameters)
    workers.wait_for(lambda: len(TrainingRun.objects.get(pk=run.pk).losses) >= 1,
                     FIRST_EPOCH_TIMEOUT_SECONDS, "the run's first epoch")

    outcome = identity_tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [probe.read_bytes()], kiosk=kiosk))
    assert outcome.attempt.decision == VerificationAttempt.Decision.VERIFIED  # kiosks still answer
    assert outcome.employee == employee

    workers.kill(trainer)
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.RUNNING  # nobody said otherwise
    workers.start(queues="training", options=TRAINING_WORKER)  # a worker starting on this host notices
    workers.wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.FAILED,
                     PATIENT_TIMEOUT_SECONDS, "the killed run to be marked failed")

    run.refresh_from_db()
    assert "Retry" in run.error and run.finished_at is not None
    assert ModelVersion.objects.active() == base_model_version
    assert list(ModelVersion.objects.values_list("name", flat=True)) == [base_model_version.name]
    assert not TemplateEmbedding.objects.exists()
    again = runs.retry(run)
    assert again.status == TrainingRun.Status.QUEUED and again.parameters == run.parameters
