"""Real Celery workers for the identity tests: a Redis of this run's own and worker subprocesses
that use the test database."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection

from frid_site import services
from frid_site.celery import app

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
WORKER_LOG_TAIL_CHARACTERS = 6000
# Starting a worker imports Django and Celery; its first task also imports TensorFlow and loads
# the network, which takes tens of seconds on a busy two-core machine.
WORKER_START_TIMEOUT_SECONDS = 60
SECONDS_BETWEEN_CHECKS = 0.1
# What a worker's log (--loglevel INFO) says when it is ready, when its requeue at start is done,
# and which templates each of its embedding tasks processed.
WORKER_READY = re.compile(r"\S+@\S+ ready\.")
REQUEUED = re.compile(r"Task identity\.tasks\.requeue_pending_templates\[[^\]]+\] succeeded")
EMBEDDED = re.compile(r"Task identity\.tasks\.embed_templates\[[^\]]+\] succeeded in [\d.]+s: \{'processed': \[([\d, ]*)\]\}")


def embedded_by(log: str) -> set[int]:
    """The ids of the templates that the worker whose log this is embedded."""
    return {int(number) for match in EMBEDDED.finditer(log) for number in match.group(1).replace(",", " ").split()}


class Broker:
    """This run's own Redis, so that concurrent test runs never take each other's tasks."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.url = services.redis_url(data_dir)

    def start(self) -> None:
        services.start_redis(self.data_dir)

    def stop(self) -> None:
        services.stop_redis(self.data_dir)

    def client(self):
        return services.redis_client(self.data_dir)

    def unacknowledged_messages(self) -> int:
        """Messages delivered to a worker and not acknowledged yet (kombu's "unacked" hash)."""
        return self.client().hlen("unacked")


