"""How a study hands its jobs to a Hydra launcher: one multirun over job ids per phase (or
budget wave), the cores split between parallel jobs, the launcher's output kept in
``STUDY/logs/``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pretrainlab.errors import PretrainlabError
from pretrainlab.faults import PREEMPTED_EXIT
from pretrainlab.study.plan import Job

SUBMITIT_LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"


def threads_per_job(launcher: dict[str, Any]) -> int | None:
    """Split the cores between parallel jobs (oversubscription is brutal on small machines):
    joblib's ``n_jobs`` at once, or a submitit job's ``cpus_per_task`` (1 by default under
    submitit_local, which runs ``cores // cpus_per_task`` jobs at once: :func:`local_batches`).
    """
    cpus = launcher.get("cpus_per_task")
    if launcher.get("_target_") == SUBMITIT_LOCAL:
        return int(cpus or 1)
    if cpus:  # SLURM: the cores it allocated to the job
        return int(cpus)
    n_jobs = launcher.get("n_jobs")
    if n_jobs is None:
        return None
    cores = os.cpu_count() or 1
    n_jobs = cores if n_jobs < 0 else n_jobs
    return max(1, cores // max(1, n_jobs))


def local_batches(launcher: dict[str, Any], threads: int | None) -> list[str]:
    """submitit_local starts every job it is handed at once (it has no array_parallelism):
    hand it ``cores // threads`` jobs at a time (Hydra's basic sweeper waits for each batch)."""
    if launcher.get("_target_") != SUBMITIT_LOCAL:
        return []
    tasks = launcher.get("tasks_per_node") or 1
    if tasks != 1:
        raise PretrainlabError(
            f"hydra.launcher.tasks_per_node={tasks}: under submitit_local every task runs the "
            "whole job, so they would all write one run directory. Keep tasks_per_node=1; for "
            "several processes in one pretraining job use trainer=ddp trainer.devices=N."
        )
    cores = os.cpu_count() or 1
    return [f"hydra.sweeper.max_batch_size={max(1, cores // (threads or 1))}"]


def launch(
    jobs: list[Job], plan: Path, study_dir: Path, launcher_overrides: list[str], threads: int | None,
    verbose: bool = False,
) -> None:  # fmt: skip
    """Run jobs as one Hydra multirun over ``job_id`` with the study's launcher. The launcher's
    own output (Hydra's job list, joblib's worker warnings) goes to ``STUDY/logs/PHASE.log``
    and each job's to its ``job.log``, unless ``verbose`` streams both to the terminal."""
    cmd = [
        sys.executable,
        "-m",
        "pretrainlab.study.job",
        "-m",
        f"plan={plan.resolve()}",
        "job_id=" + ",".join(str(j.id) for j in jobs),
        *launcher_overrides,
        f"stream={str(verbose).lower()}",
    ]
    if threads:
        cmd.append(f"threads={threads}")
    env = {**os.environ, "PRETRAINLAB_STUDY_DIR": str(study_dir)}
    if verbose:
        code = run_group(cmd, env)
        if code:
            raise subprocess.CalledProcessError(code, cmd)
        return
    log = study_dir / "logs" / f"{jobs[0].kind}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "ab") as out:
        code = run_group(cmd, env, stdout=out, stderr=subprocess.STDOUT)
    if code:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise PretrainlabError(
            f"the study's {jobs[0].kind} launcher exited with status {code} (a job's own "
            f"failure would have been recorded instead): its output is in {log}, ending\n"
            + "\n".join(tail)
        )


def run_group(cmd: list[str], env: dict[str, str], **io: Any) -> int:
    """Run the launcher as its own process group and stop that whole group when the study is
    stopped (SIGTERM or Ctrl-C): joblib's loky workers, and the jobs running inside them,
    outlive a killed parent otherwise. Each job gets SIGTERM: a pretraining run saves
    ``last.ckpt`` at the end of its step (faults/preemption.py), and the same study command
    resumes. After a SIGTERM the study exits with 143 once the group has gone. Signal handlers
    live in the main thread: a study run from another thread (a notebook's, a test's) keeps
    its launcher in the study's own process group instead, as a plain subprocess would."""
    main = threading.current_thread() is threading.main_thread()
    proc = subprocess.Popen(cmd, env=env, start_new_session=main, **io)
    if not main:
        return proc.wait()

    stopped: list[int] = []

    def stop() -> None:
        with contextlib.suppress(ProcessLookupError):  # the group has already gone
            os.killpg(proc.pid, signal.SIGTERM)

    def on_sigterm(signum: int, _frame: Any) -> None:
        stopped.append(signum)
        stop()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        stop()
        proc.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        print("[study] stopped by SIGTERM: its jobs were stopped too; the same command resumes",
              file=sys.stderr)  # fmt: skip
        sys.exit(PREEMPTED_EXIT)
    return code
