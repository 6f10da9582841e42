"""``pretrainlab study experiment=NAME``: pretrain every arm x seed, probe every checkpoint
(and scratch) on every task x mode x budget, aggregate with CIs, report, log to W&B.

Jobs run through a Hydra launcher: sequential by default, ``hydra/launcher=joblib`` for
parallel jobs on one machine, ``hydra/launcher=submitit_local`` for submitit jobs on this
machine (``cores // cpus_per_task`` at a time), ``hydra/launcher=submitit_slurm`` for a
cluster. Finished jobs are skipped on a re-run, failed ones are recorded and reported as
missing.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from pretrainlab.cli import CONF_PKG, user_errors
from pretrainlab.io import atomic_write_json, atomic_write_text
from pretrainlab.redact import redact_config, redact_hydra_run, redacted_yaml
from pretrainlab.run import git_commit
from pretrainlab.study.budgets import (
    branch_runs,
    budget_axis,
    check_steps,
    controls_at_top,
    waves,
)
from pretrainlab.study.collect import compute_by_arm, load_study, pretrain_failures
from pretrainlab.study.controls import evaluate, parse_controls, sentences
from pretrainlab.study.extend import extend_runs
from pretrainlab.study.jobfiles import phase_times, record_timing, write_study_record
from pretrainlab.study.launch import launch, local_batches, threads_per_job
from pretrainlab.study.live import watching
from pretrainlab.study.plan import Job, expand, is_done, study_arms


def _timing_summary(study_dir: Path) -> str | None:
    totals, invocations = phase_times(study_dir)
    parts = [f"{phase} {secs:.0f} s ({jobs} jobs)" for phase, (secs, jobs) in totals.items()]
    return f"{', '.join(parts)} over {invocations} invocation(s)" if parts else None


def _run_phases(
    jobs: list[Job], study_dir: Path, record: dict[str, Any], launcher_overrides: list[str],
    threads: int | None, verbose: bool,
) -> None:  # fmt: skip
    """Pretrain, then probe: the jobs not yet done, each phase's start and end in study.json,
    its wall time in timings.json."""
    plan = study_dir / "plan.json"
    ran: dict[str, Any] = {"started": record["invocation"]}
    for phase in ("pretrain", "probe"):
        todo = [j for j in jobs if j.kind == phase and not is_done(j, study_dir)]
        done = sum(j.kind == phase for j in jobs) - len(todo)
        print(f"[study] {phase}: {len(todo)} jobs to run, {done} already finished", flush=True)
        if not todo:
            continue
        start = time.time()
        record["phase"] = phase
        record["phases"][phase] = {"started": start, "todo": len(todo)}
        write_study_record(study_dir, record)
        try:  # pretraining in waves, smallest budget first: a wave branches from the last
            for wave in waves(todo) if phase == "pretrain" else [todo]:
                if branched := branch_runs(wave, study_dir):
                    print(f"[study] budgets: {branched} runs branch from the budget below")
                launch(wave, plan, study_dir, launcher_overrides, threads, verbose)
        finally:
            ran[phase] = {"jobs": len(todo), "wall_s": round(time.time() - start, 1)}
            record_timing(study_dir, ran)
            record["phases"][phase]["ended"] = time.time()
            write_study_record(study_dir, record)


def study(
    cfg: DictConfig, study_dir: Path, launcher_overrides: list[str], launcher: dict[str, Any]
) -> dict[str, Any]:
    t0 = time.time()
    listed = cfg.study.get("controls")
    controls = parse_controls(OmegaConf.to_container(listed) if listed else [])
    axis = budget_axis(cfg)
    controls = controls_at_top(controls, axis)
    study_dir.mkdir(parents=True, exist_ok=True)
    jobs = expand(cfg)
    if axis:
        check_steps(jobs)
    plan = study_dir / "plan.json"
    # secrets redacted (pretrainlab.redact): the jobs read their overrides from the plan, so a
    # secret override reaches them as <redacted> (no pretrainlab code reads one; credentials
    # come from the environment or ~/.netrc)
    plan_data = {"study": cfg.study.name, "jobs": [j.to_dict() for j in jobs]}
    atomic_write_json(plan, redact_config(plan_data))
    atomic_write_text(study_dir / "config.yaml", redacted_yaml(cfg))
    threads = threads_per_job(launcher)
    launcher_overrides = [*launcher_overrides, *local_batches(launcher, threads)]
    if source := cfg.study.get("extend_from"):
        copied = extend_runs(jobs, study_dir, Path(str(source)))
        print(f"[study] extend: {copied} pretraining runs resume from {source}", flush=True)
    verbose = bool(cfg.study.get("verbose", False))
    record = {"state": "running", "started": t0, "phase": None, "phases": {}}
    record["invocation"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0))
    write_study_record(study_dir, record)
    try:
        with contextlib.nullcontext() if verbose else watching(study_dir, Console()):
            _run_phases(jobs, study_dir, record, [*launcher_overrides], threads, verbose)
            record["phase"] = "report"  # the view's last frame: the jobs are over
            write_study_record(study_dir, record)
        out = _conclude(cfg, study_dir, jobs, controls, t0, verbose)
    except BaseException:
        write_study_record(study_dir, {**record, "state": "failed"})
        raise
    write_study_record(study_dir, {**record, "state": "finished", "phase": None})
    return out


def _conclude(
    cfg: DictConfig, study_dir: Path, jobs: list[Job], controls: Any, t0: float, verbose: bool
) -> dict[str, Any]:
    """Read the runs back, write the report, print the verdict and the summary, log to W&B."""
    import pandas as pd

    from pretrainlab.study import report
    from pretrainlab.study.stats import summarize
    from pretrainlab.study.verdict import answer

    results, curves = load_study(study_dir)
    atomic_write_text(study_dir / "results.csv", results.to_csv(index=False))
    source = cfg.study.get("extend_from")
    meta = {
        "name": cfg.study.name,
        "question": cfg.study.get("question"),
        "arms": ", ".join(study_arms(cfg)),
        "pretrain_seeds": list(cfg.study.pretrain_seeds),
        "probe_seeds": list(cfg.study.probe_seeds or []) or "one per pretraining run, its seed",
        "baseline": "scratch" if cfg.study.get("baseline") else None,
        "wall_time_s": round(time.time() - t0, 1),
        "job_phases": _timing_summary(study_dir),
        "git_commit": git_commit(),
        "pretraining_compute": compute_by_arm(jobs, study_dir),
        **({"extended_from": str(source)} if source else {}),  # pretrain wall: the increment
        "pretraining_failures": pretrain_failures(jobs, study_dir),
    }
    checked = evaluate(controls, results) if controls else None
    paths = report.write_report(study_dir, results, curves, meta, checked)
    summary = summarize(results)
    report.print_summary(summary)
    for sentence in sentences(checked) if checked is not None else []:
        print(f"[control] {sentence}", flush=True)
    # the answer from the comparisons the report just wrote (not computed a second time)
    read = {k: pd.read_csv(paths[k]) for k in ("comparisons", "twin_comparisons") if k in paths}
    for paragraph in answer(meta["question"], read["comparisons"], read.get("twin_comparisons")):
        print(f"[answer] {paragraph}", flush=True)
    if cfg.study.get("wandb", True):
        _wandb_summary(cfg, study_dir, summary, paths, quiet=not verbose)
    runs = results[results["subset"] == ""] if len(results) else results
    ok = int((runs["status"] == "ok").sum()) if len(runs) else 0
    print(
        f"[study] {ok}/{len(runs)} probe runs ok in {time.time() - t0:.0f} s; "
        f"report: {paths['report_html']}",
        flush=True,
    )
    return {"results": results, "summary": summary, "paths": paths}


def _wandb_summary(
    cfg: DictConfig, study_dir: Path, summary: Any, paths: dict, quiet: bool
) -> None:
    """One W&B run in the study's group holding the summary table and the plots (``quiet``:
    without W&B's lines in the terminal; the run's own log keeps them)."""
    import wandb

    from pretrainlab.loggers import wandb_mode

    run = wandb.init(
        project=cfg.study.wandb_project,
        group=cfg.study.name,
        job_type="summary",
        name=f"{cfg.study.name}-summary",
        dir=str(study_dir),
        mode=wandb_mode("auto"),
        config=redact_config(OmegaConf.to_container(cfg, resolve=True)),
        settings=wandb.Settings(silent=quiet),
    )
    run.log(
        {
            "summary": wandb.Table(dataframe=summary.reset_index(drop=True)),
            **{
                f"plots/{k}": wandb.Image(str(p))
                for k, p in paths.items()
                if str(p).endswith(".png")
            },
        }
    )
    run.finish()


@user_errors
def _run(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    redact_hydra_run()
    hc = HydraConfig.get()
    overrides = [
        o for o in hc.overrides.hydra if o.startswith(("hydra/launcher", "hydra.launcher"))
    ]
    launcher = OmegaConf.to_container(hc.launcher, resolve=True)
    study(cfg, Path(cfg.study.dir), overrides, launcher)


def main() -> None:
    import hydra

    from pretrainlab.faults import preflight_output_dir

    preflight_output_dir(sys.argv[1:], also=("study.dir",))
    hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="study")(_run)()
