"""What a probe chooses on dev, the same way for every arm (scratch included): one small grid,
every value fitted with the same budget and seed, the best dev score wins (the first in grid
order on a tie). ``result.json``'s ``tuning`` records the grid, the choice and each value's
dev score; test is reported for the choice alone."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from omegaconf import ListConfig, OmegaConf

from pretrainlab.errors import PretrainlabError

T = TypeVar("T")
# (what is accepted, the check, an example grid)
LR = ("in (0, 1)", lambda v: 0 < v < 1, "[1e-4, 3e-4, 1e-3]")
DECAY = (">= 0", lambda v: v >= 0, "[0.01, 0.1, 1.0, 10.0]")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def grid_values(
    section: Any, prefix: str, name: str, bounds: tuple[str, Callable, str]
) -> list[float]:
    """The values of ``name`` to try: ``section.{name}_grid``, or ``[section.{name}]`` where
    the grid is null (one fit). A bad value is one clear error; the probe's input checks call
    this before any work."""
    accepted, ok, example = bounds
    key, grid, default = f"{prefix}.{name}_grid", section.get(f"{name}_grid"), section.get(name)
    if grid is None:
        if not (_number(default) and ok(default)):
            raise PretrainlabError(
                f"{prefix}.{name}={default!r} is not valid (used because {key} is null): "
                f"expected a number {accepted}."
            )
        return [float(default)]
    values = list(grid) if isinstance(grid, (list, tuple, ListConfig)) else []
    if (
        not values
        or not all(_number(v) and ok(v) for v in values)
        or len(set(values)) < len(values)
    ):
        shown = OmegaConf.to_container(grid) if isinstance(grid, ListConfig) else grid
        raise PretrainlabError(
            f"{key}={shown!r} is not valid: expected a non-empty list of distinct numbers, "
            f"each {accepted} (e.g. {example}), or null for {prefix}.{name} alone."
        )
    return [float(v) for v in values]


def tune(
    name: str, values: Sequence[float], fit: Callable[[float], tuple[float, T]]
) -> tuple[T, dict[str, Any]]:
    """``fit(value) -> (dev score, fitted)`` for each value in order; returns the fitted of the
    best dev score (only it is kept) and the record ``{"grid", "chosen", "dev_by_value"}``."""
    scores: dict[str, float] = {}
    best: Any = None
    for value in values:
        score, fitted = fit(value)
        scores[str(value)] = score
        if best is None or score > best[0]:
            best = (score, value, fitted)
    _, chosen, fitted = best  # values is never empty (grid_values)
    return fitted, {"grid": {name: list(values)}, "chosen": {name: chosen}, "dev_by_value": scores}


def probe_grid(probe: Any, section: str) -> list[float]:
    """What ``probe.<section>`` tries: fine-tuning learning rates (``finetune``), linear-head
    weight decays (``linear``, ``linear_qa``)."""
    name, bounds = ("lr", LR) if section == "finetune" else ("weight_decay", DECAY)
    return grid_values(probe[section], f"probe.{section}", name, bounds)
