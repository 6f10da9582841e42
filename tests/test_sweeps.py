"""Hydra sweeps from the command line: a plain multirun and the optuna search."""

import os
import subprocess
import sys

import yaml

from tests.conftest import TINY


def _run(args, tmp_path, cache_dir):
    env = {**os.environ, "WANDB_MODE": "offline", "PRETRAINLAB_CACHE": str(cache_dir)}
    tiny = [o for o in TINY if not o.startswith("trainer.enable_progress_bar")]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pretrainlab",
            "pretrain",
            *args,
            *tiny,
            "trainer.enable_progress_bar=false",
            "trainer.max_steps=10",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_optuna_tunes_pretraining_against_a_probe_score(tmp_path, cache_dir):
    out = _run(["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2"], tmp_path, cache_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert "optim.lr" in best["best_params"]
    assert 0 <= best["best_value"] <= 1
    metrics = sorted(tmp_path.glob("*/metrics.json"))
    assert len(metrics) == 2
    assert "probe/sentiment/dev" in metrics[0].read_text()
