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

from pretrainlab.io import read_json
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


# made-up secrets given as overrides on the command line, one per place they could be given
CLI_SECRETS = {
    "pretrain +wandb_api_key": "sk-cli-pretrain-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
    "pretrain +hf_token": "hf_cliPRETRAINtoken0123456789abcdef",
    "pretrain hydra env_set": "aws-cli-SECRET/K7MDENG/bPxRfiCYzz",
    "probe +logger_password": "pw-cli-probe-correct-horse-battery-9",
    "study +wandb_api_key": "sk-cli-study-ffeeddccbbaa99887766554433221100",
    "study.pretrain_overrides": "sk-cli-study-job-1234567890abcdef1234",
}


def _cli(command: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    env.pop("WANDB_API_KEY", None)
    out = subprocess.run(
        [sys.executable, "-m", "pretrainlab", command, *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _leaks(folders: list[Path]) -> list[str]:
    """Every file under ``folders`` (binary-safe) that holds one of CLI_SECRETS."""
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{n} in {path}" for n, v in CLI_SECRETS.items() if v.encode() in data]
    return found


def test_secrets_on_the_command_line_never_reach_run_files(cache_dir, tmp_path):
    """pretrain (a one-job multirun: multirun.yaml too), probe and a tiny study, each given
    secrets as overrides, with W&B (offline) on: no file under their folders holds one."""
    s = CLI_SECRETS
    sweep = tmp_path / "sweep"
    pre = [o for o in TINY if not o.startswith(("logger=", "trainer.max_steps"))]
    _cli(
        "pretrain",
        "-m",
        *pre,
        "trainer.max_steps=6",
        "logger=wandb",
        "logger.project=pretrainlab-test",
        f"paths.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=run",
        f"+wandb_api_key={s['pretrain +wandb_api_key']}",
        f"+hf_token={s['pretrain +hf_token']}",
        f"++hydra.job.env_set.AWS_SECRET_ACCESS_KEY={s['pretrain hydra env_set']}",
        cwd=tmp_path,
    )
    run = sweep / "run"
    probe = tmp_path / "probe"
    _cli(
        "probe",
        f"checkpoint={run}",
        "probe=topic",
        "probe.mode=linear",
        "probe.task.train_size=200",
        "probe.task.dev_size=60",
        "probe.task.test_size=60",
        "progress_bar=false",
        "logger.project=pretrainlab-test",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={probe}",
        f"+logger_password={s['probe +logger_password']}",
        cwd=tmp_path,
    )
    study_dir = tmp_path / "study"
    pre_job = [*pre, "trainer.max_steps=6", "logger=none", f"paths.cache_dir={cache_dir}"]
    pre_job.append(f"+wandb_api_key={s['study.pretrain_overrides']}")
    probe_job = ["logger=none", f"paths.cache_dir={cache_dir}", "probe.task.train_size=200"]
    probe_job += ["probe.task.dev_size=60", "probe.task.test_size=60"]
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    _cli(
        "study",
        "study.name=secrets",
        f"study.dir={study_dir}",
        "study.pretrain_seeds=[0]",
        "study.objectives=[clm]",
        "study.baseline=false",
        "study.tasks=[topic]",
        "study.modes=[linear]",
        "study.budgets=[100]",
        "study.wandb=true",
        "study.wandb_project=pretrainlab-test",
        f"study.pretrain_overrides={quoted(pre_job)}",
        "study.budget.flops=null",  # not the flagship's budget: max_steps decides
        f"study.probe_overrides={quoted(probe_job)}",
        f"+wandb_api_key={s['study +wandb_api_key']}",
        cwd=tmp_path,
    )
    # the files that would hold them exist, with the secret redacted
    assert (sweep / "multirun.yaml").is_file() and (run / ".hydra" / "hydra.yaml").is_file()
    for folder in (run, probe, study_dir):  # W&B's run file, its config and argv redacted
        (wandb_file,) = [p for p in (folder / "wandb").rglob("*.wandb")]
        assert b"<redacted>" in wandb_file.read_bytes()
    assert "wandb_api_key: <redacted>" in (run / "config.yaml").read_text()
    assert "+wandb_api_key='<redacted>'" in (study_dir / "plan.json").read_text()
    assert "+hf_token='<redacted>'" in read_json(run / "run.json")["argv"]
    (job,) = (study_dir / "pretrain").iterdir()
    assert read_json(job / "metrics.json")["steps"] == 6  # the job ran with <redacted>
    assert _leaks([sweep, probe, study_dir]) == []


def test_resume_with_a_secret_on_the_command_line_finds_the_finished_run(pretrain_cfg, tmp_path):
    """config.yaml is written redacted and compared redacted: the same command run again (its
    secret included) finds the run completed instead of starting it over."""
    from pretrainlab.pretrain import pretrain

    run = tmp_path / "run"
    cfg = pretrain_cfg("trainer.max_steps=4", f"+hf_token={CLI_SECRETS['pretrain +hf_token']}")
    pretrain(cfg, run)
    text = (run / "config.yaml").read_text()
    assert CLI_SECRETS["pretrain +hf_token"] not in text and "hf_token: <redacted>" in text
    before = (run / "metrics.json").stat().st_mtime_ns
    pretrain(cfg, run)  # "already completed this config; nothing to do"
    assert (run / "metrics.json").stat().st_mtime_ns == before


REDACTED_KEYS = [
    "key",
    "api_key",
    "apiKey",
    "APIKey",
    "wandb_api_key",
    "WANDB_API_KEY",
    "WANDB_MODE",  # any WANDB_* environment-variable name
    "hf_token",
    "HF_TOKEN",
    "access_token",
    "authtoken",
    "auth",
    "client_secret",
    "secret_name",
    "db_password",
    "passwd",
    "aws_secret_access_key",
    "credentials",
    "sort_key",  # over-redacted, harmless: none of our configs has such a key
]
KEPT_KEYS = [
    "tokenizer",
    "tokenizer_docs",
    "max_tokens",
    "num_tokens",
    "token_type_ids",
    "pad_token",
    "mask_token",
    "pad_token_id",
    "exclude_keys",
    "keys",
    "monkey",
    "access_key_id",
    "wandb_project",
    "wandb_mode",
    "wandb",
    "optimized_metric",
    "project",
]


def test_secret_key_rule():
    from pretrainlab.redact import is_secret_key, is_secret_path

    assert [k for k in REDACTED_KEYS if not is_secret_key(k)] == []
    assert [k for k in KEPT_KEYS if is_secret_key(k)] == []
    assert is_secret_path(["logger", "settings", "base_url"])  # W&B settings, all of them
    assert is_secret_path(["wandb_settings", "anything"])
    assert is_secret_path(["hydra", "job", "env_set", "HF_TOKEN"])
    assert not is_secret_path(["probe", "settings", "pooling"])
    assert not is_secret_path(["study", "wandb_project"])


def test_redact_argv_forms():
    from pretrainlab.redact import QUOTED, REDACTED, redact_argv

    secret = "sk-abc123def456ghi789"
    argv = [
        "pretrainlab pretrain",
        "objective=mlm",
        f"logger.api_key={secret}",
        f"+logger.api_key={secret}",
        f"++wandb_api_key='{secret}'",
        "~logger.api_key",
        f"~hf_token={secret}",
        "+hf_token=a1,b2,c3",  # a sweep: every value goes
        f"+logger.settings={{api_key: {secret}}}",
        f"hydra.run.dir=/runs/{secret}",  # the value wherever else it appears
        "+token=abc",  # short: redacted where it is keyed
        'study.pretrain_overrides=["seed=1","+hf_token=abc"]',  # nested in a list value
        "study.probe_overrides=['+hf_token=abc']",
        "probe.mode=linear",
        "-m",
    ]
    assert redact_argv(argv) == [
        "pretrainlab pretrain",
        "objective=mlm",
        f"logger.api_key={QUOTED}",
        f"+logger.api_key={QUOTED}",
        f"++wandb_api_key={QUOTED}",
        "~logger.api_key",
        f"~hf_token={QUOTED}",
        f"+hf_token={QUOTED}",
        f"+logger.settings={QUOTED}",
        f"hydra.run.dir=/runs/{REDACTED}",
        f"+token={QUOTED}",
        f'study.pretrain_overrides=["seed=1","+hf_token={QUOTED}"]',  # still valid overrides
        f"study.probe_overrides=['+hf_token=\"{REDACTED}\"']",
        "probe.mode=linear",
        "-m",
    ]
    plain = ["objective=mlm", "seed=1", "hydra/launcher=joblib", "tokenizer.vocab_size=2000"]
    assert redact_argv(plain) == plain


def test_redact_config_keys_overrides_and_copies():
    from omegaconf import OmegaConf

    from pretrainlab.redact import QUOTED, REDACTED, redact_config

    secret = "hf_abcdefghijklmnop123"
    cfg = OmegaConf.create(
        {
            "hf_token": secret,
            "name": "run-${hf_token}",  # an interpolation that copies it
            "logger": {"project": "p", "settings": {"base_url": "x"}, "mode": "offline"},
            "tokenizer": {"vocab_size": 2000},
            "study": {"pretrain_overrides": [f"+wandb_api_key={secret}x", "seed=1"]},
            "hydra": {"job": {"override_dirname": "+token=abc,seed=1"}},
            "none_key": None,
        }
    )
    out = redact_config(cfg)
    assert OmegaConf.to_container(out) == {
        "hf_token": REDACTED,
        "name": f"run-{REDACTED}",
        "logger": {"project": "p", "settings": REDACTED, "mode": "offline"},
        "tokenizer": {"vocab_size": 2000},
        "study": {"pretrain_overrides": [f"+wandb_api_key={QUOTED}", "seed=1"]},
        "hydra": {"job": {"override_dirname": f"+token={QUOTED},seed=1"}},
        "none_key": None,
    }
    assert cfg.hf_token == secret  # a copy: the config itself is untouched


def test_redact_yaml_file_keeps_interpolations(tmp_path):
    from pretrainlab.redact import redact_yaml_file

    path = tmp_path / "hydra.yaml"
    path.write_text(
        "hydra:\n  run:\n    dir: out/${now:%H}\n  overrides:\n    task:\n"
        "    - seed=1\n    - +api_key=sk-0123456789abcdef\n"
    )
    assert redact_yaml_file(path)
    text = path.read_text()
    assert "sk-0123456789abcdef" not in text and "+api_key='<redacted>'" in text
    assert "dir: out/${now:%H}" in text
    assert not redact_yaml_file(path)  # nothing left to redact: not rewritten
