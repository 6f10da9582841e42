"""Callbacks shared by every pretraining run: throughput/MFU, a local metric history, the
run's progress for a study's live view, and a progress bar that counts steps."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import RichProgressBar

from pretrainlab.io import atomic_write_json, atomic_write_text
from pretrainlab.perf import matmul_peak_flops


class Throughput(pl.Callback):
    """Tokens per second and model FLOPs utilisation, logged every ``every`` steps.

    Counts input positions (``input_ids.numel()``), a host-side number: no device sync.
    """

    def __init__(self, flops_per_token: float, every: int):
        self.flops_per_token, self.every = flops_per_token, every
        self.tokens, self.t0, self.total_tokens, self.train_s = 0, None, 0, 0.0
        self.window_s = 0.0
        self.peak: float | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        device = module.device.type
        dtype = torch.bfloat16 if "bf16" in str(trainer.precision) else torch.float32
        self.peak = matmul_peak_flops(device, dtype)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def _pause(self) -> float:
        """Seconds since the timer started (0 if stopped), and stop it."""
        if self.t0 is None:
            return 0.0
        elapsed, self.t0 = time.perf_counter() - self.t0, None
        return elapsed

    def on_validation_start(self, trainer, module) -> None:
        # validation and checkpointing are not training throughput
        self.window_s += self._pause()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.tokens += batch["input_ids"].numel()
        if trainer.global_step % self.every:
            return
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        dt = self.window_s + self._pause()
        rate = self.tokens / dt
        self.total_tokens += self.tokens
        self.train_s += dt
        module.log_dict(
            {"train/tokens_per_s": rate, "train/mfu": rate * self.flops_per_token / self.peak},
            on_step=True,
            on_epoch=False,
        )
        self.tokens, self.window_s = 0, 0.0

    def summary(self) -> dict[str, float]:
        rate = self.total_tokens / self.train_s if self.train_s else float("nan")
        return {
            "train/tokens_per_s": rate,
            "train/mfu": rate * self.flops_per_token / self.peak if self.peak else math.nan,
            "matmul_peak_gflops": (self.peak or math.nan) / 1e9,
        }


class History(pl.Callback):
    """Every logged scalar as ``step,name,value`` rows in ``RUN/history.csv`` (loss curves for
    the study report, whatever logger is on). The rows travel in the checkpoint, so a resumed
    run keeps the history of the steps before it (and rows logged after the last checkpoint
    by a killed run are replaced, not duplicated)."""

    def __init__(self, path: Path, every: int):
        self.path, self.every, self.rows = path, every, []

    def _record(self, trainer: pl.Trainer, prefix: str) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.startswith(prefix):
                self.rows.append((trainer.global_step, name, float(value)))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0:
            self._record(trainer, "train/")

    def on_validation_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val/")
            self.flush()

    def flush(self) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["step", "name", "value"])
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [tuple(r) for r in state["rows"]]


class StepProgress(pl.Callback):
    """``RUN/progress.json`` (``step``, ``max_steps``, ``updated``), rewritten at most every
    ``every_s`` seconds and at the end: what ``pretrainlab status`` and a study's live view show
    of a running pretraining job, from any process or machine that sees the folder."""

    def __init__(self, path: Path, every_s: float = 2.0):
        self.path, self.every_s, self.last = path, every_s, 0.0

    def _write(self, trainer: pl.Trainer) -> None:
        self.last = time.time()
        atomic_write_json(
            self.path,
            {"step": trainer.global_step, "max_steps": trainer.max_steps, "updated": self.last},
        )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.is_global_zero and time.time() - self.last >= self.every_s:
            self._write(trainer)

    def on_train_end(self, trainer, module) -> None:
        if trainer.is_global_zero:
            self._write(trainer)


class StepProgressBar(RichProgressBar):
    """Lightning's rich bar, counting optimizer steps of a step-bounded run (``max_steps``)
    where Lightning counts batches of an epoch and labels it ``Epoch 3/-2``."""

    def _get_train_description(self, current_epoch: int) -> str:
        return (
            "step" if self.trainer.max_steps > 0 else super()._get_train_description(current_epoch)
        )

    @property
    def total_train_batches(self) -> int | float:
        steps = self.trainer.max_steps
        return steps if steps > 0 else super().total_train_batches

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, module)
        self._update(self.train_progress_bar_id, trainer.global_step)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)
        if self.train_progress_bar_id is None:  # resumed mid-epoch
            self._initialize_train_progress_bar_id()
        self._update(self.train_progress_bar_id, trainer.global_step)
        self._update_metrics(trainer, module)
        self.refresh()
