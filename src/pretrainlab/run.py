"""The run directory contract: run.json (provenance and status), metrics.json, checkpoints/,
hf/. Every file here is written atomically."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from pretrainlab.io import atomic_write_json, read_json
from pretrainlab.redact import redact_argv

LAST_CKPT = "checkpoints/last.ckpt"  # saved every checkpoint_every steps and on SIGTERM
DECAY_CKPT = "checkpoints/decay_start.ckpt"  # a wsd run's state before it decays
PACKAGES = (
    "torch",
    "pytorch-lightning",
    "transformers",
    "tokenizers",
    "datasets",
    "hydra-core",
    "torchmetrics",
    "wandb",
    "pretrainlab",
)


def git_commit() -> str:
    """The commit of the pretrainlab source tree (``+dirty`` when it has changes)."""
    here = Path(__file__).resolve().parent

    def git(*args: str, check: bool = False) -> str:
        done = subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=check
        )
        return done.stdout.strip()

    try:
        sha = git("rev-parse", "HEAD", check=True)
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def machine() -> dict[str, Any]:
    """What can change floating-point results between machines that run the same config with
    the same package versions: the CPU kernel set torch dispatches to (AVX2 and AVX512 kernels
    sum in different orders), its intra-op thread count, and the GPU if one is used."""
    import torch

    out: dict[str, Any] = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.machine(),
    }
    if torch.cuda.is_available():
        out["cuda_device"] = torch.cuda.get_device_name(0)
    return out


def environment() -> dict[str, Any]:
    """``versions`` and ``machine``: the record :mod:`pretrainlab.study.reproduce` compares."""
    return {"versions": versions(), "machine": machine()}


def provenance() -> dict[str, Any]:
    return {
        "git_commit": git_commit(),
        **environment(),
        "host": platform.node(),
        "argv": redact_argv(sys.argv),  # a secret override is not kept (pretrainlab.redact)
        "cpu_count": os.cpu_count(),
    }


class RunRecord:
    """``RUN/run.json``: created when a run starts, updated as it ends (completed or failed)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "run.json"
        self.data: dict[str, Any] = read_json(self.path) if self.path.exists() else {}

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        atomic_write_json(self.path, self.data)

    def start(self, **fields: Any) -> None:
        self.t0 = time.time()
        attempts = self.data.get("attempts", 0) + 1
        self.update(
            status="running",
            attempts=attempts,
            started=time.strftime("%Y-%m-%dT%H:%M:%S"),
            **provenance(),
            **fields,
        )

    def finish(self, status: str, error: str | None = None) -> None:
        self.update(
            status=status,
            error=error,
            finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
            wall_s=round(time.time() - self.t0, 2),
        )


def copy_run(
    origin: Path,
    target: Path,
    ignore: tuple[str, ...],
    checkpoint: Path | None = None,
    drop: tuple[str, ...] = (),
    **record: str,
) -> None:
    """Start ``target`` as a copy of the run folder ``origin`` (less ``ignore``), whose
    ``run.json`` loses ``drop`` and gains ``record``, and, given ``checkpoint``, resumes from it
    (copied as ``last.ckpt``). Copied beside, then renamed: a killed copy leaves no half run."""
    part = target.with_name(f"{target.name}.{record['status']}")
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(origin, part, ignore=shutil.ignore_patterns(*ignore))
    if checkpoint is not None:
        (part / LAST_CKPT).parent.mkdir(exist_ok=True)
        shutil.copy2(checkpoint, part / LAST_CKPT)
    run = read_json(part / "run.json")
    for key in drop:
        run.pop(key, None)
    run.update(record)
    atomic_write_json(part / "run.json", run)
    part.rename(target)
