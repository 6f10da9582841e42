"""Security: checkpoints and exports load without running pickled code, no remote code, and
secrets in the environment never reach a file or log of a run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[1]
# made-up values in the shape of real ones (nothing is sent: WANDB_MODE=offline)
SECRETS = {
    "WANDB_API_KEY": "sk-test-1234abcd5678efgh9012ijkl3456mnop7890qrst",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzTESTSECRET",
    "HF_TOKEN": "hf_testTOKENnotREAL0123456789abcdefgh",
}


def test_checkpoint_holds_only_plain_types(pretrained):
    for run in pretrained.values():
        path = run / "checkpoints" / "last.ckpt"
        assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
        ckpt = torch.load(path, weights_only=True)  # no pickled code runs
        assert ckpt["global_step"] > 0 and isinstance(ckpt["hyper_parameters"], dict)


def test_resume_loads_with_weights_only(monkeypatch, pretrained, pretrain_cfg, tmp_path):
    """A resumed fit reads last.ckpt with weights_only=True (a pickle with code is refused)."""
    import shutil

    from pretrainlab.io import atomic_write_json, read_json
    from pretrainlab.pretrain import pretrain

    run = tmp_path / "run"
    shutil.copytree(pretrained["mlm"], run)
    info = read_json(run / "run.json")
    atomic_write_json(run / "run.json", {**info, "status": "running"})  # killed after last.ckpt
    seen = []
    original = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    pretrain(pretrain_cfg("objective=mlm"), run)  # at max_steps: restore, validate, export
    assert seen and all(w is True for w in seen)
    assert read_json(run / "run.json")["status"] == "completed"


def test_hf_export_is_safetensors_only(pretrained):
    for run in pretrained.values():
        names = {p.name for p in (run / "hf").iterdir()}
        assert "model.safetensors" in names
        assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl", ".pth", ".ckpt"))]


def test_probe_checkpoint_loads_without_torch_load(monkeypatch, pretrained):
    from pretrainlab.probes.checkpoint import load_checkpoint

    def forbidden(*args, **kwargs):
        raise AssertionError("the probe must not unpickle anything")

    monkeypatch.setattr(torch, "load", forbidden)
    ckpt = load_checkpoint(str(pretrained["mlm"]))
    assert ckpt.encoder.config.hidden_size == 128


def test_no_trust_remote_code_anywhere():
    offenders = []
    for folder in ("src", "conf", "experiments", "benchmarks"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".yaml", ".yml") and path.is_file():
                for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if re.search(r"trust_remote_code\s*[=:]\s*True", line):
                        offenders.append(f"{path.relative_to(REPO)}:{i}")
    assert offenders == []


def test_secrets_in_the_environment_never_reach_run_files(cache_dir, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, **SECRETS, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    overrides = [o for o in TINY if not o.startswith(("logger=", "trainer.max_steps"))]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pretrainlab",
            "pretrain",
            *overrides,
            "trainer.max_steps=6",
            "logger=wandb",
            "logger.project=pretrainlab-test",
            f"paths.cache_dir={cache_dir}",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    files = [p for p in run.rglob("*") if p.is_file()]
    # what a run leaves: hydra's config, run.json, metrics, history, checkpoint, export, W&B
    assert {"run.json", "config.yaml", "metrics.json", "last.ckpt", "hydra.yaml"} <= {
        p.name for p in files
    }
    assert any(".wandb" in p.name for p in files)
    leaks = []
    for path in files:
        data = path.read_bytes()
        for name, value in SECRETS.items():
            if value.encode() in data:
                leaks.append(f"{name} in {path.relative_to(run)}")
    for name, value in SECRETS.items():
        if value in out.stdout or value in out.stderr:
            leaks.append(f"{name} in the console output")
    assert leaks == []


@pytest.mark.parametrize("name", ["run.json", "config.yaml"])
def test_run_record_has_no_environment_dump(pretrained, name):
    text = (pretrained["mlm"] / name).read_text()
    for var in ("PATH", "HOME"):
        value = os.environ.get(var)
        if value and len(value) > 6:
            assert value not in text, f"{var}'s value is in {name}"
