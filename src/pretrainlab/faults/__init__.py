"""Surviving faults in a pretraining run, one module a concern:

- :mod:`.checkpoints`: atomic checkpoint writes, ``last.ckpt`` and ``decay_start.ckpt``
  timed around validation, the global RNG states in the checkpoint;
- :mod:`.preemption`: SIGTERM or submitit's requeue signal saves at the end of the step;
- :mod:`.loss`: a non-finite training loss stops the run before a checkpoint is written
  after it;
- :mod:`.disk`: a read-only or full output folder is one clear error, not a traceback.
"""

from pretrainlab.faults.checkpoints import (
    AtomicCheckpointIO,
    DecayStartCheckpoint,
    LastCheckpoint,
    RNGState,
)
from pretrainlab.faults.disk import check_writable, disk_errors, preflight_output_dir
from pretrainlab.faults.loss import FiniteLoss
from pretrainlab.faults.preemption import PREEMPTED_EXIT, Preemption

__all__ = [
    "PREEMPTED_EXIT",
    "AtomicCheckpointIO",
    "DecayStartCheckpoint",
    "FiniteLoss",
    "LastCheckpoint",
    "Preemption",
    "RNGState",
    "check_writable",
    "disk_errors",
    "preflight_output_dir",
]
