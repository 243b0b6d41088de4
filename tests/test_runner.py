"""./frid run: everything up on a fresh data directory, the admin answering, all down on Ctrl-C;
a child that exits started again."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from frid_site import runner

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_SLEEP = time.sleep  # the supervision tests replace time.sleep


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_until_ready(environment: dict, log: Path, address: str):
    """Start the runner and wait until it announces the URL; returns (process, its children)."""
    with open(log, "w") as output:
        runner = subprocess.Popen([sys.executable, "-m", "frid_site.runner"], cwd=PROJECT_ROOT,
                                  env=environment, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while f"FRID is running at http://{address}/" not in log.read_text():
        if runner.poll() is not None or time.monotonic() > deadline:
            stop(runner, log)
            pytest.fail(f"the runner did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(1)
    return runner, psutil.Process(runner.pid).children(recursive=True)


def stop(runner: subprocess.Popen, log: Path) -> None:
    if runner.poll() is None:
        runner.send_signal(signal.SIGINT)
    assert runner.wait(90) == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_the_runner_starts_frid_on_a_fresh_machine_and_stops_everything_on_ctrl_c(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    environment.update(FRID_DATA_DIR=str(tmp_path / "var"), FRID_ADDRESS=address, PYTHONUNBUFFERED="1")
    log = tmp_path / "first.log"
    runner, children = run_until_ready(environment, log, address)
    try:
        assert len(children) >= 3  # worker, beat, web (and their own children)
        with urllib.request.urlopen(f"http://{address}/admin/login/", timeout=10) as page:
            assert page.status == 200
        text = log.read_text()
        assert "Imported dlib-resnet-v1" in text
        assert "Created the superuser 'admin' with password" in text
        assert (tmp_path / "var" / "models" / "dlib-resnet-v1.keras").is_file()
    finally:
        stop(runner, log)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert "Stopping the embedded PostgreSQL" in log.read_text()

    # Again on the same data directory: what is there is reused, nothing is made twice.
    log = tmp_path / "second.log"
    runner, _ = run_until_ready(environment, log, address)
    stop(runner, log)
    text = log.read_text()
    assert "dlib-resnet-v1 is already imported" in text
    assert "Created the superuser" not in text


class Ticks:
    """time.sleep for supervise(): counts its polls and stops it (as Ctrl-C would) after ``limit``."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def __call__(self, seconds: float) -> None:
        self.count += 1
        if self.count == self.limit:  # once: the clean-up afterwards sleeps too
            raise runner.Stop()
        REAL_SLEEP(min(seconds, 0.05))


def test_the_runner_starts_again_a_child_that_was_killed(monkeypatch, caplog):
    monkeypatch.setattr(runner, "child_commands", lambda: {"worker": [sys.executable, "-c", "import time; time.sleep(60)"]})
    monkeypatch.setattr(runner, "web_server_answers", lambda: False)
    children = [("worker", runner.start_child("worker"))]
    first = children[0][1]
    first.kill()
    first.wait()
    monkeypatch.setattr(runner.time, "sleep", Ticks(limit=20))
    try:
        with caplog.at_level("WARNING", logger="frid_site.runner"), pytest.raises(runner.Stop):
            runner.supervise(children)
        (name, second), = children
        assert second is not first and second.poll() is None
        assert f"worker exited with code -{signal.SIGKILL}; starting it again" in caplog.text
    finally:
        runner.stop_children(children)


def test_the_runner_stops_frid_when_a_child_keeps_exiting(monkeypatch, caplog):
    monkeypatch.setattr(runner, "child_commands", lambda: {"web": [sys.executable, "-c", "raise SystemExit(3)"]})
    monkeypatch.setattr(runner, "web_server_answers", lambda: False)
    monkeypatch.setattr(runner, "RESTARTS_ALLOWED", 2)
    children = [("web", runner.start_child("web"))]
    # Enough polls for three short-lived processes to exit; a fourth start would be a failure.
    monkeypatch.setattr(runner.time, "sleep", Ticks(limit=2000))
    with caplog.at_level("WARNING", logger="frid_site.runner"):
        assert runner.supervise(children) == 1
    assert caplog.text.count("web exited with code 3; starting it again") == 2
    assert "web exited with code 3, 3 times within 600 s; stopping FRID" in caplog.text