class ServerBroker:
    """A broker server the machine itself runs (RabbitMQ, or Redis on a db number of its own),
    named by its URL. Other programs may share the server: only FRID's queues are purged (Redis:
    only the URL's own db is flushed, never the whole server)."""

    QUEUES = ("verify", "embeddings", "bulk", "training")

    def __init__(self, url: str):
        self.url = url
        self.is_redis = url.startswith(("redis://", "rediss://"))

    def unreachable(self) -> str | None:
        """Why the server cannot be used, or None when it answers."""
        from kombu import Connection

        try:
            with Connection(self.url, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
                if self.is_redis:
                    conn.default_channel.client.ping()
        except Exception as error:
            return f"{self.url.split('@')[-1]} does not answer ({type(error).__name__}: {error})"
        return None

    def purge(self) -> None:
        """Empty FRID's queues on the server (Redis: FLUSHDB of the URL's db, unacknowledged tasks too)."""
        from kombu import Connection

        if self.is_redis:
            import redis

            redis.Redis.from_url(self.url).flushdb()
            return
        with Connection(self.url, connect_timeout=3) as conn:
            for queue in self.QUEUES:
                with conn.channel() as channel:  # a purge of a missing queue closes its channel
                    try:
                        channel.queue_purge(queue)
                    except conn.channel_errors:
                        pass

    def waiting(self, queue: str) -> int:
        """Messages waiting in the queue (as /metrics reports them)."""
        from frid_site import health

        with celery_pointed_at(self.url):
            depths = health.queue_depths()
        assert depths is not None, f"{self.url.split('@')[-1]} stopped answering"
        return depths[queue]


@contextmanager
def celery_pointed_at(url: str) -> Iterator[None]:
    """This process's Celery app (its sends and the broker its checks read) on ``url`` meanwhile."""
    saved = settings.CELERY_BROKER_URL, app.conf.broker_url, app.conf.result_backend
    result_backend = url if url.startswith(("redis://", "rediss://")) else "rpc://"  # as settings.py chooses
    _point_celery_at(url, url, result_backend)
    try:
        yield
    finally:
        _point_celery_at(*saved)


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[Broker]:
    """A Redis started for this test run; this process and its workers send tasks to it."""
    broker = Broker(tmp_path_factory.mktemp("broker"))
    broker.start()
    saved = settings.CELERY_BROKER_URL, app.conf.broker_url, app.conf.result_backend
    _point_celery_at(broker.url, broker.url, broker.url)
    yield broker
    _point_celery_at(*saved)
    broker.stop()


def _point_celery_at(django_setting: str, broker_url: str, result_backend: str) -> None:
    settings.CELERY_BROKER_URL = django_setting
    app.conf.broker_url = broker_url
    app.conf.result_backend = result_backend
    # Connections already pooled lead to the previous broker, and the result backend, made once
    # on first use, to the previous Redis: a verification would wait there for an answer that the
    # worker sends here.
    # app.pool is kombu's pool for the URL in kombu's own registry: closing it there without
    # removing it would leave a closed pool for the next pointing at that URL, so reset the registry.
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def empty_broker(broker: Broker) -> Iterator[Broker]:
    """The run's Redis, running and holding no task left by an earlier test."""
    broker.start()
    broker.client().flushall()
    yield broker
    broker.start()  # a test that stopped it may have failed before starting it again


def database_url(database: dict) -> str:
    """A postgres:// URL (as frid_site.env.env_database reads it) for Django database settings."""
    query = dict(database.get("OPTIONS") or {})
    host = database.get("HOST") or ""
    if host.startswith("/"):
        query["host"] = host  # a unix socket directory
        host = ""
    credentials = quote(database.get("USER") or "", safe="")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"], safe="")
    port = f":{database['PORT']}" if database.get("PORT") else ""
    url = f"postgresql://{credentials}@{host}{port}/{quote(database['NAME'], safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


class Workers:
    """Celery worker subprocesses on the test database and this run's Redis; all write one log."""

    def __init__(self, broker: Broker | ServerBroker, log_path: Path):
        self.broker = broker
        self.log_path = log_path
        self.processes: list[subprocess.Popen] = []
        self.log_paths: dict[int, Path] = {}  # by worker pid: log_path unless start() was given another

    def start(self, queues: str = "embeddings,bulk", options: tuple[str, ...] = (),
              log_path: Path | None = None) -> subprocess.Popen:
        """Start a worker like production's (prefork, one process); ``queues="verify"`` for a
        verify worker, which loads the network before its first task. ``options``: more of
        celery worker's (e.g. ``("--max-tasks-per-child", "1")`` as the training worker has).
        ``log_path``: a log of this worker's own (``worker_log(process)``) instead of the shared one."""
        log_path = log_path or self.log_path
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": self.broker.url,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        command = [
            sys.executable, "-m", "celery", "-A", "frid_site", "worker",
            "-Q", queues, "-c", "1", "--pool", "prefork", "--loglevel", "INFO",
            "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
            # Talking to other workers only slows the start down; these tests run one at a time.
            "--without-gossip", "--without-mingle", "--without-heartbeat", *options,
        ]
        with open(log_path, "a") as log:
            log.write(f"\n===== worker started at {time.strftime('%H:%M:%S')} =====\n")
            log.flush()
            # A session of its own: the worker and its pool child are killed together by group.
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        self.log_paths[process.pid] = log_path
        return process

    def worker_log(self, process: subprocess.Popen) -> str:
        """Everything the worker's log file holds (the shared one, unless it was given its own)."""
        path = self.log_paths[process.pid]
        return path.read_text() if path.exists() else ""

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker's whole process group (the main process and its pool child)."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def kill_all(self) -> None:
        for process in self.processes:
            self.kill(process)

    def log(self) -> str:
        """The tail of every log the workers write (the shared one, and any of a worker's own)."""
        paths = dict.fromkeys([self.log_path, *self.log_paths.values()])
        tails = []
        for path in paths:
            text = path.read_text() if path.exists() else "(no log)"
            tails.append(text[-WORKER_LOG_TAIL_CHARACTERS:] if len(paths) == 1 else f"--- {path.name}:\n{text[-WORKER_LOG_TAIL_CHARACTERS:]}")
        return "\n".join(tails)

    def wait_until_warm(self, timeout: float = WORKER_START_TIMEOUT_SECONDS * 2) -> None:
        """Wait until a verify worker says in its log that its pool process has loaded the network."""
        from identity.tasks import WARM_MESSAGE

        self.wait_for(lambda: self.log_path.exists() and WARM_MESSAGE in self.log_path.read_text(),
                      timeout, "the verify worker to load the network")

    def start_sharing(self, count: int, queues: str, log_folder: Path, timeout: float) -> list[subprocess.Popen]:
        """Start ``count`` workers on ``queues``, each with a log of its own, and wait until every
        one is ready and has run its requeue at start (none is left pending yet), so that every
        task sent afterwards is one the workers share."""
        started = [self.start(queues, log_path=log_folder / f"worker-{number}.log") for number in range(count)]
        self.wait_for(lambda: all(WORKER_READY.search(self.worker_log(w)) for w in started),
                      timeout, f"{count} workers to start")
        self.wait_for(lambda: sum(len(REQUEUED.findall(self.worker_log(w))) for w in started) >= count,
                      timeout, f"{count} workers' requeue at start")
        return started

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until condition() holds; fail with the worker's log if it does not in time."""
        deadline = time.monotonic() + timeout
        while not condition():
            exited = [process.returncode for process in self.processes if process.poll() is not None]
            if time.monotonic() > deadline or (exited and len(exited) == len(self.processes)):
                pytest.fail(
                    f"Waited {timeout:.0f} s for {what}; it did not happen (worker exit codes: {exited}). "
                    f"The workers' log ({self.log_path}) ends with:\n{self.log()}",
                    pytrace=False,
                )
            time.sleep(SECONDS_BETWEEN_CHECKS)


@pytest.fixture
def workers(empty_broker: Broker, transactional_db, tmp_path) -> Iterator[Workers]:
    """Start workers with workers.start(); every one is killed when the test ends."""
    workers = Workers(empty_broker, tmp_path / "worker.log")
    yield workers
    workers.kill_all()
    # Shown by pytest only when the test failed.
    print(f"The workers' log ({workers.log_path}) ends with:\n{workers.log()}")
