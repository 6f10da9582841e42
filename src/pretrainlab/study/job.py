"""One study job, run by a Hydra launcher (basic, joblib, submitit).

The study writes its plan to ``STUDY/plan.json``; this app is launched as a multirun over
``job_id`` and runs that job's ``pretrain`` or ``probe`` with the job's overrides. A failure is
recorded in the job's ``error.json`` and does not stop the other jobs.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig

from pretrainlab.cli import CONF_PKG
from pretrainlab.faults import PREEMPTED_EXIT
from pretrainlab.io import atomic_write_json, read_json
from pretrainlab.study.jobfiles import job_record
from pretrainlab.study.plan import Job, checkpoint_ready, is_done


def set_threads(threads: int | None) -> None:
    """Pin this job's thread pools so parallel jobs split the cores instead of sharing them."""
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run_job(job: Job, study_dir: Path, threads: int | None, stream: bool = False) -> str:
    """Run one job in its run directory; its output goes to ``RUN/job.log`` unless
    ``stream``, and its state to ``RUN/job.json`` (:mod:`pretrainlab.study.jobfiles`)."""
    run_dir = job.path(study_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.json").unlink(missing_ok=True)
    if is_done(job, study_dir):
        return "skipped"
    try:
        with job_record(job, run_dir, stream) as record:
            record["state"] = _run_in(job, study_dir, run_dir, threads)
    except SystemExit as stop:
        if stop.code == PREEMPTED_EXIT:  # SIGTERM: the job saved and stopped; so does its process
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(PREEMPTED_EXIT)  # a loky worker would otherwise wait for a parent now gone
        raise
    return record["state"]


def _run_in(job: Job, study_dir: Path, run_dir: Path, threads: int | None) -> str:
    from pretrainlab.config import compose_config
    from pretrainlab.pretrain import pretrain
    from pretrainlab.probes.run import probe

    if not checkpoint_ready(job, study_dir):
        return "missing"  # its checkpoint failed: reported as missing, with that reason
    set_threads(threads)
    try:
        quiet = (
            "trainer.enable_progress_bar=false" if job.kind == "pretrain" else "progress_bar=false"
        )
        cfg = compose_config(job.kind, [*job.command_overrides(study_dir), quiet])
        (pretrain if job.kind == "pretrain" else probe)(cfg, run_dir)
        return "ok"
    except Exception as err:  # recorded, and the study goes on with the other jobs
        atomic_write_json(
            run_dir / "error.json",
            {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()},
        )
        return "failed"


def _run(cfg: DictConfig) -> str:
    plan = read_json(cfg.plan)
    job = Job(**plan["jobs"][int(cfg.job_id)])
    study_dir = Path(cfg.plan).parent  # the plan is in the study
    return run_job(job, study_dir, cfg.get("threads"), bool(cfg.get("stream", False)))


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="study_job")(_run)()


if __name__ == "__main__":
    main()
