"""Turn a composed Hydra config into validated building blocks before anything expensive runs.

Every rule raises :class:`PretrainlabError` naming the key, the bad value and what is
accepted. Rules that concern one group live in that group's class (``__post_init__`` or
``validate``); rules across groups live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

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


def _int(cfg: DictConfig, key: str, low: int) -> int:
    value = OmegaConf.select(cfg, key)
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


def pretrain_parts(cfg: DictConfig) -> PretrainParts:
    """Validate and build everything cheap; fail here, before data or model work starts."""
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
    objective_cls.validate(**{k: v for k, v in cfg.objective.items() if k != "_target_"})
    return PretrainParts(
        encoder=encoder, optim=build(cfg.optim), tokenizer=build(cfg.tokenizer),
        corpus=build(cfg.corpus), objective_cls=objective_cls, seq_len=seq_len,
        batch_size=batch_size, cache_dir=Path(cfg.paths.cache_dir).expanduser(),
    )
