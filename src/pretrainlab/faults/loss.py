"""Stop on a non-finite training loss, naming the first bad step, before any checkpoint is
written after it."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from pretrainlab.errors import PretrainlabError
from pretrainlab.faults.preemption import stopping


class FiniteLoss(pl.Callback):
    """Raise :class:`PretrainlabError` naming the first step whose training loss was NaN/inf.

    Every step adds ``not isfinite(loss)`` to a device-side flag (no sync); the flag is read at
    log steps, checkpoint steps, the last step and before a preemption save. This callback must
    come before any callback that saves checkpoints (Lightning runs ModelCheckpoint last).
    """

    def __init__(self, every: int, checkpoint_every: int):
        self.every, self.checkpoint_every = every, checkpoint_every
        self.first_bad: torch.Tensor | None = None  # step number, NONE while all finite
        self.bad_value: torch.Tensor | None = None  # the loss at that step

    NONE = 1 << 62

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach().float()
        step = trainer.global_step  # the optimizer step this loss belongs to (1-based)
        if self.first_bad is None or self.first_bad.device != loss.device:
            self.first_bad = torch.full((), self.NONE, dtype=torch.long, device=loss.device)
            self.bad_value = torch.zeros((), device=loss.device)
        first = ~torch.isfinite(loss) & (self.first_bad == self.NONE)
        self.first_bad = torch.where(first, step, self.first_bad)
        self.bad_value = torch.where(first, loss, self.bad_value)
        if (
            step % self.every == 0
            or step % self.checkpoint_every == 0
            or step >= trainer.max_steps
            or stopping(trainer)
        ):
            self.check(trainer)

    def check(self, trainer: pl.Trainer) -> None:
        if self.first_bad is None:
            return
        first_bad = self.first_bad
        if trainer.world_size > 1:  # every rank stops together, at the earliest bad step
            import torch.distributed as dist

            first_bad = trainer.strategy.reduce(first_bad.clone(), reduce_op=dist.ReduceOp.MIN)
        first = int(first_bad)
        if first != self.NONE:
            value = float(self.bad_value) if int(self.first_bad) == first else "non-finite"
            raise PretrainlabError(
                f"the training loss became {value} at step {first}: stopping. "
                "No checkpoint was written after it; checkpoints/last.ckpt holds the last good "
                "state. Lower optim.lr, raise optim.warmup_steps or keep "
                "trainer.gradient_clip_val, then start a new run directory."
            )
