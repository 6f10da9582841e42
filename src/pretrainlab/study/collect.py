"""Read a study's run directories back into tables: one row per probe job (``results.csv``,
including failed and missing ones) and the pretraining curves.

A probe whose test split has subsets (the treated and control splits of a benchmark task, e.g.
``accuracy_heldout_words`` beside ``accuracy``) adds one row per subset, its task named
``TASK:SUBSET`` and its ``subset`` column set, so every statistic and plot treats a subset as
a task of its own; the job's own row has an empty ``subset``."""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pretrainlab.io import read_json
from pretrainlab.study.plan import SCRATCH, Job, checkpoint_ready


def subset_rows(row: dict, result: dict) -> list[dict]:
    """One row per test subset of a finished probe (``<metric>_<subset>`` in its metrics)."""
    metric, prefix = result["metric"], f"{result['metric']}_"
    rows = []
    for key, value in result["test"].items():
        if key.startswith(prefix):
            name = key[len(prefix) :]
            rows.append(
                {
                    **row,
                    "task": f"{row['task']}:{name}",
                    "subset": name,
                    "dev_score": result["dev"].get(key, row["dev_score"]),
                    "test_score": value,
                    "metric": metric,
                    **_reference_scores(result, key),
                }
            )
    return rows


def _reference_scores(result: dict, key: str) -> dict:
    """``chance_score`` / ``bow_score``: the reference predictors' test ``key``
    (probes/reference.py), where the probe recorded them."""
    refs = result.get("reference") or {}
    return {f"{name}_score": m[key] for name, m in refs.items() if key in m}


def result_rows(job: Job, study_dir: Path) -> list[dict]:
    row = result_row(job, study_dir)
    if row["status"] != "ok":
        return [row]
    return [row, *subset_rows(row, read_json(job.path(study_dir) / "result.json"))]


@functools.cache
def _tokens_of(run_json: Path, mtime: float) -> float:
    return float((read_json(run_json).get("compute") or {}).get("tokens", float("nan")))


def _tokens(run_dir: Path | None) -> float:
    """Tokens the pretraining run a probe reads was declared to see (run.json ``compute``);
    read once per run (every probe of a checkpoint shares it)."""
    path = run_dir / "run.json" if run_dir else None
    if path is None or not path.is_file():
        return float("nan")
    return _tokens_of(path, path.stat().st_mtime)


def result_row(job: Job, study_dir: Path) -> dict:
    run = job.path(study_dir)
    row = {
        "objective": job.arm,
        "pretrain_seed": job.seed,
        "seed": job.seed if job.probe_seed is None else job.probe_seed,  # the probe's seed
        "pairs_with": job.meta.get("pairs_with_seed", job.seed),  # a twin: the original's seed
        "task": job.task,
        "mode": job.mode,
        "train_examples": job.budget,
        "run_dir": job.run_dir,
        "subset": "",
        "status": "missing",
        "error": "",
        "pretrain_tokens": 0.0 if job.arm == SCRATCH else _tokens(job.needs_path(study_dir)),
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
        row.update(_reference_scores(r, r["metric"]))
        if "mdl" in r:  # a linear classification probe's online code length (probes/mdl.py)
            row["mdl_bits"] = r["mdl"]["bits"]
        for k, v in r.get("forgetting", {}).items():
            row[f"forgetting_{k}"] = v
    elif (run / "error.json").is_file():
        row.update(status="failed", error=read_json(run / "error.json")["error"])
    elif not checkpoint_ready(job, study_dir):
        row["error"] = f"checkpoint {job.needs} did not finish"
    return row


# A finished probe's outcome columns, present even when no probe finished (every one failed or
# is missing), so such a study still reports its failures instead of failing the results contract.
OUTCOME_COLUMNS = ("metric", "dev_score", "test_score", "pooling", "wall_s")


def collect_results(jobs: list[Job], study_dir: Path) -> pd.DataFrame:
    rows = [r for j in jobs if j.kind == "probe" for r in result_rows(j, study_dir)]
    frame = pd.DataFrame(rows)
    return frame.assign(**{c: float("nan") for c in OUTCOME_COLUMNS if c not in frame.columns})


def _pretrain_files(jobs: list[Job], study_dir: Path, name: str) -> Iterator[tuple[Job, Path]]:
    """Each pretraining job whose run folder holds the file ``name``, with that file."""
    for job in jobs:
        path = job.path(study_dir) / name
        if job.kind == "pretrain" and path.is_file():
            yield job, path


def collect_curves(jobs: list[Job], study_dir: Path) -> pd.DataFrame:
    rows = []
    for job, path in _pretrain_files(jobs, study_dir, "history.csv"):
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


def pretrain_failures(jobs: list[Job], study_dir: Path) -> list[dict]:
    return [
        {"run": job.run_dir, "error": read_json(path)["error"]}
        for job, path in _pretrain_files(jobs, study_dir, "error.json")
    ]


def compute_by_arm(jobs: list[Job], study_dir: Path) -> str | None:
    """What each arm was declared to spend in pretraining (run.json ``compute``) and the
    held-out pretraining accuracy it reached (metrics.json ``val/*_acc``, mean over seeds)."""
    seen: dict[str, dict] = {}
    reached: dict[str, dict[str, list[float]]] = {}
    for job in jobs:
        run, metrics = job.path(study_dir) / "run.json", job.path(study_dir) / "metrics.json"
        if job.kind != "pretrain":
            continue
        if job.arm not in seen and run.is_file() and (compute := read_json(run).get("compute")):
            seen[job.arm] = compute
        for key, value in (read_json(metrics) if metrics.is_file() else {}).items():
            if key.startswith("val/") and key.endswith("_acc"):
                reached.setdefault(job.arm, {}).setdefault(key, []).append(float(value))
    parts = []
    for arm, c in seen.items():
        accs = "".join(f", {key} {sum(v) / len(v):.3f}" for key, v in reached.get(arm, {}).items())
        steps = f"{c['steps']} steps, {c['tokens'] / 1e6:.2f}M tokens, {c['flops']:.3g} FLOPs"
        if c.get("prior_flops"):  # init_from: the run it started from spent this before
            steps += f" after {c['prior_tokens'] / 1e6:.2f}M tokens, {c['prior_flops']:.3g} FLOPs"
        parts.append(f"{arm}: {steps}{accs}")
    budget = next((c["budget"] for c in seen.values() if c.get("budget")), None)
    return ("; ".join(parts) + f" (matched on {budget or 'steps'})") if parts else None


def load_study(study_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, curves) of a finished or partial study directory, re-read from its runs."""
    from pretrainlab.errors import PretrainlabError

    study_dir = Path(study_dir)
    plan = study_dir / "plan.json"
    if not plan.is_file():
        raise PretrainlabError(f"{study_dir} is not a study directory: it has no plan.json.")
    jobs = [Job(**j) for j in read_json(plan)["jobs"]]
    return collect_results(jobs, study_dir), collect_curves(jobs, study_dir)
