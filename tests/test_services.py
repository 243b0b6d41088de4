import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from frid_site import services

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_data_dir():
    """An empty data directory under the test one, not under /tmp: pytest keeps its temporary
    directories private to root, and the embedded server runs as another user when root."""
    path = settings.FRID_DATA_DIR / "scratch" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    services.stop_all(path)
    shutil.rmtree(path)


# PostgreSQL ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_embedded_database_is_postgresql_18():
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        version = int(cursor.fetchone()[0])
    assert 180000 <= version < 190000


@pytest.mark.django_db
def test_pgvector_measures_the_euclidean_distance_between_vectors():
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
        # Distance between (1, 2) and (1, 3) is sqrt(0² + 1²) = 1.
        cursor.execute("SELECT '[1,2]'::vector <-> '[1,3]'::vector")
        assert cursor.fetchone()[0] == 1.0
        cursor.execute("SELECT '[0,0]'::vector <-> '[3,4]'::vector")
        assert cursor.fetchone()[0] == 5.0


def test_the_settings_point_at_the_embedded_server_which_holds_database_frid():
    database = settings.DATABASES["default"]  # NAME is this run's test database
    running = services.running_postmaster(settings.FRID_DATA_DIR)
    assert running is not None
    assert (database["HOST"], database["PORT"], database["USER"]) == (
        str(running.socket_dir), str(running.port), "postgres"
    )
    with psycopg.connect(host=database["HOST"], port=database["PORT"], user="postgres", dbname="frid") as frid:
        assert frid.execute("SELECT current_database()").fetchone()[0] == "frid"


def test_starting_again_attaches_quickly_to_the_running_server():
    before = services.running_postmaster(settings.FRID_DATA_DIR).pid
    started = time.monotonic()
    services.start_postgres(settings.FRID_DATA_DIR)
    assert time.monotonic() - started < 2
    assert services.running_postmaster(settings.FRID_DATA_DIR).pid == before


def test_a_fresh_data_directory_gets_a_server_with_database_frid_that_stops_fast(fresh_data_dir):
    connection_parameters = services.start_postgres(fresh_data_dir)
    pid = services.running_postmaster(fresh_data_dir).pid
    with psycopg.connect(**connection_parameters) as database:
        assert database.execute("SELECT current_database()").fetchone()[0] == "frid"
    assert services.start_postgres(fresh_data_dir) == connection_parameters
    assert services.running_postmaster(fresh_data_dir).pid == pid
    started = time.monotonic()
    services.stop_postgres(fresh_data_dir)
    assert time.monotonic() - started < 10
    assert not services.postgres_is_running(fresh_data_dir)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # And it comes back on the same files, in the same process.
    services.start_postgres(fresh_data_dir)
    assert services.postgres_is_running(fresh_data_dir)


