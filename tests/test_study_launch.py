"""Stopping a study stops its launcher's whole process group (loky workers and the jobs in
them), which a plain subprocess would leave running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pretrainlab.faults.preemption import PREEMPTED_EXIT
from pretrainlab.study.launch import run_group

# a launcher stand-in: starts a worker of its own (as loky does), records its pid, then waits
LAUNCHER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(worker.pid))
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _worker_pid(path: Path) -> int:
    deadline = time.time() + 30
    while not (path.exists() and path.read_text()):
        assert time.time() < deadline, "the launcher stand-in never started its worker"
        time.sleep(0.05)
    return int(path.read_text())


def _after_worker_starts(path: Path, action) -> threading.Thread:
    def run() -> None:
        _worker_pid(path)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_sigterm_to_the_study_stops_the_workers_and_exits_143(tmp_path):
    pid_file, before = tmp_path / "worker.pid", signal.getsignal(signal.SIGTERM)
    _after_worker_starts(pid_file, lambda: os.kill(os.getpid(), signal.SIGTERM))
    started = time.time()
    with pytest.raises(SystemExit) as stopped:
        run_group([sys.executable, "-c", LAUNCHER, str(pid_file)], dict(os.environ))
    assert stopped.value.code == PREEMPTED_EXIT
    assert time.time() - started < 60  # not the launcher's 120 s
    worker = _worker_pid(pid_file)
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the launcher's worker outlived the stopped study"
    assert signal.getsignal(signal.SIGTERM) is before  # the study's handler is gone again


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_a_launcher_that_finishes_returns_its_status():
    before = signal.getsignal(signal.SIGTERM)
    code = run_group([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ),
                     stdout=subprocess.DEVNULL)  # fmt: skip
    assert code == 3
    assert signal.getsignal(signal.SIGTERM) is before
