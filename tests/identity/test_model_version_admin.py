"""Model versions in the admin: read-only (thresholds come from calibration, with who and when),
activation and roll-back as explicit, audited actions for those allowed to."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from identity import admin_versions, roles
from training.models import ModelVersion, ModelVersionEvent

pytestmark = pytest.mark.django_db
Action = ModelVersionEvent.Action


@pytest.fixture
def hr(client, django_user_model):
    roles.ensure_groups()
    user = django_user_model.objects.create_user("hr", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.HR))
    client.force_login(user)
    return user


def version(name: str, **fields) -> ModelVersion:
    if fields.get("is_active"):  # the run's imported base version may be the active one
        ModelVersion.objects.filter(is_active=True).update(is_active=False)
    return ModelVersion.objects.create(name=name, file=f"{name}.keras", sha256="0" * 64, threshold=0.5, **fields)


@pytest.fixture
def switches(monkeypatch):
    sent = []
    def send(version, by=None, action="activated", run=None):
        sent.append((version.name, by.username, action))
        return True

    monkeypatch.setattr(admin_versions.tasks, "send_switch", send)
    return sent


def test_a_version_cannot_be_edited_in_the_admin(client, hr):
    base = version("base", is_active=True)
    url = reverse("admin:training_modelversion_change", args=[base.pk])

    page = client.get(url).content.decode()
    assert 'name="threshold"' not in page and 'name="_save"' not in page
    assert client.post(url, {"threshold": "0.9"}).status_code == 403
    base.refresh_from_db()
    assert base.threshold == 0.5


def test_calibration_records_the_threshold_with_who_and_when():
    base = version("base")
    base.save_calibration({"threshold": 0.61234, "threshold_source": "calibrated on test pairs"}, by_name="calibrate_model")

    event = base.events.get()
    assert (event.action, event.by_name, event.details["threshold"]) == (Action.CALIBRATED, "calibrate_model", 0.6123)


def test_hr_activates_a_calibrated_version_after_confirming(client, hr, switches):
    version("base", is_active=True)
    candidate = version("candidate", metrics={"gate": {"accepted": True, "reasons": ["better"]}})
    candidate.record(Action.CALIBRATED, by_name="training run 1")
    url = reverse("admin:training_modelversion_switch", args=[candidate.pk, Action.ACTIVATED])

    assert "Activate this version" in client.get(reverse("admin:training_modelversion_change", args=[candidate.pk])).content.decode()
    assert "search uses <strong>base</strong>" in client.get(url).content.decode().replace("Search", "search")
    assert switches == []  # a GET only asks
    client.post(url)
    assert switches == [("candidate", "hr", Action.ACTIVATED)]


def test_when_the_broker_is_unreachable_activating_says_so_and_changes_nothing(client, hr, monkeypatch):
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(admin_versions.tasks.switch_version, "apply_async", refuse)
    base = version("base", is_active=True)
    candidate = version("candidate", metrics={"gate": {"accepted": True, "reasons": ["better"]}})
    candidate.record(Action.CALIBRATED, by_name="training run 1")
    url = reverse("admin:training_modelversion_switch", args=[candidate.pk, Action.ACTIVATED])

    page = client.post(url, follow=True).content.decode()
    assert "the task broker is unreachable" in page
    assert ModelVersion.objects.active() == base


def test_a_version_the_gate_rejected_cannot_be_activated(client, hr, switches):
    version("base", is_active=True)
    rejected = version("rejected", metrics={"gate": {"accepted": False, "reasons": ["validation fell"]}})
    rejected.record(Action.CALIBRATED)

    response = client.post(reverse("admin:training_modelversion_switch", args=[rejected.pk, Action.ACTIVATED]), follow=True)
    assert "rejected by the quality gate" in response.content.decode()
    assert switches == []


def test_a_version_that_was_active_before_offers_a_roll_back(client, hr, switches):
    old = version("old")
    old.activate(by=hr)
    version("new").activate(by=hr)

    page = client.get(reverse("admin:training_modelversion_change", args=[old.pk])).content.decode()
    assert "Roll back to this version" in page
    client.post(reverse("admin:training_modelversion_switch", args=[old.pk, Action.ROLLED_BACK]))
    assert switches == [("old", "hr", Action.ROLLED_BACK)]
    assert ModelVersion.objects.get(name="new").events.get().previous == old  # who was replaced is recorded


def test_without_the_permission_there_is_no_switch(client, django_user_model, switches):
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True, is_superuser=False)
    clerk.user_permissions.add(*Permission.objects.filter(codename="view_modelversion"))
    client.force_login(clerk)
    candidate = version("candidate")
    candidate.record(Action.CALIBRATED)

    assert "Activate this version" not in client.get(reverse("admin:training_modelversion_change", args=[candidate.pk])).content.decode()
    assert client.post(reverse("admin:training_modelversion_switch", args=[candidate.pk, Action.ACTIVATED])).status_code == 403
    assert switches == []
