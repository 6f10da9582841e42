"""Experiment loggers. W&B is the default, offline unless credentials or WANDB_MODE say
otherwise, so a fresh machine logs real (syncable) runs without an account."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, WandbLogger


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
    return CSVLogger(
        save_dir=str(save_dir),
        name="csv",
        version="",
        flush_logs_every_n_steps=flush_logs_every_n_steps,
    )