def test_processes_starting_at_once_on_fresh_files_share_one_server(fresh_data_dir):
    script = (
        "import sys; from pathlib import Path; from frid_site import services; "
        "services.start_postgres(Path(sys.argv[1])); "
        "print(services.running_postmaster(Path(sys.argv[1])).pid)"
    )
    starters = [
        subprocess.Popen([sys.executable, "-c", script, str(fresh_data_dir)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    pids = {int(starter.communicate(timeout=120)[0]) for starter in starters}
    assert pids == {services.running_postmaster(fresh_data_dir).pid}
    postmasters = [
        process for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "postgres" and process.ppid() == 1
        and str(fresh_data_dir) in " ".join(process.info["cmdline"] or [])
    ]
    assert len(postmasters) == 1


def test_a_database_url_replaces_the_embedded_server(tmp_path):
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={
            **os.environ,
            "FRID_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    database = json.loads(result.stdout)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"], database["USER"]) == (
        "127.0.0.1", "5432", "test", "postgres"
    )
    assert not (tmp_path / "postgres").exists(), "no embedded server may start when DATABASE_URL is set"


# Redis -------------------------------------------------------------------------


def test_the_broker_url_names_the_embedded_redis_socket():
    # In a fresh process: tests of workers point this one's settings at brokers of their own.
    script = "import django; django.setup(); from django.conf import settings; print(settings.CELERY_BROKER_URL)"
    environment = {name: value for name, value in os.environ.items() if name != "CELERY_BROKER_URL"}
    result = subprocess.run([sys.executable, "-c", script], env=environment, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True)
    socket = services.redis_socket(settings.FRID_DATA_DIR)
    assert result.stdout.strip() == f"redis+socket://{socket}"


def test_the_embedded_redis_answers_ping(celery_broker):
    assert services.redis_client(settings.FRID_DATA_DIR).ping() is True


def test_the_embedded_redis_keeps_a_key_across_a_restart(tmp_path):
    value = uuid.uuid4().hex
    assert services.start_redis(tmp_path) is True
    try:
        services.redis_client(tmp_path).set("frid:test", value)
        services.stop_redis(tmp_path)
        assert not services.redis_is_running(tmp_path)
        services.start_redis(tmp_path)
        assert services.redis_client(tmp_path).get("frid:test") == value.encode()
    finally:
        services.stop_redis(tmp_path)


def test_starting_redis_twice_keeps_one_server(tmp_path):
    assert services.start_redis(tmp_path) is True
    try:
        first_pid = services.redis_client(tmp_path).info("server")["process_id"]
        assert services.start_redis(tmp_path) is False
        assert services.redis_client(tmp_path).info("server")["process_id"] == first_pid
    finally:
        services.stop_redis(tmp_path)


def test_a_socket_path_too_long_for_unix_moves_to_the_temp_directory(tmp_path):
    deep = tmp_path / ("d" * 120)
    socket = services.redis_socket(deep)
    assert len(str(socket)) <= services.UNIX_SOCKET_PATH_LIMIT
    assert socket == services.redis_socket(deep)
    assert socket != services.redis_socket(tmp_path / ("e" * 120))


def test_the_embedded_redis_listens_on_no_tcp_port(tmp_path):
    services.start_redis(tmp_path)
    try:
        assert services.redis_client(tmp_path).config_get("port") == {"port": "0"}
    finally:
        services.stop_redis(tmp_path)


# Celery through the embedded Redis ---------------------------------------------------


def run_a_task_through(broker: str) -> None:
    """Start a FRID worker on ``broker`` (as CELERY_BROKER_URL names it) and have it run a task."""
    from celery import Celery

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "frid_site", "worker", "--pool", "solo",
         "--queues", "embeddings", "--loglevel", "WARNING"],
        env={**os.environ, "CELERY_BROKER_URL": broker},
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        client = Celery("client", broker=broker, backend=broker if broker.startswith("redis") else "rpc://")
        client.conf.task_default_queue = "embeddings"
        # A built-in task, so that the test depends on no app's tasks; it returns None. FRID's
        # own tasks keep no results (CELERY_TASK_IGNORE_RESULT): this one asks for its result.
        result = client.send_task("celery.backend_cleanup", ignore_result=False)
        assert result.get(timeout=60) is None
        assert result.status == "SUCCESS"
    finally:
        worker.terminate()
        worker.wait(30)


def test_a_celery_worker_runs_a_task_and_stores_its_result_through_the_embedded_redis(tmp_path):
    # A Redis of this test's own: a worker on the shared test broker could take another run's tasks.
    services.start_redis(tmp_path)
    try:
        run_a_task_through(services.redis_url(tmp_path))
    finally:
        services.stop_redis(tmp_path)


@pytest.mark.parametrize("broker", [
    f"redis://127.0.0.1:6379/{os.getpid() % 16}",
    "amqp://guest:guest@127.0.0.1:5672//",
])
def test_a_celery_worker_uses_the_broker_server_that_the_variable_names(broker):
    # The machine's own Redis and RabbitMQ (CI has both): FRID needs neither, but must work with them.
    run_a_task_through(broker)
