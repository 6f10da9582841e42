"""The optimizer settings of every objective and the one learning-rate schedule (pretraining
and the fine-tuning probe): warmup, then linear, cosine, constant or warmup-stable-decay.

Hand-written rather than transformers' ``get_*_schedule_with_warmup``: ``wsd`` must branch at
a step that :func:`decay_start` names (a longer budget's run continues from it, study/
budgets.py), and warmup starts at ``lr / warmup`` rather than 0, so no update is spent at a
zero rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pretrainlab.config import check_betas, check_value
from pretrainlab.errors import PretrainlabError

SCHEDULES = ("linear", "cosine", "constant", "wsd")


@dataclass(kw_only=True)
class OptimSpec:
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 50
    schedule: str = "linear"
    decay_fraction: float = 0.2  # wsd: the last share of the steps, decayed linearly to 0

    def __post_init__(self) -> None:
        for key in ("lr", "weight_decay", "eps", "warmup_steps", "decay_fraction"):
            check_value(f"optim.{key}", getattr(self, key))
        if self.schedule not in SCHEDULES:
            raise PretrainlabError(
                f"optim.schedule={self.schedule!r} is not valid: expected one of "
                f"{', '.join(SCHEDULES)}."
            )
        check_betas(self.betas)
        self.betas = tuple(self.betas)


def optim_hparams(optim: OptimSpec) -> dict[str, Any]:
    """The optimizer's hyperparameters as a checkpoint records them; ``decay_fraction`` only
    under ``wsd``, the one schedule it changes (checkpoints from before it existed resume)."""
    out = asdict(optim)
    if optim.schedule != "wsd":
        out.pop("decay_fraction")
    return out


def decay_start(spec: OptimSpec, total: int) -> int:
    """The first step of a ``wsd`` (warmup-stable-decay) run's decay: the last
    ``decay_fraction`` of ``total`` steps (at least one) decay linearly to 0. Before it the rate
    is the constant schedule's, so a longer budget's run can branch from this step of a shorter
    one (Hägele et al. 2024; the study's budget axis, study/budgets.py)."""
    return max(min(spec.warmup_steps, total), total - decay_length(spec, total))


def decay_length(spec: OptimSpec, total: int) -> int:
    """Steps of a ``wsd`` run's decay: ``decay_fraction`` of ``total``, at least one."""
    return max(1, round(spec.decay_fraction * total))


def lr_schedule(spec: OptimSpec, total: int) -> Callable[[int], float]:
    """The factor of ``spec.lr`` at each step of a ``total``-step run (``LambdaLR``)."""
    warmup = min(spec.warmup_steps, total)
    start = decay_start(spec, total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if spec.schedule == "wsd":
            return 1.0 if step < start else (total - step) / max(1, total - start)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if spec.schedule == "linear":
            return 1.0 - progress
        if spec.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor
