"""Training runs in the admin: "train now", the schedule's link, a run's page with its progress,
figures and plots, and "retry" for a failed run."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from identity import roles
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
Status = TrainingRun.Status
FIGURES = {"tar_at_far_1e-3": 0.9, "eer": 0.02, "images": 40, "identities": 10, "genuine_pairs": 60,
           "impostor_pairs": 720, "roc": {"far": [1e-3, 1e-2, 1.0], "tar": [0.9, 0.95, 1.0]}}


@pytest.fixture
def hr(client, django_user_model):
    roles.ensure_groups()
    user = django_user_model.objects.create_user("hr", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.HR))
    client.force_login(user)
    return user


def test_train_now_queues_one_run_and_shows_its_page(client, hr, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = client.post(reverse("admin:training_trainingrun_train_now"), follow=True)
        client.post(reverse("admin:training_trainingrun_train_now"))  # again, while it is queued

    run = TrainingRun.objects.get()
    assert (run.status, run.trigger, run.created_by) == (Status.QUEUED, TrainingRun.Trigger.ADMIN, hr)
    assert len(sent) == 1  # one task, sent once the run is committed
    page = response.content.decode()
    assert "queued" in page and reverse("admin:training_trainingrun_status", args=[run.pk]) in page


def test_the_run_list_links_the_schedule(client, hr):
    page = client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "Train now" in page
    assert "change when runs happen" in page and "(off)" in page  # the migration's disabled schedule


def test_a_finished_runs_page_shows_figures_plots_and_the_verdict(client, hr):
    run = TrainingRun.objects.create(
        status=Status.REJECTED, losses=[{"epoch": 1, "loss": 0.2, "validation_tar": 0.8}, {"epoch": 2, "loss": 0.1, "validation_tar": 0.7}],
        metrics_before={"validation": FIGURES, "reference": FIGURES},
        metrics_after={"validation": {**FIGURES, "tar_at_far_1e-3": 0.5}, "reference": FIGURES},
        gate={"accepted": False, "reasons": ["Validation fell from 90.00% to 50.00%."]},
    )
    page = client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()

    assert "The gate rejected the candidate." in page and "Validation fell" in page
    assert "90.00%" in page and "50.00%" in page
    for plot in ("losses", "roc"):
        response = client.get(reverse(f"admin:training_trainingrun_{plot}", args=[run.pk]))
        assert response["Content-Type"] == "image/png" and response.content.startswith(b"\x89PNG")


def test_a_failed_run_is_retried_as_a_new_run_with_its_parameters(client, hr, django_capture_on_commit_callbacks):
    failed = TrainingRun.objects.create(status=Status.FAILED, parameters={"public": "/faces", "reference": "", "training": {}},
                                        error="The training worker stopped.")
    assert "Retry" in client.get(reverse("admin:training_trainingrun_change", args=[failed.pk])).content.decode()

    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("admin:training_trainingrun_retry", args=[failed.pk]))

    again = TrainingRun.objects.exclude(pk=failed.pk).get()
    assert again.status == Status.QUEUED and again.parameters["public"] == "/faces"


def test_someone_without_the_permission_cannot_train(client, django_user_model):
    auditor = django_user_model.objects.create_user("auditor", password="x", is_staff=True)
    client.force_login(auditor)
    assert client.post(reverse("admin:training_trainingrun_train_now")).status_code == 403
    assert not TrainingRun.objects.exists()
