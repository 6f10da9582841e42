"""A wheel of the package, installed without ``-e`` into a fresh venv outside the checkout,
finds its configs (``pkg://pretrainlab.conf``) and a user's config folder
(PRETRAINLAB_CONFIG_DIR): the install a library user or a cluster image gets."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel; the test venv's site-packages (torch and the other
    dependencies, not pretrainlab: its editable .pth is not read) is on its path after it."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root), "."], source)
    (wheel,) = root.glob("pretrainlab-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root)
    _run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], root)
    (purelib,) = (venv / "lib").glob("python*/site-packages")
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def test_wheel_install_runs_outside_the_checkout(wheel_venv: Path, tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline", "PRETRAINLAB_CONFIG_DIR": str(tmp_path / "my")}
    env.pop("PYTHONPATH", None)
    where = _run(
        [str(wheel_venv / "bin/python"), "-c", "import pretrainlab; print(pretrainlab.__file__)"],
        tmp_path,
        env,
    )
    assert str(wheel_venv) in where and str(REPO) not in where
    (tmp_path / "my" / "objective").mkdir(parents=True)
    (tmp_path / "my" / "objective" / "mlm30.yaml").write_text(
        "defaults: [mlm, _self_]\nmask_rate: 0.3\n"
    )
    exe = str(wheel_venv / "bin/pretrainlab")
    job = _run([exe, "study", "experiment=mlm_vs_clm", "--cfg", "job"], tmp_path, env)
    assert "objectives:" in job and "mlm" in job
    mine = _run([exe, "pretrain", "objective=mlm30", "--cfg", "job"], tmp_path, env)
    assert "mask_rate: 0.3" in mine
    small = ["corpus.num_words=20000", "tokenizer.vocab_size=500", "data.seq_len=32"]
    run = tmp_path / "run"
    _run(
        [
            exe,
            "pretrain",
            "trainer.max_steps=5",
            "logger=none",
            f"hydra.run.dir={run}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            *small,
        ],
        tmp_path,
        env,
    )
    assert (run / "metrics.json").is_file() and (run / "hf" / "config.json").is_file()
    report = "from pretrainlab.study.render import Doc, render_html; print(render_html(Doc(), 'T'))"
    page = _run([str(wheel_venv / "bin/python"), "-c", report], tmp_path, env)
    assert "<title>T</title>" in page and "text-align: right" in page  # templates ship too
