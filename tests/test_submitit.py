"""The study's submitit path for real: ``hydra/launcher=submitit_local`` runs every job as a
submitit job (its own processes and job folder), and a pretraining job sent submitit's requeue
signal mid-training saves its checkpoint, is requeued by submitit and resumes from it.

What submitit_local does (submitit 1.5, hydra-submitit-launcher 1.2), found by these tests:
each job is a controller process (``python -m submitit.local._local FOLDER``, its pid is the
job id and names ``STUDY/.hydra_jobs/.submitit/ID/``) that starts one task
(``python -u -m submitit.core._submit FOLDER``), sends it USR2 ``signal_delay_s`` (30 s) before
``timeout_min`` and kills it at ``timeout_min``. In the task, submitit's USR2 handler (which
:class:`pretrainlab.faults.Preemption` defers to the end of the training step, after saving
``last.ckpt``) calls the launcher's ``checkpoint()`` (hydra_submitit_launcher: the same Hydra
job again), pickles that over the job's submission and exits 144; the controller starts the
task again, same job id and folder, up to ``max_num_timeout`` (3) time-outs. SIGTERM is only
logged by submitit ("Bypassing signal SIGTERM"): Lightning's handler makes the run save and
exit 143, which the controller does not requeue, so the job ends without a result and the
study stops; running it again resumes the run. ``LocalJob._interrupt()`` sends USR2 to the
controller, not to the task (the controller has no handler for it), so the tests signal the
task. Every job of a multirun starts at once (no array_parallelism): the study hands
submitit_local ``cores // cpus_per_task`` jobs at a time.
"""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.study.run import study
from tests.conftest import CONF, TINY, compose_config

# a stuck job is killed after 5 minutes; nothing here runs for one
LOCAL = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"]


def _launcher(*overrides: str) -> dict:
    """``hydra.launcher`` as ``pretrainlab study`` hands it to ``study()``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("study", overrides=list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=False)


def _study_cfg(tmp: Path, cache: Path, *pretrain: str):
    """One arm (MLM), one seed, one task, linear, no scratch: one pretraining, one probe."""
    pre = [o for o in TINY if not o.startswith("logger")]
    pre += ["logger=none", f"paths.cache_dir={cache}", *pretrain]
    probe = [
        "logger=none",
        f"paths.cache_dir={cache}",
        "probe.task.train_size=200",
        "probe.task.dev_size=60",
        "probe.task.test_size=60",
    ]
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    return compose_config(
        "study",
        [
            "study.name=tiny",
            f"study.dir={tmp}",
            "study.pretrain_seeds=[0]",
            "study.objectives=[mlm]",
            "study.baseline=false",
            "study.tasks=[topic]",
            "study.modes=[linear]",
            "study.budgets=[100]",
            "study.wandb=false",
            f"study.pretrain_overrides={quoted(pre)}",
            "study.budget.flops=null",  # not the flagship's budget: max_steps decides
            f"study.probe_overrides={quoted(probe)}",
        ],
    )


def _job_folders(study_dir: Path) -> list[Path]:
    return sorted((study_dir / ".hydra_jobs" / ".submitit").glob("[0-9]*"))


def _tasks(study_dir: Path) -> list[int]:
    """Pids of the running submitit tasks of this study (``submitit.core._submit FOLDER``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in argv and any(str(study_dir).encode() in a for a in argv):
            pids.append(int(proc.name))
    return pids


def _loss_steps(run: Path) -> list[int]:
    with open(run / "history.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["name"] == "train/loss"]


def test_study_runs_through_submitit_local(tmp_path, cache_dir):
    study(_study_cfg(tmp_path, cache_dir), tmp_path, LOCAL, _launcher(*LOCAL))
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 1 and (results.status == "ok").all(), results.to_string()
    folders = _job_folders(tmp_path)
    assert len(folders) == 2  # one submitit job per study job: the pretraining, then the probe
    for folder in folders:
        job = folder.name
        log = (folder / f"{job}_0_log.out").read_text()
        assert f"JobEnvironment(job_id={job}" in log and "Job completed successfully" in log
        assert (folder / f"{job}_0_log.err").is_file()
        assert (folder / f"{job}_0_result.pkl").is_file()
    # one thread per job (cpus_per_task unset), cores // 1 jobs at a time
    multirun = OmegaConf.load(tmp_path / ".hydra_jobs" / "multirun.yaml").hydra.overrides
    assert f"hydra.sweeper.max_batch_size={os.cpu_count()}" in multirun.hydra
    assert "threads=1" in multirun.task


def test_submitit_local_takes_one_task_per_job(tmp_path, cache_dir):
    overrides = [*LOCAL, "hydra.launcher.tasks_per_node=2"]
    with pytest.raises(PretrainlabError, match="tasks_per_node=2"):
        study(_study_cfg(tmp_path, cache_dir), tmp_path, overrides, _launcher(*overrides))
    assert not _job_folders(tmp_path)  # refused before any job started


def test_requeue_signal_requeues_the_job_which_resumes_from_its_checkpoint(tmp_path, cache_dir):
    cfg = _study_cfg(tmp_path, cache_dir, "trainer.max_steps=100")  # checkpoints every 10
    failed: list[BaseException] = []

    def run_study() -> None:
        try:
            study(cfg, tmp_path, LOCAL, _launcher(*LOCAL))
        except BaseException as err:  # noqa: BLE001 (reported by the test below)
            failed.append(err)

    thread = threading.Thread(target=run_study, daemon=True)
    thread.start()
    deadline = time.time() + 300
    ckpts: list[Path] = []
    while not ckpts and thread.is_alive() and time.time() < deadline:
        time.sleep(0.02)
        ckpts = list(tmp_path.glob("pretrain/*/checkpoints/last.ckpt"))
    assert ckpts, f"no checkpoint appeared: {failed}"
    (task,) = _tasks(tmp_path)
    job = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()[1]  # its controller
    os.kill(task, signal.SIGUSR2)  # what SLURM sends signal_delay_s before the time limit
    thread.join(max(1.0, deadline - time.time()))
    assert not thread.is_alive() and not failed, failed

    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 1 and (results.status == "ok").all(), results.to_string()
    run = ckpts[0].parents[1]
    info = read_json(run / "run.json")
    assert info["status"] == "completed" and info["attempts"] == 2, info
    assert 10 <= info["resumed_from_step"] < 100  # saved at the signal, then resumed there
    assert read_json(run / "metrics.json")["steps"] == 100
    assert _loss_steps(run) == list(range(5, 101, 5))  # no restart from step 0, no gap
    # submitit requeued the same job: its task started twice under the same job id
    folder = tmp_path / ".hydra_jobs" / ".submitit" / job
    # submitit's lines from inside the job are in the job's own log (RUN/job.log)
    log = (folder / f"{job}_0_log.out").read_text() + (run / "job.log").read_text()
    assert "Caught signal SIGUSR2" in log and f"Requeued job {job}" in log, log[-3000:]
    assert log.count(f"JobEnvironment(job_id={job}") == 2
    assert "Job completed successfully" in log and (folder / f"{job}_0_result.pkl").is_file()
    assert len(_job_folders(tmp_path)) == 2  # no new job was submitted: pretraining, probe
