"""Surviving faults in a pretraining run: kills, preemption, non-finite losses, full disks.

- :class:`AtomicCheckpointIO`: checkpoints are written to a temporary file in the same
  folder, fsynced, then renamed (Lightning's own writer goes through a temporary file in /tmp
  and ``shutil.move``, which copies across file systems).
- :class:`FiniteLoss`: stops on a non-finite training loss, naming the first bad step, before
  any checkpoint is written after it. It accumulates the check on the device and syncs only
  at log and checkpoint steps (a host sync per step would cost GPU speed).
- :class:`Preemption`: on SIGTERM (what SLURM sends on preemption) or submitit's requeue
  signal, saves ``checkpoints/last.ckpt`` at the end of the current step, then exits non-zero
  (SIGTERM) or hands over to submitit, which requeues the job.
- :class:`RNGState`: the global RNG states travel in the checkpoint, so dropout after a resume
  draws what the uninterrupted run drew.
- :func:`check_writable` / :func:`disk_errors`: a read-only or full output folder is one clear
  error, not a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import random
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import atomic_write_bytes

PREEMPTED_EXIT = 128 + signal.SIGTERM  # the shell's code for "terminated by SIGTERM"


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

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
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
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
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
            or _stopping(trainer)
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


def _stopping(trainer: pl.Trainer) -> bool:
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

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        pending = Preemption.pending
        if not _stopping(trainer):
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
            random.seed(self.seed + 1)
            np.random.seed((self.seed + 1) % 2**32)
            torch.manual_seed(self.seed + 1)  # CPU and every CUDA device
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


# --- output folders ---------------------------------------------------------------------------
DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def check_writable(run_dir: Path) -> None:
    """Fail before any work when the run folder cannot be created or written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as err:
        raise _disk_error(err, run_dir) from None


def _disk_error(err: OSError, where: Path | str | None = None) -> PretrainlabError:
    reason = DISK_ERRNOS.get(err.errno or -1, err.strerror or str(err))
    place = err.filename or where
    return PretrainlabError(
        f"cannot write the run's files to {str(place)!r}: {reason} ({err.strerror or err}). "
        "Files already there are unchanged (every write goes to a temporary file first). Free "
        "space or pick a writable hydra.run.dir, then run the same command again."
    )


_DISK_MESSAGES = {
    "No space left on device": errno.ENOSPC,
    "os error 28": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
}


def _disk_cause(err: BaseException) -> OSError | None:
    """The full-disk / read-only / permission OSError behind ``err`` (libraries wrap it: torch
    in RuntimeError, safetensors in its own error), or None."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            return seen
        for text, code in _DISK_MESSAGES.items():
            if text in str(seen):
                return OSError(code, os.strerror(code))
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def disk_errors(run_dir: Path) -> Iterator[None]:
    """Turn a full, read-only or forbidden output folder into one :class:`PretrainlabError`."""
    try:
        yield
    except PretrainlabError:
        raise
    except Exception as err:
        cause = _disk_cause(err)
        if cause is None:
            raise
        raise _disk_error(cause, run_dir) from err


def preflight_output_dir(argv: list[str], also: tuple[str, ...] = ()) -> None:
    """Hydra creates the run folder and writes .hydra/ before ``_run`` starts, and reports a
    failure there as a traceback: check the output folder first and say it in one line.

    The folders checked: ``hydra.run.dir`` (``hydra.sweep.dir`` with ``-m``) when given, else
    the default under the working directory (``outputs/``); and each ``key=`` override named
    in ``also`` that is given (``study.dir``). A given ``also`` folder holds the default run
    folder (the study's ``${study.dir}/.hydra_study``), so then ``outputs/`` is not checked:
    the command does not write there."""
    if any(a in ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i") for a in argv):
        return  # prints a config or help: writes nothing
    sweep = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    given = {k: _override(argv, k) for k in (key, *also)}
    for k, value in given.items():
        if value is not None:
            _check_folder(Path(value), k)
    inside_also = not sweep and any(given[a] is not None for a in also)
    if given[key] is None and not inside_also:  # either key moves the run folder
        _check_folder(Path("outputs"), " or ".join([key, *([] if sweep else also)]))


def _override(argv: list[str], key: str) -> str | None:
    """The value of the last ``key=value`` (or ``+key=`` / ``++key=``) override, or None."""
    values = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith(f"{key}=")]
    return values[-1] if values else None


def _check_folder(folder: Path, key: str) -> None:
    folder = folder.expanduser().absolute()
    existing = folder  # the nearest part of the path that exists: where mkdir starts
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():  # a file (or a dangling link) where a folder must go
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        if err.errno == errno.ENOTDIR:
            reason = f"{str(existing)!r} is a file, not a folder"
        else:
            reason = DISK_ERRNOS.get(err.errno or -1, err.strerror or str(err))
            reason += f" ({err.strerror}, at {str(existing)!r})"
        print(
            f"pretrainlab: error: cannot create the run folder {str(folder)!r}: {reason}. "
            f"Pick a writable {key}.",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
