"""notebooks/compare.ipynb runs end to end on a small hand-written study folder and draws plots."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare.ipynb"
OBJECTIVES = ("mlm", "clm")
SEEDS = (0, 1, 2)
TASKS = ("sst2",)
MODES = ("linear", "finetune")
BUDGETS = (100, 1000)
BASE = {"mlm": 0.80, "clm": 0.76, "scratch": 0.60}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _job(jobs: list[dict], kind: str, arm: str, seed: int, run_dir: Path, **kw) -> None:
    jobs.append(
        {"id": len(jobs), "kind": kind, "arm": arm, "seed": seed, "overrides": [f"seed={seed}"],
         "run_dir": str(run_dir), "task": None, "mode": None, "budget": None, "needs": None,
         "meta": {}, **kw}
    )  # fmt: skip


def make_study(study: Path) -> None:
    """plan.json plus run folders the way a study writes them: pretraining runs with
    metrics.json and history.csv, probe runs with result.json (one failed, one missing)."""
    jobs: list[dict] = []
    rng = random.Random(0)
    for obj in OBJECTIVES:
        for seed in SEEDS:
            run = study / "pretrain" / f"{obj}-s{seed}-abcd1234"
            _job(jobs, "pretrain", obj, seed, run)
            _write_json(run / "metrics.json", {"val/loss": 3.2 + 0.1 * seed, "steps": 200})
            with open(run / "history.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["step", "name", "value"])
                for step in range(0, 201, 50):
                    loss = 3.0 + 5.0 / (1 + step / 50) + 0.05 * seed + (0.2 if obj == "clm" else 0)
                    w.writerows([[step, "train/loss", loss], [step, "val/loss", loss + 0.1]])
    for arm in (*OBJECTIVES, "scratch"):
        for seed in SEEDS:
            ckpt = str(study / "pretrain" / f"{OBJECTIVES[0] if arm == 'scratch' else arm}"
                       f"-s{seed}-abcd1234")  # fmt: skip
            for task in TASKS:
                for mode in MODES:
                    for budget in BUDGETS:
                        run = study / "probe" / f"{arm}-s{seed}" / f"{task}-{mode}-n{budget}-ef01"
                        _job(jobs, "probe", arm, seed, run, task=task, mode=mode, budget=budget,
                             needs=ckpt)  # fmt: skip
                        if (arm, seed, mode, budget) == ("clm", 2, "finetune", 100):
                            _write_json(run / "error.json", {"error": "RuntimeError: boom"})
                            continue
                        if (arm, seed, mode, budget) == ("scratch", 1, "linear", 1000):
                            continue  # missing: never ran
                        score = BASE[arm] + 0.03 * (budget == 1000) + rng.gauss(0, 0.01)
                        score += 0.02 * (mode == "finetune")
                        scores = {"accuracy": score, "f1": score - 0.02}
                        _write_json(
                            run / "result.json",
                            {
                                "checkpoint": "scratch" if arm == "scratch" else ckpt,
                                "objective": arm, "pretrain_seed": seed, "seed": seed,
                                "task": task, "kind": "classification", "mode": mode,
                                "pooling": "last" if arm == "clm" else "mean",
                                "train_examples": budget, "metric": "accuracy",
                                "dev": {k: v + 0.01 for k, v in scores.items()}, "test": scores,
                                "forgetting": ({"start": 3.2, "end": 3.5}
                                               if mode == "finetune" and arm != "scratch" else {}),
                                "notes": "", "wall_s": 1.5,
                            },
                        )  # fmt: skip
    _write_json(study / "plan.json", {"study": "fake", "jobs": jobs})


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    """A "python3" kernelspec for this interpreter, ahead of any other on the Jupyter path."""
    prefix = tmp_path / "jupyter"
    install_kernelspec(kernel_name="python3", prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    spec = json.loads((prefix / "share/jupyter/kernels/python3/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable


def test_compare_notebook_runs(tmp_path, monkeypatch, python3_kernel):
    make_study(tmp_path / "outputs" / "studies" / "fake")
    (tmp_path / "notebooks").mkdir()
    # relative to the repo root, i.e. the parent of the notebook's folder
    monkeypatch.setenv("PRETRAINLAB_STUDY_DIR", "outputs/studies/fake")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "clear outputs"
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path / "notebooks")}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "36 probe runs" in text and "Not drawn" not in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # the 4 report plots plus the redrawn bar chart
    assert len(images) == 5
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "failed" in html and "missing" in html  # status counts
    assert "clear" in html or "tied" in html  # the winners table
