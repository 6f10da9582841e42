"""Turn a composed Hydra config into validated building blocks before anything expensive runs.

Every rule raises :class:`PretrainlabError` naming the key, the bad value and what is
accepted. Rules that concern one group live in that group's class (``__post_init__`` or
``validate``); rules across groups live here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pretrainlab.errors import PretrainlabError

# Targets that moved since earlier runs saved their config.yaml, old -> new: those configs still
# build (``reproduce``, a study's saved plan).
MOVED_TARGETS = {
    "pretrainlab.data.tasks.embedded.load_embedded_task": (
        "pretrainlab.embedded.tasks.load_embedded_task"
    ),
    "pretrainlab.data.tasks.facts.load_facts_task": "pretrainlab.embedded.facts_task.load_facts_task",
    "pretrainlab.objectives.base.OptimSpec": "pretrainlab.objectives.optim.OptimSpec",
}


def build(node: DictConfig, **runtime: Any) -> Any:
    """``hydra.utils.instantiate`` that surfaces our own error instead of Hydra's wrapper.

    Runtime objects are passed to the constructor directly (Hydra would turn dataclasses
    passed through ``instantiate`` into configs).
    """
    moved = MOVED_TARGETS.get(node.get("_target_")) if OmegaConf.is_dict(node) else None
    if moved is not None:  # a config saved before its class moved (reproduce reads those)
        node = node.copy()
        node._target_ = moved
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
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides)
    with initialize_config_module(config_module="pretrainlab.conf", version_base="1.3"):
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

    def check(self, value: Any, hint: str = "") -> None:
        """Refuse ``value`` unless :meth:`ok` (``hint`` is appended to what is accepted)."""
        if not self.ok(value):
            raise PretrainlabError(
                f"{self.key}={value!r} is not valid: expected {self.accepted()}{hint}."
            )


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
    Knob("objective.mask_rate_end", float, 0, 1, open_low=True, open_high=True, nullable=True),
    Knob("objective.mask_rate_epochs", int, 1),
    Knob("objective.span_p", float, 0, 1, open_low=True),
    Knob("objective.span_max", int, 1, 1 << 16),
    Knob("objective.prefix_fraction", float, 0, 1, open_low=True, open_high=True, nullable=True),
    Knob("objective.generator_ratio", float, 0, 1, open_low=True),
    Knob("objective.disc_weight", float, 0, open_low=True),
    Knob("objective.temperature", float, 0, open_low=True),
    Knob("objective.dropout", float, 0, 1, open_low=True, open_high=True),
    Knob("objective.gradnorm_alpha", float, 0),
)
BETA = Knob("optim.betas[i]", float, 0, 1, open_high=True)


# Every numeric knob of `pretrainlab probe` outside the tuning grids (probes/tuning.py checks
# those) and the task's own fields (checked by the task's spec).
PROBE_KNOBS = (
    Knob("seed", int, 0),
    Knob("threads", int, 1, 4096, nullable=True),
    Knob("probe.max_length", int, 16),  # and at most the encoder's positions (probes/run.py)
    Knob("probe.stride", int, 0),
    Knob("probe.linear.epochs", int, 1, 1_000_000),
    Knob("probe.linear.lr", float, 0, 10, open_low=True),
    Knob("probe.linear.weight_decay", float, 0, nullable=True),
    Knob("probe.linear_qa.epochs", int, 1, 1_000_000),
    Knob("probe.linear_qa.lr", float, 0, 10, open_low=True),
    Knob("probe.linear_qa.weight_decay", float, 0, nullable=True),
    Knob("probe.linear_similarity.weight_decay", float, 0, nullable=True),  # ridge penalty
    Knob("probe.finetune.max_steps", int, 1),
    Knob("probe.finetune.max_epochs", int, 1, nullable=True),
    Knob("probe.finetune.eval_every", int, 1),
    Knob("probe.finetune.lr", float, 0, 1, open_low=True),
    Knob("probe.finetune.batch_size", int, 1, 1 << 20),
    Knob("probe.finetune.warmup_ratio", float, 0, 1, open_high=True),
    Knob("probe.finetune.weight_decay", float, 0, 1, open_high=True, nullable=True),
)
_KNOBS = {rule.key: rule for rule in (*PRETRAIN_KNOBS, *PROBE_KNOBS)}


def _select(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` (``_ABSENT`` if the config has no such key); an interpolation that
    cannot be resolved is a PretrainlabError naming the key."""
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=True)
    except Exception as err:
        raise PretrainlabError(
            f"{key} cannot be resolved: {type(err).__name__}: {str(err).splitlines()[0]}"
        ) from None


