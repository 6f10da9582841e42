"""Preemption: SIGTERM (what SLURM sends) or submitit's requeue signal saves
``checkpoints/last.ckpt`` at the end of the current step, then exits non-zero (SIGTERM) or
hands over to submitit, which requeues the job."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

PREEMPTED_EXIT = 128 + signal.SIGTERM  # the shell's code for "terminated by SIGTERM"


def stopping(trainer: pl.Trainer) -> bool:
    """SIGTERM or a deferred requeue signal arrived (on any rank): save at the end of this
    step. One small all-reduce per step under DDP (Lightning broadcasts its own flag too)."""
    local = bool(trainer.received_sigterm or Preemption.pending is not None)
    if trainer.world_size == 1:
        return local
    step = trainer.global_step
    if _decided.get(id(trainer), (None,))[0] != step:  # once per step on every rank
        decision = bool(trainer.strategy.reduce_boolean_decision(local, all=False))
        _decided[id(trainer)] = (step, decision)
    return _decided[id(trainer)][1]


_decided: dict[int, tuple[int, bool]] = {}


class Preemption(pl.Callback):
    """Save ``last.ckpt`` at the end of the step during which SIGTERM or the submitit requeue
    signal arrived, then leave.

    SIGTERM: Lightning records it (``trainer.received_sigterm``) and raises SIGTERMException
    after the step; outside SLURM it saves nothing, so this callback saves first; the run then
    exits with status 143 and the same command resumes it. Under submitit, its requeue signal
    (``SUBMITIT_PREEMPT_SIGNAL``, USR2 by default, sent ``signal_delay_s`` before the time
    limit and on preemption) would requeue and exit from inside the signal handler, in the
    middle of a step: this callback defers that handler to the end of the step, after saving.
    """

    pending: Any = None  # (signum, frame, handler) of a deferred requeue signal

    def __init__(self, path: Path):
        self.path = Path(path)
        self.saved_step = -1
        self.handed_over = False  # to submitit's handler (which requeues the job)
        self._installed: tuple[int, Any] | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        Preemption.pending = None
        self.saved_step = trainer.global_step
        signum = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)
        if signum is None or not _main_thread():
            return
        previous = signal.getsignal(signum)
        if not callable(previous):  # nobody (submitit) waits for it: leave the default alone
            return

        def defer(sig: int, frame: Any) -> None:
            Preemption.pending = (sig, frame, previous)

        signal.signal(signum, defer)
        self._installed = (signum, previous)

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        pending = Preemption.pending
        if not stopping(trainer):
            return
        if self.saved_step != trainer.global_step:
            trainer.save_checkpoint(self.path, weights_only=False)
            self.saved_step = trainer.global_step
        if pending:
            Preemption.pending = None
            self._restore()
            sig, frame, handler = pending
            self.handed_over = True
            handler(sig, frame)  # submitit: checkpoint, requeue, exit

    def teardown(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._installed is not None and _main_thread():
            signal.signal(*self._installed)
        self._installed = None


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
