"""FRID's workers on the machine's own broker servers, as on real servers: RabbitMQ and Redis named by
CELERY_BROKER_URL, two workers sharing the ``embeddings`` queue. Every photo uploaded is embedded,
and both workers did part of the work (each one's own log names the photos it embedded).

The servers are shared with the rest of the machine: FRID's queues are purged before and after
(on Redis, only the db number of the URL below is flushed, never the whole server), and a lock file
keeps two runs of these tests on one machine from taking each other's tasks. A server that does not
answer skips the test, or fails it when CI is set (CI's machines run both).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

from identity.models import FaceTemplate
from tests.identity.conftest import ServerBroker, Workers, celery_pointed_at, embedded_by
from tests.identity.test_tasks import FIRST_TASK_TIMEOUT_SECONDS, enrollable_photos, upload  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

RABBITMQ_URL = os.environ.get("FRID_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
# A db number of these tests' own on the machine's Redis: the only one they ever flush.
REDIS_URL = os.environ.get("FRID_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
LOCK_PATH = Path(tempfile.gettempdir()) / "frid-test-real-brokers.lock"
# Both workers load TensorFlow and the network at once, on a busy two-core machine.
BOTH_TIMEOUT_SECONDS = 2 * FIRST_TASK_TIMEOUT_SECONDS


def server(url: str) -> Iterator[ServerBroker]:
    broker = ServerBroker(url)
    reason = broker.unreachable()
    if reason:
        message = f"The machine's broker server is needed here: {reason}."
        if os.environ.get("CI"):
            pytest.fail(message + " CI's machines run RabbitMQ and Redis on 127.0.0.1.", pytrace=False)
        pytest.skip(message)
    with open(LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this machine: wait for it to finish
        broker.purge()
        try:
            with celery_pointed_at(url):
                yield broker
        finally:
            broker.purge()


@pytest.fixture
def rabbitmq() -> Iterator[ServerBroker]:
    yield from server(RABBITMQ_URL)


@pytest.fixture
def redis_server() -> Iterator[ServerBroker]:
    yield from server(REDIS_URL)


def two_workers_share_the_embeddings_queue(broker: ServerBroker, photos: list[Path], tmp_path: Path) -> None:
    workers = Workers(broker, tmp_path / "workers.log")
    try:
        first, second = workers.start_sharing(2, "embeddings,bulk", tmp_path, BOTH_TIMEOUT_SECONDS)

        with transaction.atomic():  # one commit: every task is sent at once, both workers idle
            templates = [upload(photo, f"E{index}") for index, photo in enumerate(photos)]
        ids = {template.pk for template in templates}

        def everything_embedded() -> bool:
            return not FaceTemplate.objects.filter(pk__in=ids).exclude(status=FaceTemplate.Status.READY).exists()

        workers.wait_for(everything_embedded, BOTH_TIMEOUT_SECONDS, "every photo to be embedded")

        for template in FaceTemplate.objects.filter(pk__in=ids):
            assert (template.status, template.reason) == (FaceTemplate.Status.READY, "")
            assert template.embedding is not None
        by_first, by_second = embedded_by(workers.worker_log(first)), embedded_by(workers.worker_log(second))
        assert by_first | by_second == ids
        assert by_first and by_second, (
            f"one worker did everything: the first embedded {sorted(by_first)}, the second {sorted(by_second)}"
        )
        assert broker.waiting("embeddings") == 0
    finally:
        workers.kill_all()
        print(f"The workers' logs end with:\n{workers.log()}")  # shown when the test failed


def test_two_workers_on_rabbitmq_share_the_embeddings_queue(
    rabbitmq, transactional_db, base_model_version, enrollable_photos, tmp_path  # noqa: F811
):
    two_workers_share_the_embeddings_queue(rabbitmq, enrollable_photos, tmp_path)


def test_two_workers_on_the_machines_redis_share_the_embeddings_queue(
    redis_server, transactional_db, base_model_version, enrollable_photos, tmp_path  # noqa: F811
):
    two_workers_share_the_embeddings_queue(redis_server, enrollable_photos, tmp_path)


@pytest.mark.parametrize("server_fixture", ["rabbitmq", "redis_server"])
def test_ready_and_metrics_read_the_machines_broker(server_fixture, request, client, db):
    from identity.tasks import embed_templates
    from training.models import ModelVersion

    broker: ServerBroker = request.getfixturevalue(server_fixture)
    ModelVersion.objects.filter(is_active=True).update(is_active=False)  # the run's imported base, if any
    ModelVersion.objects.create(name="base-test", file="x.keras", sha256="0" * 64, threshold=0.5, is_active=True)
    for _ in range(3):  # nobody consumes "bulk" here; the fixture purges it afterwards
        embed_templates.apply_async(args=[[]], queue="bulk")

    # The broker counts a message once it has routed it: wait for that, without a clock in the assertion.
    deadline = time.monotonic() + 30
    while broker.waiting("bulk") != 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    metrics = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    ready = client.get("/ready/")

    assert 'frid_queue_messages{queue="bulk"} 3' in metrics
    assert 'frid_queue_messages{queue="verify"} 0' in metrics
    assert "frid_broker_up 1" in metrics
    assert ready.status_code == 200, ready.json()


@pytest.mark.parametrize("server_fixture", ["rabbitmq", "redis_server"])
def test_a_kiosk_check_is_answered_by_a_verify_worker_on_the_machines_broker(
    server_fixture, request, transactional_db, base_model_version, settings, faces_dir, tmp_path
):
    """The one task whose answer is awaited: over RabbitMQ it comes back by rpc://, over Redis in Redis."""
    from identity import tasks, verification
    from identity.models import Kiosk, VerificationAttempt
    from tests.identity.real_faces import PATIENT_TIMEOUT_SECONDS, enroll, people_with_two_photos

    broker: ServerBroker = request.getfixturevalue(server_fixture)
    settings.FRID_VERIFY_TIMEOUT_SECONDS = PATIENT_TIMEOUT_SECONDS
    settings.MEDIA_ROOT = tmp_path / "media"
    [(enrolled, probe)] = people_with_two_photos(faces_dir, 1)
    employee = enroll("E1", enrolled)
    kiosk = Kiosk(name="Front door", liveness_required=False)
    kiosk.new_token()
    kiosk.save()
    workers = Workers(broker, tmp_path / "verify.log")
    try:
        workers.start(queues="verify")
        workers.wait_until_warm()

        outcome = tasks.verify(verification.Check(VerificationAttempt.Mode.KIOSK, [probe.read_bytes()] * 3, kiosk=kiosk))
    finally:
        workers.kill_all()
        print(f"The worker's log ends with:\n{workers.log()}")

    assert outcome.attempt.decision == VerificationAttempt.Decision.VERIFIED, outcome.attempt.reason
    assert outcome.as_json()["employee"] == {"employee_number": "E1", "name": employee.name}
