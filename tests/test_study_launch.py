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
from tests.conftest import TINY

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
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:  # reaped meanwhile
        return False


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


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc's parent links)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_study_stopped_by_sigterm_leaves_no_job_running(cache_dir, tmp_path):
    """The real study under joblib: SIGTERM to the study alone stops its loky workers and the
    pretraining job inside one, which saves its checkpoint; the study exits 143."""
    study_dir = tmp_path / "study"
    long = [o for o in TINY if not o.startswith(("trainer.max_steps", "checkpoint_every"))]
    long += ["trainer.max_steps=100000", "checkpoint_every=100000", f"paths.cache_dir={cache_dir}"]
    quoted = "[" + ",".join(f'"{x}"' for x in long) + "]"
    argv = [
        sys.executable, "-m", "pretrainlab", "study", "study.name=stop", f"study.dir={study_dir}",
        "study.pretrain_seeds=[0]", "study.tasks=[topic]", "study.modes=[linear]",
        "study.budgets=[100]", "study.objectives=[mlm]", "study.budget.flops=null",
        "study.wandb=false", f"study.pretrain_overrides={quoted}", "hydra/launcher=joblib",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    progress = study_dir / "pretrain"
    deadline = time.time() + 300
    while not list(progress.glob("*/progress.json")):  # a job is training
        assert proc.poll() is None and time.time() < deadline, "no job started"
        time.sleep(0.2)
    below = _descendants(proc.pid)
    assert len(below) >= 3  # the launcher, its loky workers, ...
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == PREEMPTED_EXIT
    deadline = time.time() + 30
    while (alive := {p for p in below if _alive(p)}) and time.time() < deadline:
        time.sleep(0.2)
    left = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for p in alive}
    assert not alive, f"processes the study started outlived it: {left}"
    assert list(progress.glob("*/checkpoints/last.ckpt"))  # the job saved on its way out


def test_a_study_run_from_another_thread_runs_its_launcher_plainly():
    """Signal handlers can only be set in the main thread: from another one, no handler is
    set and the launcher's status still comes back."""
    got: list[int] = []
    thread = threading.Thread(
        target=lambda: got.append(
            run_group([sys.executable, "-c", "raise SystemExit(5)"], dict(os.environ))
        ),  # fmt: skip
    )
    thread.start()
    thread.join(timeout=60)
    assert got == [5]
