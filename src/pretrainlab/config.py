"""Turn a composed Hydra config into validated building blocks before anything expensive runs.

Every rule raises :class:`PretrainlabError` naming the key, the bad value and what is
accepted. Rules that concern one group live in that group's class (``__post_init__`` or
``validate``); rules across groups live here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from pretrainlab.budget import ComputeBudget, world_size
from pretrainlab.data.corpus import Corpus
from pretrainlab.data.tokenizer import TokenizerSpec
from pretrainlab.errors import PretrainlabError
from pretrainlab.models.encoder import EncoderSpec
from pretrainlab.objectives.base import OptimSpec, PretrainObjective


def build(node: DictConfig, **runtime: Any) -> Any:
    """``hydra.utils.instantiate`` that surfaces our own error instead of Hydra's wrapper.

    Runtime objects are passed to the constructor directly (Hydra would turn dataclasses
    passed through ``instantiate`` into configs).
    """
    try:
        return instantiate(node, _partial_=True, _convert_="all")(**runtime)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, PretrainlabError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise PretrainlabError(f"could not build a config node: {err}") from err


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides, inside or outside a running Hydra app."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pretrainlab.cli import CONF_DIR

    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


_ABSENT = object()


@dataclass(frozen=True)
class Knob:
    """A numeric config value and its accepted range (``None``: unbounded on that side)."""

    key: str
    kind: type  # int (bools refused) or float (ints accepted, must be finite)
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False

    def accepted(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            text = f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low is not None:
            text = f"{what} {'>' if self.open_low else '>='} {self.low:g}"
        else:
            text = what
        return text + (" or null" if self.nullable else "")

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)


# Every numeric knob of `pretrainlab pretrain` that has a range. The group classes check their
# own values too; checking here first gives one message format and catches wrong types (a
# string, a bool, null) before any constructor sees them.
PRETRAIN_KNOBS = (
    Knob("seed", int, 0),
    Knob("threads", int, 1, 4096, nullable=True),
    Knob("checkpoint_every", int, 1),
    Knob("data.seq_len", int, 8, 1 << 16),
    Knob("data.batch_size", int, 1, 1 << 20),
    Knob("data.num_workers", int, 0, 1024),
    Knob("data.max_val_examples", int, 1),
    Knob("trainer.max_steps", int, 1),
    Knob("trainer.log_every_n_steps", int, 1),
    Knob("trainer.gradient_clip_val", float, 0, nullable=True),
    Knob("optim.lr", float, 0, 1, open_low=True, open_high=True),
    Knob("optim.weight_decay", float, 0, 1, open_high=True),
    Knob("optim.eps", float, 0, 1, open_low=True, open_high=True),
    Knob("optim.warmup_steps", int, 0),
    Knob("optim.decay_fraction", float, 0, 1, open_low=True, open_high=True),
    Knob("encoder.layers", int, 1, 1024),
    Knob("encoder.hidden", int, 1, 1 << 16),
    Knob("encoder.heads", int, 1, 1024),
    Knob("encoder.ffn", int, 1, 1 << 18),
    Knob("encoder.max_positions", int, 8, 1 << 16),
    Knob("encoder.dropout", float, 0, 1, open_high=True),
    Knob("encoder.attention_dropout", float, 0, 1, open_high=True),
    Knob("tokenizer.vocab_size", int, 64, 1_000_000),
    Knob("tokenizer.min_frequency", int, 1),
    Knob("corpus.num_words", int, 1000, 2_000_000_000),
    Knob("corpus.val_fraction", float, 0, 0.5, open_low=True, open_high=True),
    Knob("corpus.seed", int, 0),
    Knob("objective.mask_rate", float, 0, 1, open_low=True, open_high=True),
)


def _select(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` (``_ABSENT`` if the config has no such key); an interpolation that
    cannot be resolved is a PretrainlabError naming the key."""
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=True)
    except Exception as err:
        raise PretrainlabError(
            f"{key} cannot be resolved: {type(err).__name__}: {str(err).splitlines()[0]}"
        ) from None


def check_knobs(cfg: DictConfig, knobs: tuple[Knob, ...]) -> None:
    for knob in knobs:
        value = _select(cfg, knob.key)
        if value is _ABSENT:
            continue
        if not knob.ok(value):
            raise PretrainlabError(
                f"{knob.key}={value!r} is not valid: expected {knob.accepted()}."
            )


