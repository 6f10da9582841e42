"""Every command x every logger option leaves what the README's "Loggers" table says.

``logger=wandb`` (offline here, see conftest): a ``wandb/offline-run-*`` folder holding a
``.wandb`` file under the run folder; ``logger=csv``: ``csv/metrics.csv`` with the command's
metric columns; ``logger=none``: neither. Commands: ``pretrain``, ``probe`` (linear and
fine-tune), ``study`` (the logger passed through its pretrain / probe overrides, plus the W&B
summary run with ``study.wandb=true``) and ``reproduce`` (which never logs). The CSV probe also
runs through the real CLI, where its crash (``'ExperimentWriter' object has no attribute
'summary'``) was found.

Pretraining runs are shared through module fixtures; the study runs its jobs in this process
(the jobs' own entry point, without the launcher subprocess: the launchers are covered in
test_study.py). Aimed at about 90 s on 2 idle cores; 190 s measured with other test runs
sharing them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from pretrainlab.io import read_json
from pretrainlab.loggers import csv_logger
from pretrainlab.pretrain import pretrain
from pretrainlab.probes.run import probe
from pretrainlab.study.reproduce import reproduce
from tests.conftest import TINY, compose_config

LOGGERS = ["wandb", "csv", "none"]
TASK = "sentiment"
# TINY with 4 steps: a row of train and val metrics in every log, at a fifth of the cost
FAST = [
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "checkpoint_every=2",
    "optim.warmup_steps=1",
]
WANDB_TEST = ["logger.project=pretrainlab-test"]
# one fit per probe (the dev-tuned grids: test_probe_protocol.py), fine-tuning 3 steps
ONE_FIT = ["probe.linear.weight_decay_grid=null", "probe.finetune.lr_grid=null"]
SMALL = [*ONE_FIT, "probe.train_examples=48"]
PRETRAIN_COLUMNS = {"step", "train/loss", "train/lr", "val/loss", "val/mlm_acc"}
LINEAR_COLUMNS = {"step", "dev/accuracy", "dev/macro_f1", "test/accuracy", "test/mcc"}
FINETUNE_COLUMNS = LINEAR_COLUMNS | {"dev/score", "forgetting/start", "forgetting/end"}


def _logger_args(logger: str) -> list[str]:
    return [f"logger={logger}", *(WANDB_TEST if logger == "wandb" else [])]


def _csv_rows(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (folder / "csv" / "metrics.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _wandb_runs(folder: Path) -> list[Path]:
    return sorted((folder / "wandb").glob("offline-run-*"))


def assert_logged(folder: Path, logger: str, columns: set[str] = frozenset()) -> None:
    """``folder`` holds exactly what ``logger`` writes, and nothing of the other loggers."""
    if logger == "wandb":
        runs = _wandb_runs(folder)
        assert len(runs) == 1, runs
        assert list(runs[0].glob("*.wandb")), list(runs[0].iterdir())
    else:
        assert not (folder / "wandb").exists(), list((folder / "wandb").iterdir())
    if logger == "csv":
        header, rows = _csv_rows(folder)
        assert columns <= set(header), sorted(columns - set(header))
        assert rows
    else:
        assert not (folder / "csv").exists()


def _wandb_summary(run: Path) -> dict:
    """The offline run's record, read as the README says (``wandb leet inspect``)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), "leet", "inspect", "--summary", "--json"]
        + [str(run)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def runs(pretrain_cfg, pretrained, tmp_path_factory) -> dict[str, Path]:
    """A tiny MLM run per logger (logger=none: the session's MLM run)."""
    out = {"none": pretrained["mlm"]}
    for logger in ("wandb", "csv"):
        out[logger] = tmp_path_factory.mktemp(f"pretrain_{logger}")
        pretrain(pretrain_cfg("objective=mlm", *FAST, *_logger_args(logger)), out[logger])
    return out


@pytest.mark.parametrize("logger", LOGGERS)
def test_pretrain(runs, logger):
    run = runs[logger]
    assert_logged(run, logger, PRETRAIN_COLUMNS)
    info = read_json(run / "run.json")
    assert info["status"] == "completed"
    if logger == "wandb":  # run.json names the W&B run it logged to
        assert _wandb_runs(run)[0].name.endswith(info["wandb_id"])
    else:
        assert "wandb_id" not in info


@pytest.mark.parametrize("mode", ["linear", "finetune"])
@pytest.mark.parametrize("logger", LOGGERS)
def test_probe(pretrained, probe_cfg, tmp_path, logger, mode):
    cfg = probe_cfg(pretrained["mlm"], TASK, f"probe.mode={mode}", *SMALL, *_logger_args(logger))
    result = probe(cfg, tmp_path)
    assert read_json(tmp_path / "result.json") == json.loads(json.dumps(result))
    assert_logged(tmp_path, logger, LINEAR_COLUMNS if mode == "linear" else FINETUNE_COLUMNS)
    if logger == "csv":  # the last row holds the result, flushed before probe() returned
        last = _csv_rows(tmp_path)[1][-1]
        assert float(last["test/accuracy"]) == pytest.approx(result["test"]["accuracy"])
        assert int(last["step"]) == (result["train_steps"] or 0)
    if logger == "wandb":  # only W&B gets the run summary, and the run is finished
        import wandb

        assert wandb.run is None
    if logger == "wandb" and mode == "linear":  # (read once: the same code for both modes)
        summary = _wandb_summary(_wandb_runs(tmp_path)[0])
        assert summary["state"] == "finished" and summary["exit_code"] == 0
        assert summary["summary"]["test/accuracy"] == pytest.approx(result["test"]["accuracy"])
        assert summary["summary"]["train_examples"] == result["train_examples"]


def test_probe_cli_csv(pretrained, cache_dir, tmp_path):
    """The command the bug was found with: ``pretrainlab probe ... logger=csv``."""
    run = tmp_path / "probe"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline"}
    out = subprocess.run(
        [sys.executable, "-m", "pretrainlab", "probe", f"checkpoint={pretrained['mlm']}"]
        + [f"probe={TASK}", "probe.mode=linear", "logger=csv", f"hydra.run.dir={run}"]
        + [f"paths.cache_dir={cache_dir}", "progress_bar=false", "probe.task.train_size=200"]
        + ["probe.task.dev_size=80", "probe.task.test_size=80", *ONE_FIT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert_logged(run, "csv", LINEAR_COLUMNS)
    assert (run / "result.json").is_file() and (run / ".hydra" / "config.yaml").is_file()


def test_probe_failure_ends_its_wandb_run(pretrained, probe_cfg, tmp_path, monkeypatch):
    """A probe that fails after its W&B run started ends that run (failed): left open, the
    next probe of a study job process would log into it."""
    import wandb

    import pretrainlab.probes.run as probe_run

    def broken(*args, **kwargs):
        raise RuntimeError("broken after fine-tuning")

    monkeypatch.setattr(probe_run, "predict", broken)
    cfg = probe_cfg(pretrained["mlm"], TASK, "probe.mode=finetune", *SMALL, *_logger_args("wandb"))
    with pytest.raises(RuntimeError, match="broken after fine-tuning"):
        probe(cfg, tmp_path)
    assert wandb.run is None
    (run,) = _wandb_runs(tmp_path)
    assert _wandb_summary(run)["exit_code"] == 1


def _run_jobs_here(monkeypatch) -> None:
    """Run the study's job multiruns in this process: each job through the entry point a
    launcher calls (``pretrainlab.study.job._run`` with its plan and id)."""
    from pretrainlab.study import job as job_app

    real = subprocess.run

    def run(cmd, *args, **kwargs):
        if "pretrainlab.study.job" not in cmd:
            return real(cmd, *args, **kwargs)
        value = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in cmd if "=" in a}
        for job_id in value["job_id"].split(","):
            job_app._run(OmegaConf.create({"plan": value["plan"], "job_id": int(job_id)}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", run)


@pytest.mark.parametrize("logger", LOGGERS)
def test_study(cache_dir, tmp_path, monkeypatch, logger):
    from pretrainlab.study.run import study

    logged, wandb = _logger_args(logger), str(logger == "wandb").lower()
    pre = [o for o in TINY if not o.startswith("logger=")] + [*FAST, f"paths.cache_dir={cache_dir}"]
    probe_job = [*ONE_FIT, f"paths.cache_dir={cache_dir}", "probe.task.train_size=200"]
    probe_job += ["probe.task.dev_size=60", "probe.task.test_size=60"]
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    cfg = compose_config(
        "study",
        [
            "study.name=tiny",
            f"study.dir={tmp_path}",
            "study.pretrain_seeds=[0]",
            "study.objectives=[mlm]",
            f"study.tasks=[{TASK}]",
            "study.modes=[linear]",
            "study.budgets=[100]",
            f"study.wandb={wandb}",
            f"study.baseline={wandb}",  # the scratch probe's W&B group comes from its source
            "study.wandb_project=pretrainlab-test",
            f"study.pretrain_overrides={quoted([*pre, *logged])}",
            "study.budget.flops=null",  # not the flagship's budget: max_steps decides
            f"study.probe_overrides={quoted([*probe_job, *logged])}",
        ],
    )
    _run_jobs_here(monkeypatch)
    study(cfg, tmp_path, [], {})
    probes = 2 if logger == "wandb" else 1  # mlm (and scratch)
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == probes and (results.status == "ok").all()
    (pretrain_run,) = [p.parent for p in (tmp_path / "pretrain").rglob("metrics.json")]
    probe_runs = [p.parent for p in (tmp_path / "probe").rglob("result.json")]
    assert len(probe_runs) == probes
    assert_logged(pretrain_run, logger, PRETRAIN_COLUMNS)
    for run in probe_runs:
        assert_logged(run, logger, LINEAR_COLUMNS)
    if logger == "wandb":  # every run of the study in its group, and the summary run
        assert read_json(pretrain_run / "run.json")["wandb_group"] == "tiny"
        assert len(_wandb_runs(tmp_path)) == 1
    else:  # no W&B file anywhere in the study (and with logger=none no CSV log either)
        kinds = {"wandb", "csv"} if logger == "none" else {"wandb"}
        assert not [p for p in tmp_path.rglob("*") if p.is_dir() and p.name in kinds]


def _logs(run: Path) -> dict[str, object]:
    """The run's W&B runs and CSV rows (W&B's own debug logs are written after a run ends)."""
    csv_file = run / "csv" / "metrics.csv"
    return {
        "wandb": [p.name for p in _wandb_runs(run)],
        "csv": csv_file.read_text() if csv_file.is_file() else None,
    }


@pytest.mark.parametrize("kind", ["pretrain", "probe"])
@pytest.mark.parametrize("logger", ["wandb", "csv"])
def test_reproduce_writes_no_logger_files(runs, probe_cfg, tmp_path, logger, kind):
    if kind == "pretrain":
        run = runs[logger]
    else:
        run = tmp_path / "probe"
        probe(probe_cfg(runs["none"], TASK, *ONE_FIT, *_logger_args(logger)), run)
    before = _logs(run)
    assert before["wandb" if logger == "wandb" else "csv"]  # the original run logged
    rows, changes = reproduce(run, rtol=0.01, atol=1e-4)
    assert rows and all(r["ok"] for r in rows)
    assert changes == []  # same machine, same packages: the recorded environments agree
    (out,) = (run / "reproduce").iterdir()
    assert (out / "reproduce.json").is_file()
    assert not [p for p in out.rglob("*") if p.name in ("wandb", "csv", "lightning_logs")]
    assert _logs(run) == before  # and the original's logs are as they were


def test_csv_logger_keeps_rows_before_a_resumed_checkpoint(tmp_path):
    """A resumed pretraining run keeps the CSV rows of the steps its checkpoint holds and drops
    those a killed run logged after it (logged again); without a checkpoint the file is new."""
    (tmp_path / "csv").mkdir()
    old = "epoch,step,train/loss,val/loss\n0,9,2.0,\n0,9,,2.5\n0,19,1.5,\n0,23,1.2,\n"
    (tmp_path / "csv" / "metrics.csv").write_text(old)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 20}, tmp_path / "checkpoints" / "last.ckpt")
    logger = csv_logger(save_dir=tmp_path)
    logger.log_metrics({"train/loss": 1.3, "train/lr": 0.1}, step=20)
    logger.finalize("success")
    header, rows = _csv_rows(tmp_path)
    assert [r["step"] for r in rows] == ["9", "9", "19", "20"]
    assert "train/lr" in header and rows[-1]["train/loss"] == "1.3" and rows[1]["val/loss"] == "2.5"

    (tmp_path / "checkpoints" / "last.ckpt").unlink()  # a fresh run in the same folder
    logger = csv_logger(save_dir=tmp_path)
    logger.log_metrics({"train/loss": 3.0}, step=4)
    logger.finalize("success")
    assert [r["step"] for r in _csv_rows(tmp_path)[1]] == ["4"]
