"""/health/ and /ready/ for a load balancer: liveness never touches the database; readiness says, check
by check and in words, whether the database (migrated), the broker and an active model version answer."""

import json

import pytest
from django.db import connection
from django.test import Client, override_settings

from frid_site import health
from frid_site.celery import app
from tests.database_outage import database_outage
from training.models import ModelVersion

# Nothing listens on port 1: connections are refused at once.
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def active_version(db):
    # The stand-in replaces the run's imported base (one version may be active), rolled back after.
    ModelVersion.objects.filter(is_active=True).update(is_active=False)
    return ModelVersion.objects.create(name="base-test", file="base-test.keras", sha256="0" * 64, threshold=0.5,
                                       is_active=True)


@pytest.fixture
def reachable_broker(celery_broker, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", celery_broker)
    return celery_broker


def test_health_answers_200_without_the_database(client):
    # No db fixture: any query would raise "Database access not allowed".
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_health_answers_200_while_the_database_is_down(client):
    with database_outage(connection.settings_dict):
        response = client.get("/health/")
    assert response.status_code == 200


def test_ready_is_200_when_the_database_the_broker_and_a_model_version_answer(client, active_version, reachable_broker):
    response = client.get("/ready/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ready"] is True
    assert body["message"] == health.READY
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True, "broker": True, "model_version": True,
    }
    assert body["checks"]["model_version"]["message"] == "The active model version is base-test."


def test_ready_is_503_naming_the_broker_when_it_cannot_be_reached(client, active_version, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", UNREACHABLE_BROKER)

    response = client.get("/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["broker"] == {"ok": False, "message": "The task broker (Redis or RabbitMQ) cannot be reached."}
    assert body["checks"]["database"]["ok"] is True
    assert "The task broker (Redis or RabbitMQ) cannot be reached." in body["message"]
    assert "127.0.0.1" not in response.content.decode()  # no address of any server in the answer


def test_ready_is_503_when_no_model_version_is_active(client, db, reachable_broker):
    ModelVersion.objects.filter(is_active=True).update(is_active=False)  # the run's imported base, if any
    response = client.get("/ready/")

    assert response.status_code == 503
    assert response.json()["checks"]["model_version"] == {
        "ok": False, "message": "No model version is active: run `python manage.py import_base_model`.",
    }


@pytest.mark.django_db(transaction=True)
def test_ready_is_503_in_words_when_the_database_does_not_answer(client, reachable_broker):
    with database_outage(connection.settings_dict):
        response = client.get("/ready/")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "message": "The database does not answer."}
    assert checks["model_version"]["ok"] is False
    assert checks["broker"]["ok"] is True


def test_ready_is_503_when_a_migration_is_not_applied(client, active_version, reachable_broker, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)

    class OneMigrationLeft:
        def __init__(self, connection):
            self.loader = type("Loader", (), {"graph": type("Graph", (), {"leaf_nodes": lambda self: []})()})()

        def migration_plan(self, targets):
            return [("identity", "9999_future")]

    monkeypatch.setattr("django.db.migrations.executor.MigrationExecutor", OneMigrationLeft)

    response = client.get("/ready/")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["message"] == (
        "The database answers, but 1 migration(s) are not applied: run `python manage.py migrate`."
    )


@pytest.mark.parametrize("path", ["/health/", "/ready/", "/metrics"])
def test_probes_over_plain_http_are_not_redirected_to_https(path, db, reachable_broker):
    with override_settings(SECURE_SSL_REDIRECT=True):
        plain = Client()  # its middleware is built inside the override
        response = plain.get(path, REMOTE_ADDR="127.0.0.1")
        other = plain.get("/kiosk/")
    assert response.status_code in (200, 503), (response.status_code, response.get("Location"))
    assert other.status_code == 301  # the rest of the site still is


def test_ready_needs_no_login_and_refuses_other_methods(client, active_version, reachable_broker):
    assert client.post("/ready/").status_code == 405
    assert client.post("/health/").status_code == 405
    body = json.loads(client.get("/ready/").content)
    assert set(body) == {"ready", "message", "checks"}