def _check_limit_val_batches(cfg: DictConfig) -> None:
    value = _select(cfg, "trainer.limit_val_batches")
    if value is _ABSENT or value is None:
        return
    ok = not isinstance(value, bool) and (
        (isinstance(value, int) and value >= 1)
        or (isinstance(value, float) and math.isfinite(value) and 0 < value <= 1)
    )
    if not ok:
        raise PretrainlabError(
            f"trainer.limit_val_batches={value!r} is not valid: expected an integer >= 1 "
            "(batches) or a fraction in (0, 1]."
        )


def _check_val_check_interval(cfg: DictConfig) -> None:
    value = _select(cfg, "trainer.val_check_interval")
    if value is _ABSENT:
        return
    by_steps = _select(cfg, "trainer.check_val_every_n_epoch") in (None, _ABSENT)
    ok = not isinstance(value, bool) and (
        (isinstance(value, int) and value >= 1)
        or (not by_steps and isinstance(value, float) and math.isfinite(value) and 0 < value <= 1)
    )
    if not ok:
        accepted = (
            "an integer >= 1 (steps; trainer.check_val_every_n_epoch is null)"
            if by_steps
            else "an integer >= 1 (batches) or a fraction of an epoch in (0, 1]"
        )
        raise PretrainlabError(
            f"trainer.val_check_interval={value!r} is not valid: expected {accepted}."
        )


def _check_betas(cfg: DictConfig) -> None:
    value = _select(cfg, "optim.betas")
    if value is _ABSENT:
        return
    plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    ok = (
        isinstance(plain, (list, tuple))
        and len(plain) == 2
        and all(
            not isinstance(b, bool) and isinstance(b, (int, float)) and 0 <= b < 1 for b in plain
        )
    )
    if not ok:
        raise PretrainlabError(
            f"optim.betas={plain!r} is not valid: expected two numbers in [0, 1), e.g. [0.9, 0.98]."
        )


def _int(cfg: DictConfig, key: str, low: int) -> int:
    value = _select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PretrainlabError(f"{key}={value!r} is not valid: expected an integer >= {low}.")
    return value


@dataclass
class PretrainParts:
    encoder: EncoderSpec
    optim: OptimSpec
    tokenizer: TokenizerSpec
    corpus: Corpus
    objective_cls: type[PretrainObjective]
    seq_len: int
    batch_size: int
    cache_dir: Path
    budget: ComputeBudget
    tokens_per_step: int
    flops_per_token: float  # declared: with tokenizer.vocab_size, before the tokenizer exists


def pretrain_parts(cfg: DictConfig) -> PretrainParts:
    """Validate and build everything cheap; fail here, before data or model work starts."""
    check_knobs(cfg, PRETRAIN_KNOBS)
    _check_limit_val_batches(cfg)
    _check_val_check_interval(cfg)
    _check_betas(cfg)
    _int(cfg, "seed", 0)
    seq_len = _int(cfg, "data.seq_len", 8)
    batch_size = _int(cfg, "data.batch_size", 1)
    _int(cfg, "data.max_val_examples", 1)
    _int(cfg, "trainer.max_steps", 1)
    encoder = build(cfg.encoder)
    if seq_len > encoder.max_positions:
        raise PretrainlabError(
            f"data.seq_len={seq_len} is longer than the encoder's max positions "
            f"(encoder.max_positions={encoder.max_positions} for encoder={encoder.name}): use "
            f"data.seq_len <= {encoder.max_positions} or a larger encoder.max_positions."
        )
    objective_cls = get_class(cfg.objective._target_)
    params = {k: v for k, v in cfg.objective.items() if k != "_target_"}
    objective_cls.validate(**params)
    tokens_per_step = batch_size * seq_len * world_size(cfg.trainer)
    tokens_per_step *= cfg.trainer.get("accumulate_grad_batches") or 1
    flops_per_token = encoder.flops_per_token(
        seq_len, cfg.tokenizer.vocab_size, objective_cls.predicted_share(**params)
    )
    budget = build(cfg.budget) if cfg.get("budget") else ComputeBudget()
    if (steps := budget.steps(tokens_per_step, flops_per_token)) is not None:
        cfg.trainer.max_steps = steps  # the budget decides; config.yaml records both
    return PretrainParts(
        encoder=encoder,
        optim=build(cfg.optim),
        tokenizer=build(cfg.tokenizer),
        corpus=build(cfg.corpus),
        objective_cls=objective_cls,
        seq_len=seq_len,
        batch_size=batch_size,
        cache_dir=Path(cfg.paths.cache_dir).expanduser(),
        budget=budget,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops_per_token,
    )
