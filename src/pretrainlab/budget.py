"""Equal compute, declared: a pretraining budget in tokens or in training FLOPs, turned into a
number of optimizer steps for one run.

Arms of a study that share a budget are matched on what it counts, not on steps: at the same
token count an MLM step (vocabulary projection at masked positions only) costs fewer FLOPs than
a CLM step, so an FLOPs budget gives MLM more steps. Both counts are deterministic functions of
the config (``data.seq_len``, ``data.batch_size``, the processes of the trainer, the encoder
shape, ``tokenizer.vocab_size`` and the objective's predicted share of positions), so a run
and its ``reproduce`` take the same number of steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pretrainlab.errors import PretrainlabError

KINDS = ("tokens", "flops")


def _number(key: str, value: Any) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise PretrainlabError(
            f"budget.{key}={value!r} is not valid: expected a positive number (e.g. 4e6) or "
            "null for no budget."
        )
    return float(value)


@dataclass(frozen=True)
class ComputeBudget:
    """``budget.tokens`` (input positions seen in training) or ``budget.flops`` (training FLOPs,
    forward + backward, :meth:`EncoderSpec.flops_per_token`); at most one of them. Unset: the
    run takes ``trainer.max_steps``."""

    tokens: float | None = None
    flops: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", _number("tokens", self.tokens))
        object.__setattr__(self, "flops", _number("flops", self.flops))
        if self.tokens is not None and self.flops is not None:
            raise PretrainlabError(
                f"budget.tokens={self.tokens:g} and budget.flops={self.flops:g} are both set: "
                "a run is matched on one count; set the other to null."
            )

    @property
    def kind(self) -> str | None:
        return next((k for k in KINDS if getattr(self, k) is not None), None)

    def steps(self, tokens_per_step: int, flops_per_token: float) -> int | None:
        """Optimizer steps that spend the budget (nearest whole step), or None when unset."""
        if self.kind is None:
            return None
        per_step = tokens_per_step * (flops_per_token if self.kind == "flops" else 1)
        value = getattr(self, self.kind)
        steps = round(value / per_step)
        if steps < 1:
            raise PretrainlabError(
                f"budget.{self.kind}={value:g} is smaller than one training step, which "
                f"costs {per_step:.4g} {self.kind} here ({tokens_per_step} tokens per step): "
                f"use at least {per_step:.4g}, or a smaller data.batch_size / data.seq_len."
            )
        return steps


def spent(steps: int, tokens_per_step: int, flops_per_token: float) -> dict[str, float]:
    """What a run of ``steps`` steps costs, for run.json and the study report."""
    tokens = steps * tokens_per_step
    return {"steps": steps, "tokens": tokens, "flops": tokens * flops_per_token}


def world_size(trainer: Any) -> int:
    """Processes of a Trainer config (devices x nodes); ``auto`` and device lists count as
    given, anything else as one process."""
    devices = trainer.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        devices = len(devices)
    devices = devices if isinstance(devices, int) and devices > 0 else 1
    nodes = trainer.get("num_nodes", 1)
    return devices * (nodes if isinstance(nodes, int) and nodes > 0 else 1)
