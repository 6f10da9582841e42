"""A study killed in its probe phase resumes where it stopped, and a study directory moved
elsewhere is recognised as finished: its report, load_study and reproduce still read it.

The kill test runs the real CLI in its own process group and SIGKILLs the whole group (the
study and the job process it launched), as a lost machine or a scheduler would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pretrainlab.io import read_json
from pretrainlab.study.collect import load_study
from pretrainlab.study.reproduce import reproduce
from pretrainlab.study.run import study
from pretrainlab.study.status import snapshot
from tests.conftest import TINY, compose_config

WALL = ["wall_s"]  # wall-time columns differ between runs; everything else must not


def _overrides(study_dir: Path, cache: Path) -> list[str]:
    pre = [o for o in TINY if not o.startswith("logger")] + [f"paths.cache_dir={cache}"]
    probe = [
        f"paths.cache_dir={cache}",
        "probe.task.train_size=200",
        "probe.task.dev_size=60",
        "probe.task.test_size=60",
        "probe.finetune.max_epochs=1",
        "probe.finetune.lr_grid=null",  # one fit per job: the protocol is tested elsewhere
    ]
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in [*xs, "logger=none"]) + "]"  # noqa: E731
    return [
        "study.name=resume",
        f"study.dir={study_dir}",
        "study.pretrain_seeds=[0,1]",
        "study.tasks=[topic]",
        "study.modes=[linear,finetune]",
        "study.budgets=[100]",
        "study.objectives=[mlm]",
        "study.wandb=false",
        f"study.pretrain_overrides={quoted(pre)}",
        "study.budget.flops=null",  # not the flagship's budget: max_steps decides
        f"study.probe_overrides={quoted(probe)}",
    ]


def _results(study_dir: Path) -> pd.DataFrame:
    return pd.read_csv(study_dir / "results.csv").drop(columns=WALL)


def _result_mtimes(study_dir: Path) -> dict[str, float]:
    return {
        str(p.relative_to(study_dir)): p.stat().st_mtime for p in study_dir.rglob("result.json")
    }


@pytest.fixture(scope="module")
def finished(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted tiny study (in-process): 2 pretraining and 8 probe jobs."""
    study_dir = tmp_path_factory.mktemp("uninterrupted")
    study(compose_config("study", _overrides(study_dir, cache_dir)), study_dir, [], {})
    return study_dir


def test_study_killed_in_probe_phase_resumes(finished, cache_dir, tmp_path):
    study_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "pretrainlab", "study", *_overrides(study_dir, cache_dir)]
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 300
    while len(list((study_dir / "probe").rglob("result.json"))) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the study never reached its probe phase"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the study and its job process, mid-probe-phase
    proc.wait()
    finished_before = _result_mtimes(study_dir)
    assert 3 <= len(finished_before) < 8, "killed too late to leave probe jobs undone"
    assert not (study_dir / "results.csv").exists()
    killed = snapshot(study_dir)  # `pretrainlab status` of the killed study
    probes = next(p for p in killed.phases if p.name == "probe")
    assert killed.state == "stopped" and not killed.running
    assert probes.counts["done"] == len(finished_before)
    assert probes.counts["incomplete"] + probes.counts["pending"] == 8 - len(finished_before)

    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    left = 8 - len(finished_before)
    assert f"probe: {left} jobs to run, {len(finished_before)} already finished" in again.stdout
    assert "pretrain: 0 jobs to run, 2 already finished" in again.stdout
    after = _result_mtimes(study_dir)
    assert {k: after[k] for k in finished_before} == finished_before  # not redone
    assert len(after) == 8
    pd.testing.assert_frame_equal(_results(study_dir), _results(finished))
    assert snapshot(study_dir).state == "finished"


def test_moved_study_is_recognised_as_finished(finished, cache_dir, tmp_path):
    moved = tmp_path / "elsewhere" / "study"
    moved.parent.mkdir()
    shutil.copytree(finished, moved)
    hidden = finished.with_name(finished.name + "-gone")
    finished.rename(hidden)  # the old location no longer exists, as after a move
    try:
        before = _result_mtimes(moved)
        study(compose_config("study", _overrides(moved, cache_dir)), moved, [], {})
        assert _result_mtimes(moved) == before  # nothing re-ran
        runs = read_json(moved / "timings.json")["invocations"]
        assert sum(r.get("probe", {}).get("jobs", 0) for r in runs) == 8  # the first run's
        pd.testing.assert_frame_equal(_results(moved), _results(hidden))
        results, curves = load_study(moved)
        assert (results.status == "ok").all() and len(curves) > 0
        probe_run = moved / results.run_dir[results.objective == "mlm"].iloc[0]
        scratch_run = moved / results.run_dir[results.objective == "scratch"].iloc[0]
        for run in (probe_run, scratch_run):  # their config.yaml names the old checkpoint
            rows, changes = reproduce(run, rtol=0.01, atol=1e-4)
            assert rows and all(r["ok"] for r in rows) and changes == []
    finally:
        hidden.rename(finished)
