"""Read a study's run directories back into tables: one row per probe job (``results.csv``,
including failed and missing ones) and the pretraining curves."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pretrainlab.io import read_json
from pretrainlab.study.plan import Job


def result_row(job: Job) -> dict:
    run = Path(job.run_dir)
    row = {
        "objective": job.arm,
        "pretrain_seed": job.seed,
        "seed": job.seed,
        "task": job.task,
        "mode": job.mode,
        "train_examples": job.budget,
        "run_dir": job.run_dir,
        "status": "missing",
        "error": "",
    }
    if (run / "result.json").is_file():
        r = read_json(run / "result.json")
        row.update(
            status="ok",
            pooling=r["pooling"],
            metric=r["metric"],
            dev_score=r["dev"][r["metric"]],
            test_score=r["test"][r["metric"]],
            wall_s=r["wall_s"],
            **{f"test_{k}": v for k, v in r["test"].items()},
        )
        for k, v in r.get("forgetting", {}).items():
            row[f"forgetting_{k}"] = v
    elif (run / "error.json").is_file():
        row.update(status="failed", error=read_json(run / "error.json")["error"])
    elif job.needs and not (Path(job.needs) / "metrics.json").is_file():
        row["error"] = f"checkpoint {job.needs} did not finish"
    return row


def collect_results(jobs: list[Job]) -> pd.DataFrame:
    return pd.DataFrame([result_row(j) for j in jobs if j.kind == "probe"])


def collect_curves(jobs: list[Job]) -> pd.DataFrame:
    rows = []
    for job in jobs:
        path = Path(job.run_dir) / "history.csv"
        if job.kind == "pretrain" and path.is_file():
            with open(path) as f:
                for r in csv.DictReader(f):
                    rows.append(
                        {
                            "objective": job.arm,
                            "pretrain_seed": job.seed,
                            "step": int(r["step"]),
                            "name": r["name"],
                            "value": float(r["value"]),
                        }
                    )
    return pd.DataFrame(rows, columns=["objective", "pretrain_seed", "step", "name", "value"])


def pretrain_failures(jobs: list[Job]) -> list[dict]:
    out = []
    for job in jobs:
        err = Path(job.run_dir) / "error.json"
        if job.kind == "pretrain" and err.is_file():
            out.append({"run": job.run_dir, "error": read_json(err)["error"]})
    return out


def load_study(study_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, curves) of a finished or partial study directory, re-read from its runs."""
    from pretrainlab.errors import PretrainlabError

    plan = Path(study_dir) / "plan.json"
    if not plan.is_file():
        raise PretrainlabError(f"{study_dir} is not a study directory: it has no plan.json.")
    jobs = [Job(**j) for j in read_json(plan)["jobs"]]
    return collect_results(jobs), collect_curves(jobs)
