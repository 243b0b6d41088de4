"""manage.py train_model: a real run in the foreground on real LFW faces, ending with one JSON line.

A learning rate that wrecks the network must be rejected by the gate and change nothing: the active
version stays, no photo is re-embedded, and the rejected candidate is kept for inspection.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from identity.models import TemplateEmbedding
from tests.training.lfw_folders import linked_people
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.slow


@pytest.fixture
def folders(faces_dir, tmp_path):
    return (linked_people(faces_dir, tmp_path / "public", 30, reference=False),
            linked_people(faces_dir, tmp_path / "reference", 12, reference=True))


@pytest.mark.django_db
def test_a_learning_rate_that_wrecks_the_network_is_rejected_and_changes_nothing(folders, base_model_version):
    public, reference = folders
    out = io.StringIO()

    call_command("train_model", "--public", str(public), "--reference", str(reference),
                 "--learning-rate", "1.0", "--epochs", "2", "--json", stdout=out)

    answer = json.loads(out.getvalue().strip().splitlines()[-1])
    assert set(answer) >= {"run", "status", "version", "metrics"}
    assert answer["status"] == "rejected"
    run = TrainingRun.objects.get(pk=answer["run"])
    assert run.status == TrainingRun.Status.REJECTED and run.trigger == TrainingRun.Trigger.COMMAND
    assert len(run.losses) >= 1 and run.metrics_before and run.metrics_after
    assert not run.gate["accepted"] and run.gate["reasons"]
    before, after = (metrics["validation"]["tar_at_far_1e-3"] for metrics in (run.metrics_before, run.metrics_after))
    assert after < before  # wrecked, measurably
    assert ModelVersion.objects.active() == base_model_version
    candidate = ModelVersion.objects.get(name=answer["version"])
    assert not candidate.is_active and candidate.path.exists()  # kept for inspection
    assert candidate.metrics["gate"]["accepted"] is False
    assert not TemplateEmbedding.objects.exists()


@pytest.mark.django_db
def test_a_missing_public_folder_fails_the_run_in_plain_words(base_model_version, tmp_path, faces_dir):
    reference = linked_people(faces_dir, tmp_path / "reference", 3, reference=True)

    with pytest.raises(CommandError, match="does not exist"):
        call_command("train_model", "--public", str(tmp_path / "nowhere"), "--reference", str(reference))

    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED and "nowhere" in run.error
    assert ModelVersion.objects.active() == base_model_version


@pytest.mark.django_db
def test_only_one_run_at_a_time(base_model_version):
    TrainingRun.objects.create(status=TrainingRun.Status.RUNNING)

    with pytest.raises(CommandError, match="already running"):
        call_command("train_model")
