"""Run all of FRID on one machine: python -m frid_site.runner (or ./frid run).

Prepares the database (migrations, base model, first superuser), then runs the
embedded PostgreSQL and Redis (unless DATABASE_URL / CELERY_BROKER_URL name
servers), three Celery workers (one for live verification, one at lower CPU priority for
enrollment and bulk work, one at the lowest for training runs), Celery beat and the web server
until Ctrl-C or SIGTERM, starting again any of those that exits on its own.
"""

import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import django

logger = logging.getLogger("frid_site.runner")

# Where the web server listens; FRID_ADDRESS moves it (tests run FRID beside a running one).
ADDRESS = os.environ.get("FRID_ADDRESS", "127.0.0.1:8000")
STOP_TIMEOUT_SECONDS = 30
BULK_NICENESS = 10
TRAINING_NICENESS = 19
POLL_SECONDS = 0.5
# A child that exits is started again, unless it exited this often lately (then FRID stops).
RESTARTS_ALLOWED = 5
RESTART_WINDOW_SECONDS = 600


class Stop(Exception):
    """Raised in the main loop by SIGINT / SIGTERM."""


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frid_site.settings")
    django.setup()  # importing the settings starts or attaches to the embedded PostgreSQL
    from django.conf import settings

    from frid_site import services
    from frid_site.env import env_secret

    data_dir: Path = settings.FRID_DATA_DIR
    runner_lock = hold_runner_lock(data_dir)  # held, by staying open, until the process exits
    if runner_lock is None:
        print(f"FRID is already running on this data directory ({data_dir}).", file=sys.stderr)
        return 1
    # Each may name its server in a file instead (<NAME>_FILE), as the settings read it.
    embedded_database = env_secret("DATABASE_URL") is None
    embedded_broker = env_secret("CELERY_BROKER_URL") is None
    signal.signal(signal.SIGINT, raise_stop)
    signal.signal(signal.SIGTERM, raise_stop)
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        if embedded_database:
            services.start_postgres(data_dir)
        if embedded_broker:
            services.start_redis(data_dir)
        prepare()
        start_children(children)
        return supervise(children)
    except Stop:
        logger.info("Stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_children(children)
        if embedded_broker:
            services.stop_redis(data_dir)
        if embedded_database:
            services.stop_postgres(data_dir)


def raise_stop(signal_number: int, frame: object) -> None:
    raise Stop()


def hold_runner_lock(data_dir: Path) -> object | None:
    """An open file holding an exclusive lock on data_dir/runner.lock, or None if another runner has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    file = open(data_dir / "runner.lock", "w")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return file


def prepare() -> None:
    """Bring the database up to date; each step is idempotent."""
    from django.core.management import call_command, get_commands

    call_command("migrate", interactive=False, verbosity=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    if "import_base_model" in get_commands():
        # A separate process, so that TensorFlow is not kept in memory by the supervisor.
        subprocess.run([sys.executable, "manage.py", "import_base_model"], check=True, cwd=project_root())
    else:
        logger.warning("There is no import_base_model command yet; starting without a base model")
    create_first_superuser()


def create_first_superuser() -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return
    username = os.environ.get("FRID_ADMIN_USERNAME") or "admin"
    email = os.environ.get("FRID_ADMIN_EMAIL") or ""
    password = os.environ.get("FRID_ADMIN_PASSWORD")
    if password:
        users.objects.create_superuser(username=username, email=email, password=password)
        print(f"Created the superuser {username!r} with the password from FRID_ADMIN_PASSWORD.", flush=True)
        return
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser(username=username, email=email, password=password)
    print(f"Created the superuser {username!r} with password {password!r} (shown only this once).", flush=True)


def child_commands() -> dict[str, list[str]]:
    """What each child runs, by name."""
    python = sys.executable
    return {
        # Live checks only, with the network loaded ahead of the first one: kiosks never wait
        # behind enrollment or imports.
        "verify-worker": [python, "-m", "celery", "-A", "frid_site", "worker",
                          "--queues", "verify", "--concurrency", "1", "--pool", "prefork",
                          "--hostname", "verify@%h", "--loglevel", "INFO"],
        # Enrollment photos, bulk imports and re-embedding at a lower CPU priority, so that a
        # 1,000-photo import leaves the cores to the verify worker whenever a kiosk asks.
        "worker": ["nice", "-n", str(BULK_NICENESS), python, "-m", "celery", "-A", "frid_site", "worker",
                   "--queues", "embeddings,bulk", "--concurrency", "1",
                   "--hostname", "frid@%h", "--loglevel", "INFO"],
        # Training runs at the lowest priority, each in a fresh process (TensorFlow holds its memory
        # until its process exits): kiosks and enrollment always come first.
        "training-worker": ["nice", "-n", str(TRAINING_NICENESS), python, "-m", "celery", "-A", "frid_site",
                            "worker", "--queues", "training", "--concurrency", "1", "--pool", "prefork",
                            "--max-tasks-per-child", "1", "--hostname", "training@%h", "--loglevel", "INFO"],
        "beat": [python, "-m", "celery", "-A", "frid_site", "beat", "--loglevel", "INFO"],
        # A production server (two processes for two cores); WhiteNoise serves the static files.
        "web": [python, "-m", "gunicorn", "frid_site.wsgi", "--bind", ADDRESS, "--workers", "2",
                "--timeout", "120", "--access-logfile", "-"],
    }


def start_children(children: list[tuple[str, subprocess.Popen]]) -> None:
    """Start the workers, beat and web server, appending each to children as soon as it runs."""
    for name in child_commands():
        children.append((name, start_child(name)))


def start_child(name: str) -> subprocess.Popen:
    # A group of its own: the terminal's Ctrl-C reaches only the runner, which stops each child in order.
    process = subprocess.Popen(child_commands()[name], cwd=project_root(), process_group=0)
    logger.info("Started %s (pid %s)", name, process.pid)
    return process


def supervise(children: list[tuple[str, subprocess.Popen]]) -> int:
    """Announce the URL once the web server answers, and start again a child that exits (a worker
    killed by the kernel for memory, say): what it was doing is requeued by FRID itself. A child
    that keeps exiting (RESTARTS_ALLOWED times within RESTART_WINDOW_SECONDS) is a fault no
    restart mends: then return, so that the caller stops the rest. SIGINT / SIGTERM raise Stop instead."""
    announced = False
    restarts: dict[str, list[float]] = {}
    while True:
        for index, (name, process) in enumerate(children):
            code = process.poll()
            if code is None:
                continue
            now = time.monotonic()
            recent = [moment for moment in restarts.get(name, []) if now - moment < RESTART_WINDOW_SECONDS]
            if len(recent) >= RESTARTS_ALLOWED:
                logger.error("%s exited with code %s, %s times within %s s; stopping FRID",
                             name, code, len(recent) + 1, RESTART_WINDOW_SECONDS)
                return 1
            logger.warning("%s exited with code %s; starting it again", name, code)
            signal_group(process, signal.SIGKILL)  # what is left of its group (a worker's pool child)
            restarts[name] = [*recent, now]
            children[index] = (name, start_child(name))
        if not announced and web_server_answers():
            print(f"\nFRID is running at http://{ADDRESS}/ (Ctrl-C to stop)\n", flush=True)
            announced = True
        time.sleep(POLL_SECONDS)


def web_server_answers() -> bool:
    host, port = ADDRESS.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def stop_children(children: list[tuple[str, subprocess.Popen]]) -> None:
    """The web server and beat first, the workers last; each group gets a grace period, then SIGKILL."""
    for name, process in reversed(children):
        if process.poll() is not None:
            continue
        # SIGQUIT makes the worker cancel (and so requeue) tasks still running after its soft shutdown timeout.
        stop_signal = signal.SIGQUIT if name.endswith("worker") else signal.SIGTERM
        signal_group(process, stop_signal)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %s s; killing it", name, STOP_TIMEOUT_SECONDS)
            signal_group(process, signal.SIGKILL)
            process.wait()
        logger.info("Stopped %s", name)


def signal_group(process: subprocess.Popen, signal_number: int) -> None:
    try:
        os.killpg(process.pid, signal_number)
    except ProcessLookupError:
        pass


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


if __name__ == "__main__":
    sys.exit(main())
