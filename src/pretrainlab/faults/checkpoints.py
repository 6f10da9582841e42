"""Checkpoints that survive a kill: atomic writes, ``last.ckpt`` timed around validation, the
``wsd`` branch point, and the global RNG states carried in the checkpoint.

- :class:`AtomicCheckpointIO`: checkpoints are written to a temporary file in the same
  folder, fsynced, then renamed (Lightning's own writer goes through a temporary file in /tmp
  and ``shutil.move``, which copies across file systems).
- :class:`RNGState`: the global RNG states travel in the checkpoint, so dropout after a resume
  draws what the uninterrupted run drew.
"""

from __future__ import annotations

import contextlib
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint

from pretrainlab import seeds
from pretrainlab.io import atomic_write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to memory, then :func:`atomic_write_bytes` (temp file, fsync, rename)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        atomic_write_bytes(path, buf.getvalue())


class LastCheckpoint(Checkpoint):
    """``checkpoints/last.ckpt`` every ``every`` steps and at the end of training.

    When validation runs right after a checkpoint step, the save waits for it: a run resumed
    from a checkpoint taken before that validation would not repeat it (Lightning fast-forwards
    past it), so its rows would be missing from the history. If the predicted validation does
    not come, the save happens one step late rather than never.
    """

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), every
        self.saved_step = -1
        self._due: int | None = None

    def _save(self, trainer: pl.Trainer) -> None:
        if self.saved_step != trainer.global_step:
            trainer.save_checkpoint(self.path, weights_only=False)
            self.saved_step = trainer.global_step
        self._due = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.saved_step = trainer.global_step  # restored from last.ckpt (or 0): on disk already

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if self._due is not None:  # the validation we waited for did not run
            self._save(trainer)
        step = trainer.global_step
        if self.due_at(step):
            if _validates_after(trainer):
                self._due = step
            else:
                self._save(trainer)

    def due_at(self, step: int) -> bool:
        return step % self.every == 0

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._due is not None and not trainer.sanity_checking and trainer.state.fn == "fit":
            self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._save(trainer)


class DecayStartCheckpoint(LastCheckpoint):
    """``checkpoints/decay_start.ckpt`` once, at the first decaying step of a ``wsd`` run: the
    state a run of a larger budget branches from (study/budgets.py). Like ``last.ckpt`` it waits
    for a validation due right after that step, so a branch's history misses no row."""

    def __init__(self, path: Path, step: int):
        super().__init__(path, every=step)

    def due_at(self, step: int) -> bool:
        return step == self.every

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._due is not None:
            self._save(trainer)


def _validates_after(trainer: pl.Trainer) -> bool:
    """Whether Lightning runs validation after the current training batch (step-based
    ``val_check_interval``; epoch-based validation saves at the batch end as before)."""
    if not trainer.enable_validation or trainer.check_val_every_n_epoch is not None:
        return False
    every = trainer.val_check_batch
    if not isinstance(every, int) or every < 1:
        return False
    return (trainer.fit_loop.epoch_loop.total_batch_idx + 1) % every == 0


class RNGState(pl.Callback):
    """The torch (CPU and CUDA), numpy and Python RNG states in the checkpoint, as plain types
    (``weights_only`` loading). Applied at the first batch: a fresh run reseeds there from
    ``seed`` (so the training stream does not depend on what setup drew: dataloader
    iterators, the throughput benchmark, cached work), a resumed run restores the saved
    states."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._pending: dict[str, Any] | None = None
        self._applied = False

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state

    def on_train_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._applied:
            return
        self._applied = True
        if self._pending is None:  # a fresh run: one seed for the training stream
            start = seeds.training(self.seed)
            random.seed(start)
            np.random.seed(start % 2**32)
            torch.manual_seed(start)  # CPU and every CUDA device
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
        if "cuda" in state and torch.cuda.is_available():
            with contextlib.suppress(RuntimeError):  # another number of GPUs: keep theirs
                torch.cuda.set_rng_state_all(state["cuda"])
