"""What study jobs and the study itself leave on disk for ``pretrainlab status`` and the live
view: files, not messages, so the view works under any launcher (basic, joblib, submitit, a
cluster's SLURM) and from another terminal or machine that sees the study folder.

- ``RUN/job.json``: the job's state (``running`` -> ``ok`` / ``failed`` / ``missing``, or
  ``stopped`` when something interrupted it: a preemption's requeue signal, Ctrl-C), its
  pid, host and times. While the job runs a thread touches the file every few seconds, so its
  modification time is a heartbeat: a job whose record says ``running`` but whose heartbeat
  stopped (the process was killed) is ``incomplete``.
- ``RUN/job.log``: everything the job printed (Lightning, W&B, transformers, warnings), unless
  the study streams it (``study.verbose=true``).
- ``STUDY/study.json``: the study process's phase, pid and start times, and whether it ended.
- ``STUDY/timings.json``: each invocation's wall time and jobs per phase.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pretrainlab.io import atomic_write_json, read_json
from pretrainlab.study.plan import Job, checkpoint_ready, is_done

JOB_FILE, LOG_FILE, STUDY_FILE = "job.json", "job.log", "study.json"
TIMINGS_FILE = "timings.json"  # each invocation's phase times: {"invocations": [...]}
PHASES = ("pretrain", "probe")
HEARTBEAT_S = 5.0  # how often a running job touches job.json
STALE_S = 60.0  # a heartbeat older than this belongs to a process that is gone
STATES = ("done", "running", "failed", "missing", "incomplete", "pending")


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr to ``path`` (appended), at the file-descriptor
    level, so output of C code, child processes and logging handlers that hold
    ``sys.stderr`` goes there too; restored on exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _beat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        with contextlib.suppress(OSError):
            os.utime(path)


@contextlib.contextmanager
def job_record(job: Job, run_dir: Path, stream: bool = False) -> Iterator[dict[str, Any]]:
    """Record a job in ``run_dir/job.json`` while it runs (with a heartbeat) and its output in
    ``job.log`` unless ``stream``. The caller sets ``record["state"]`` to the outcome."""
    path = run_dir / JOB_FILE
    record: dict[str, Any] = {
        "job": job.id,
        "kind": job.kind,
        "state": "running",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "log": None if stream else LOG_FILE,
    }
    atomic_write_json(path, record)
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(path, stop), daemon=True)
    beat.start()
    try:
        with contextlib.nullcontext() if stream else output_to(run_dir / LOG_FILE):
            yield record
    except BaseException:  # the job's own errors are caught inside: this is an interruption
        record["state"] = "stopped"  # (a preemption's requeue, Ctrl-C): incomplete, not failed
        raise
    finally:
        stop.set()
        beat.join()
        atomic_write_json(path, {**record, "ended": time.time()})


def _pid_alive(record: dict[str, Any]) -> bool:
    """Whether the process a record names exists (another host's: assumed to)."""
    if record.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        pass
    return True


def _alive(record: dict[str, Any], path: Path, now: float) -> bool:
    """Whether the job that wrote a ``running`` record still runs: its heartbeat is fresh and
    its process exists."""
    return now - path.stat().st_mtime <= STALE_S and _pid_alive(record)


def read_record(path: Path) -> dict[str, Any] | None:
    """A job's or the study's record, or None where there is none yet."""
    try:
        return read_json(path)
    except (OSError, ValueError):  # not written yet (the writes are atomic: never torn)
        return None


def job_state(job: Job, study_dir: Path, now: float | None = None) -> str:
    """One of :data:`STATES`: ``done`` (its result file exists), ``running``, ``failed``
    (error.json), ``missing`` (the pretraining run it probes failed), ``incomplete`` (started,
    then stopped without a result: killed) or ``pending`` (not started)."""
    run = job.path(study_dir)
    if is_done(job, study_dir):
        return "done"
    if (run / "error.json").is_file():
        return "failed"
    record = read_record(run / JOB_FILE)
    state = record.get("state") if record else None
    if state == "running":
        return "running" if _alive(record, run / JOB_FILE, now or time.time()) else "incomplete"
    if state in ("failed", "missing"):
        return state
    if state == "stopped":
        return "incomplete"
    needs = job.needs_path(study_dir)
    if not checkpoint_ready(job, study_dir) and needs and (needs / "error.json").is_file():
        return "missing"
    if record is not None or (run / "checkpoints").is_dir():
        return "incomplete"
    return "pending"


def write_study_record(study_dir: Path, record: dict[str, Any]) -> None:
    """``STUDY/study.json``: the study process's ``record`` (state, invocation, phase, per-phase
    start / end / jobs to run) with its pid and host."""
    atomic_write_json(
        study_dir / STUDY_FILE, {**record, "pid": os.getpid(), "host": socket.gethostname()}
    )


def read_study_record(study_dir: Path) -> dict[str, Any] | None:
    """``STUDY/study.json`` with ``running`` set: whether the study process that wrote a
    ``running`` record still exists (None where no study has run in this folder)."""
    record = read_record(study_dir / STUDY_FILE)
    if record is None:
        return None
    record["running"] = record.get("state") == "running" and _pid_alive(record)
    return record


def record_timing(study_dir: Path, ran: dict[str, Any]) -> None:
    """Append (or update) this invocation's phase times in ``timings.json``: a study finished
    over several invocations (a resume, a re-run of failed jobs) keeps its whole cost."""
    path = study_dir / TIMINGS_FILE
    runs = read_json(path)["invocations"] if path.is_file() else []
    runs = [r for r in runs if r.get("started") != ran["started"]] + [ran]
    atomic_write_json(path, {"invocations": runs})


def phase_times(
    study_dir: Path, skip: str | None = None
) -> tuple[dict[str, tuple[float, int]], int]:
    """Wall seconds and jobs of each phase summed over the invocations in ``timings.json``
    (but the one started at ``skip``), and how many invocations that is."""
    path = study_dir / TIMINGS_FILE
    runs = read_json(path)["invocations"] if path.is_file() else []
    runs = [r for r in runs if r.get("started") != skip]
    totals = {}
    for phase in PHASES:
        if done := [r[phase] for r in runs if phase in r]:
            totals[phase] = (sum(d["wall_s"] for d in done), sum(d["jobs"] for d in done))
    return totals, len(runs)
