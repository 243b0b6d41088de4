"""/metrics in Prometheus's text format: verify latency and decisions from the audit, queue depth per
Celery queue, templates and training runs by status, the active version; loopback or a bearer token."""

import re

import pytest
from django.test import override_settings

from frid_site import health
from frid_site.celery import app
from identity.models import Employee, FaceTemplate, VerificationAttempt
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

Decision, Mode = VerificationAttempt.Decision, VerificationAttempt.Mode
SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """Samples by (name, sorted labels), checking every line is a comment or a well-formed sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = tuple(sorted(re.findall(r'([a-z_]+)="([^"]*)"', labels or "")))
        samples[(name, pairs)] = float(value)
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def reachable_broker(celery_broker, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", celery_broker)
    return celery_broker


@pytest.fixture
def audit():
    for latency in (40, 90, 900, 3500):
        VerificationAttempt.objects.create(mode=Mode.KIOSK, decision=Decision.VERIFIED, latency_ms=latency)
    VerificationAttempt.objects.create(mode=Mode.KIOSK, decision=Decision.BUSY, latency_ms=5010)
    VerificationAttempt.objects.create(mode=Mode.PERSONAL, decision=Decision.REFUSED)  # no latency recorded


def test_metrics_give_the_verify_latency_histogram_and_decisions_from_the_audit(client, audit, reachable_broker):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.content.decode()
    assert "# TYPE frid_verify_latency_seconds histogram" in text
    assert "# TYPE frid_verify_decisions_total counter" in text
    samples = parse(text)
    verified = {"mode": "kiosk", "decision": "verified"}
    bucket = "frid_verify_latency_seconds_bucket"
    assert value(samples, bucket, **verified, le="0.05") == 1
    assert value(samples, bucket, **verified, le="0.1") == 2
    assert value(samples, bucket, **verified, le="1") == 3
    assert value(samples, bucket, **verified, le="3") == 3
    assert value(samples, bucket, **verified, le="4") == 4
    assert value(samples, bucket, **verified, le="+Inf") == 4
    assert value(samples, "frid_verify_latency_seconds_count", **verified) == 4
    assert value(samples, "frid_verify_latency_seconds_sum", **verified) == pytest.approx(4.53)
    assert value(samples, bucket, mode="kiosk", decision="busy", le="5") == 0
    assert value(samples, bucket, mode="kiosk", decision="busy", le="7.5") == 1
    assert value(samples, "frid_verify_decisions_total", **verified) == 4
    assert value(samples, "frid_verify_decisions_total", mode="personal", decision="refused") == 1
    # An attempt without a latency counts as a decision, not in the histogram.
    assert value(samples, "frid_verify_latency_seconds_count", mode="personal", decision="refused") == 0


def test_bucket_counts_never_decrease_from_one_bound_to_the_next(client, audit, reachable_broker):
    samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    for mode, decision in (("kiosk", "verified"), ("kiosk", "busy"), ("personal", "refused")):
        counts = [value(samples, "frid_verify_latency_seconds_bucket", mode=mode, decision=decision,
                        le=health._number(bound)) for bound in health.LATENCY_BUCKETS]
        assert counts == sorted(counts)


def test_metrics_give_queue_depths_templates_training_runs_and_the_active_version(client, reachable_broker):
    redis = app.connection_for_read().default_channel.client
    try:
        redis.delete(*health.QUEUES)
        redis.lpush("embeddings", "a", "b", "c")
        redis.lpush("bulk", "d")
        ModelVersion.objects.filter(is_active=True).update(is_active=False)  # the run's imported base, if any
        ModelVersion.objects.create(name="base-test", file="x.keras", sha256="0" * 64, threshold=0.5, is_active=True)
        employee = Employee.objects.create(employee_number="E1", name="Someone")
        FaceTemplate.objects.create(employee=employee, status=FaceTemplate.Status.PENDING)
        FaceTemplate.objects.create(employee=employee, status=FaceTemplate.Status.PENDING)
        FaceTemplate.objects.create(employee=employee, status=FaceTemplate.Status.REJECTED, reason="No face found.")
        TrainingRun.objects.create(status=TrainingRun.Status.FAILED)

        samples = parse(client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    finally:
        redis.delete(*health.QUEUES)

    assert value(samples, "frid_broker_up") == 1
    assert {queue: value(samples, "frid_queue_messages", queue=queue) for queue in health.QUEUES} == {
        "verify": 0, "embeddings": 3, "bulk": 1, "training": 0,
    }
    assert value(samples, "frid_face_templates", status="pending") == 2
    assert value(samples, "frid_face_templates", status="rejected") == 1
    assert value(samples, "frid_face_templates", status="ready") == 0
    assert value(samples, "frid_training_runs", status="failed") == 1
    assert value(samples, "frid_training_runs", status="running") == 0
    assert value(samples, "frid_model_version_info", version="base-test") == 1


def test_metrics_say_the_broker_is_down_and_still_answer(client, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert value(samples, "frid_broker_up") == 0
    assert not [key for key in samples if key[0] == "frid_queue_messages"]


def test_without_a_token_only_loopback_clients_that_did_not_come_through_the_proxy_may_read(client, reachable_broker):
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200

    elsewhere = client.get("/metrics", REMOTE_ADDR="10.0.0.7")
    proxied = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    for response in (elsewhere, proxied):
        assert response.status_code == 403
        assert response.content.decode().strip() == health.METRICS_LOOPBACK_ONLY


@override_settings(FRID_METRICS_TOKEN="s3cret-metrics-token")
def test_with_a_token_set_the_bearer_token_is_needed_from_anywhere(client, reachable_broker):
    good = client.get("/metrics", REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    wrong = client.get("/metrics", REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer guess")
    none_from_loopback = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert good.status_code == 200
    for response in (wrong, none_from_loopback):
        assert response.status_code == 401
        assert response.content.decode().strip() == health.METRICS_TOKEN_NEEDED
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "s3cret" not in wrong.content.decode()


def test_the_metrics_token_may_come_from_a_file(tmp_path):
    from tests.test_settings import settings_in_subprocess

    (tmp_path / "token").write_text("from-a-file\n")
    values = settings_in_subprocess(["FRID_METRICS_TOKEN"], FRID_DATA_DIR=str(tmp_path / "data"),
                                    DATABASE_URL="postgres://x@127.0.0.1/x",
                                    FRID_METRICS_TOKEN="", FRID_METRICS_TOKEN_FILE=str(tmp_path / "token"))
    assert values["FRID_METRICS_TOKEN"] == "from-a-file"