def check_known_keys(what: str, given: Any, known: list[str]) -> None:
    """Refuse keys of the mapping ``given`` that are not in ``known``, naming both."""
    if unknown := sorted(set(given) - set(known)):
        raise PretrainlabError(
            f"{what} has unknown key(s) {', '.join(unknown)}: the accepted keys are "
            f"{', '.join(known)}."
        )


def knob(key: str) -> Knob:
    """The one rule of a numeric knob: its entry in the tables above."""
    return _KNOBS[key]


def check_value(key: str, value: Any, hint: str = "") -> None:
    """Refuse ``value`` for ``key`` unless its table entry accepts it (``hint`` is appended to
    what is accepted, e.g. what BERT uses)."""
    knob(key).check(value, hint)


def check_choice(key: str, value: Any, choices: Sequence[str]) -> None:
    """Refuse ``value`` for ``key`` unless it is one of ``choices`` (a config's named options)."""
    if value not in choices:
        raise PretrainlabError(
            f"{key}={value!r} is not valid: expected one of {', '.join(choices)}."
        )


def check_knobs(cfg: DictConfig, knobs: tuple[Knob, ...]) -> None:
    for rule in knobs:
        value = _select(cfg, rule.key)
        if value is not _ABSENT:
            check_value(rule.key, value)


def _count_or_fraction(value: Any, fraction_ok: bool = True) -> bool:
    """An integer >= 1, or (``fraction_ok``) a finite float in (0, 1]: Lightning's batch /
    step counts and their fractional forms."""
    return not isinstance(value, bool) and (
        (isinstance(value, int) and value >= 1)
        or (fraction_ok and isinstance(value, float) and math.isfinite(value) and 0 < value <= 1)
    )


def _check_limit_val_batches(cfg: DictConfig) -> None:
    value = _select(cfg, "trainer.limit_val_batches")
    if value is not _ABSENT and value is not None and not _count_or_fraction(value):
        raise PretrainlabError(
            f"trainer.limit_val_batches={value!r} is not valid: expected an integer >= 1 "
            "(batches) or a fraction in (0, 1]."
        )


def _check_val_check_interval(cfg: DictConfig) -> None:
    value = _select(cfg, "trainer.val_check_interval")
    by_steps = _select(cfg, "trainer.check_val_every_n_epoch") in (None, _ABSENT)
    if value is _ABSENT or _count_or_fraction(value, fraction_ok=not by_steps):
        return
    accepted = (
        "an integer >= 1 (steps; trainer.check_val_every_n_epoch is null)"
        if by_steps
        else "an integer >= 1 (batches) or a fraction of an epoch in (0, 1]"
    )
    raise PretrainlabError(
        f"trainer.val_check_interval={value!r} is not valid: expected {accepted}."
    )


def check_betas(value: Any) -> None:
    """``optim.betas``: two numbers in [0, 1) (the config check and :class:`OptimSpec`)."""
    plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    ok = isinstance(plain, (list, tuple)) and len(plain) == 2 and all(map(BETA.ok, plain))
    if not ok:
        raise PretrainlabError(
            f"optim.betas={plain!r} is not valid: expected two numbers in [0, 1), e.g. [0.9, 0.98]."
        )


def _int(cfg: DictConfig, key: str, low: int) -> int:
    value = _select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PretrainlabError(f"{key}={value!r} is not valid: expected an integer >= {low}.")
    return value


def check_pretrain(cfg: DictConfig) -> None:
    """Every rule of a pretraining config that no single group owns, after the knob table:
    the cross-group ones (sequence length against the encoder's positions) included."""
    check_knobs(cfg, PRETRAIN_KNOBS)
    _check_limit_val_batches(cfg)
    _check_val_check_interval(cfg)
    if (betas := _select(cfg, "optim.betas")) is not _ABSENT:
        check_betas(betas)
    _int(cfg, "seed", 0)
    seq_len = _int(cfg, "data.seq_len", 8)
    _int(cfg, "data.batch_size", 1)
    _int(cfg, "data.max_val_examples", 1)
    _int(cfg, "trainer.max_steps", 1)
    encoder = build(cfg.encoder)
    if seq_len > encoder.max_positions:
        raise PretrainlabError(
            f"data.seq_len={seq_len} is longer than the encoder's max positions "
            f"(encoder.max_positions={encoder.max_positions} for encoder={encoder.name}): use "
            f"data.seq_len <= {encoder.max_positions} or a larger encoder.max_positions."
        )
