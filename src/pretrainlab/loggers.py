"""Experiment loggers. W&B is the default, offline unless credentials or WANDB_MODE say
otherwise, so a fresh machine logs real (syncable) runs without an account."""

from __future__ import annotations

import csv
import io
import math
import netrc
import os
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from pretrainlab.io import atomic_write_text


def wandb_mode(mode: str = "auto") -> str:
    """``auto`` -> WANDB_MODE if set, online if an API key or netrc entry exists, else offline."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError):
        pass
    return "offline"


def wandb_logger(
    *,
    save_dir: str | Path,
    project: str = "pretrainlab",
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    mode: str = "auto",
    job_type: str = "pretrain",
    run_id: str | None = None,
) -> WandbLogger:
    """A Lightning WandbLogger; ``run_id`` resumes the same W&B run instead of a duplicate."""
    return WandbLogger(
        save_dir=str(save_dir),
        project=project,
        name=name,
        group=group,
        tags=list(tags or []),
        mode=wandb_mode(mode),
        job_type=job_type,
        id=run_id,
        resume="allow" if run_id else None,
        log_model=False,
    )


def csv_logger(
    *, save_dir: str | Path, flush_logs_every_n_steps: int = 100, **_: object
) -> CSVLogger:
    """``RUN/csv/metrics.csv``: one row per logging step, one column per metric.

    In a run folder that holds ``checkpoints/last.ckpt`` (a pretraining run that resumes), the
    rows of the steps before that checkpoint are kept (Lightning's writer would delete them)
    and the rows a killed run logged after it are dropped, since the resumed run logs them
    again; anywhere else an earlier file is replaced."""
    return _RunCSVLogger(
        resume_step=_checkpoint_step(Path(save_dir)),
        save_dir=str(save_dir),
        name="csv",
        version="",
        flush_logs_every_n_steps=flush_logs_every_n_steps,
    )


def _checkpoint_step(run_dir: Path) -> int | None:
    """The optimizer step of the run's ``last.ckpt`` (None: no readable checkpoint)."""
    from pretrainlab.run import LAST_CKPT

    path = run_dir / LAST_CKPT
    if not path.is_file():
        return None
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(ckpt["global_step"])
    except Exception:  # unreadable: pretrain stops on it before logging anything
        return None


class _ResumedWriter(ExperimentWriter):
    """Keeps the rows of ``metrics.csv`` logged before optimizer step ``resume_step``
    (Lightning logs optimizer step ``s`` as row step ``s - 1``: a row below ``resume_step``
    belongs to a step the checkpoint holds)."""

    def __init__(self, log_dir: str, resume_step: int) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:  # called by __init__ instead of deleting the file
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = [r for r in reader if _row_step(r) < self.resume_step]
        if not rows:
            path.unlink()
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())
        self.metrics_keys = fields  # later saves append, or rewrite with new columns


def _row_step(row: dict[str, str]) -> float:
    try:
        return int(row.get("step") or "")
    except ValueError:
        return math.inf


class _RunCSVLogger(CSVLogger):
    def __init__(self, *, resume_step: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            if self._resume_step is None:
                self._experiment = ExperimentWriter(log_dir=self.log_dir)
            else:
                self._experiment = _ResumedWriter(self.log_dir, self._resume_step)
        return self._experiment
