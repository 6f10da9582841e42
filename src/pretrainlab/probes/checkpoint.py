"""Load what a probe needs from a pretraining run directory (or build the scratch baseline)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from pretrainlab.data.tokenizer import load_tokenizer
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import file_sha256, read_json
from pretrainlab.models.encoder import FAMILIES, POOLINGS

SCRATCH = "scratch"


@dataclass
class Checkpoint:
    encoder: Any  # the transformers body: BertModel or RoFormerModel
    tokenizer: PreTrainedTokenizerFast
    objective: str
    pretrain_seed: int
    causal: bool
    uses_segments: bool
    auto_pooling: str  # what probe.pooling=auto pools (see _auto_pooling)
    pooling_source: str  # "objective" (declared in run.json), "scratch" or "legacy"
    run_dir: Path  # the run (for scratch: the run that lent its tokenizer and shape)
    key: str  # content hash of the weights (features are cached under it)

    def pooling_for(self, requested: str) -> str:
        """``probe.pooling``: ``auto`` is this checkpoint's own choice, anything else as asked."""
        return self.auto_pooling if requested == "auto" else requested


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def check_run_dir(run_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """A completed pretraining run: run.json says so and hf/ holds weights and tokenizer."""
    run = Path(run_dir).expanduser()
    need = "a completed pretraining run directory (with run.json and hf/) or the word 'scratch'"
    if not run.is_dir():
        raise PretrainlabError(f"checkpoint={str(run_dir)!r} does not exist: expected {need}.")
    if not (run / "run.json").is_file():
        raise PretrainlabError(f"checkpoint={str(run)!r} has no run.json: expected {need}.")
    info = read_json(run / "run.json")
    missing = [
        f
        for f in ("hf/config.json", "hf/model.safetensors", "hf/tokenizer.json")
        if not (run / f).is_file()
    ]
    if info.get("status") != "completed" or missing:
        raise PretrainlabError(
            f"checkpoint={str(run)!r} is not a finished run (status {info.get('status')!r}"
            + (f", missing {', '.join(missing)}" if missing else "")
            + "): it was interrupted or is still running. Re-run `pretrainlab pretrain` with "
            "hydra.run.dir set to it to resume, or pick another run."
        )
    return run, info


def _check_weight_shapes(hf: Path, config: PretrainedConfig) -> None:
    """The safetensors weights must have the shapes hf/config.json describes: a config edited
    or copied from another run is a clear error, not a state-dict traceback."""
    from safetensors import safe_open

    expect = {
        "embeddings.word_embeddings.weight": [config.vocab_size, config.hidden_size],
        "embeddings.position_embeddings.weight": [
            config.max_position_embeddings,
            config.hidden_size,
        ],
        "encoder.layer.0.intermediate.dense.weight": [config.intermediate_size, config.hidden_size],
    }
    try:
        with safe_open(str(hf / "model.safetensors"), framework="pt") as f:
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as err:
        raise PretrainlabError(
            f"{hf / 'model.safetensors'} cannot be read ({type(err).__name__}: "
            f"{str(err)[:200]}): the export is damaged; re-run its pretraining."
        ) from None
    layers = {
        int(k.split(".")[k.split(".").index("layer") + 1])
        for k in shapes
        if ".encoder.layer." in f".{k}"
    }
    for name, shape in expect.items():
        found = next((v for k, v in shapes.items() if k.endswith(name)), None)
        if found is not None and found != shape:
            raise PretrainlabError(
                f"{hf / 'config.json'} does not match the weights beside it: {name} is "
                f"{found} in model.safetensors but the config implies {shape} (hidden_size="
                f"{config.hidden_size}, vocab_size={config.vocab_size}). The config was edited "
                "or comes from another run; restore it or re-run the pretraining."
            )
    if layers and len(layers) != config.num_hidden_layers:
        raise PretrainlabError(
            f"{hf / 'config.json'} says num_hidden_layers={config.num_hidden_layers} but "
            f"model.safetensors holds {len(layers)} layers: the config does not belong to these "
            "weights; restore it or re-run the pretraining."
        )


def _load_config(hf: Path) -> PretrainedConfig:
    try:
        config = AutoConfig.from_pretrained(str(hf))
    except (ValueError, OSError) as err:
        raise PretrainlabError(
            f"{hf / 'config.json'} is not a transformers config this project wrote "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); re-run the pretraining."
        ) from None
    if config.model_type not in FAMILIES.values():
        raise PretrainlabError(
            f"{hf / 'config.json'} describes a {config.model_type!r} model: expected one of "
            f"{', '.join(FAMILIES.values())} (what `pretrainlab pretrain` exports)."
        )
    if config.model_type == "bert":
        config.attn_implementation = "sdpa"
    return config


def _load_encoder(
    hf: Path, config: PretrainedConfig, body: dict[str, Any], model_class: Any = AutoModel
) -> Any:
    """The saved model has its pretraining head too; the probe takes the encoder alone (a
    zero-shot probe takes the head's ``model_class``)."""
    try:
        with _quiet_transformers():
            return model_class.from_pretrained(str(hf), config=config, **body)
    except (RuntimeError, ValueError, OSError) as err:
        raise PretrainlabError(
            f"the weights in {hf} do not load into the encoder its config.json describes "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). Re-run the "
            "pretraining or restore its hf/ folder."
        ) from None


def _auto_pooling(info: dict[str, Any], causal: bool, scratch: bool) -> tuple[str, str]:
    """(pooling, source) for ``probe.pooling=auto``: what the objective declared at pretraining
    (run.json's ``probe_pooling``: the token its loss trains); for scratch, which no objective
    trained, the mean of every token (bidirectional) or the last token (causal, the only one
    that sees the whole input); for a run from before objectives declared it, the old rule by
    attention type ([CLS] bidirectional, last token causal)."""
    if scratch:
        return ("last" if causal else "mean"), SCRATCH
    declared = info.get("probe_pooling")
    if declared is None:
        return ("last" if causal else "cls"), "legacy"
    if declared not in POOLINGS:
        raise PretrainlabError(
            f"run.json says probe_pooling={declared!r}: expected one of {', '.join(POOLINGS)} "
            "(what `pretrainlab pretrain` records); restore it or set probe.pooling."
        )
    return declared, "objective"


def load_checkpoint(checkpoint: str, scratch_from: str | None = None) -> Checkpoint:
    """The pretrained encoder of ``checkpoint``, or for ``scratch`` a randomly initialised
    encoder of the same shape as ``scratch_from`` (with its tokenizer), seeded by that run's
    pretraining seed: scratch is the untrained twin of one pretraining run, so its seed axis
    is the pretraining one and the probe seed (label sample, head) varies on its own."""
    if checkpoint == SCRATCH:
        if not scratch_from:
            raise PretrainlabError(
                "checkpoint=scratch needs scratch_from=RUN_DIR: the pretraining run whose "
                "tokenizer and encoder shape the randomly initialised baseline uses."
            )
        run, info = check_run_dir(scratch_from)
    else:
        run, info = check_run_dir(checkpoint)
    hf = run / "hf"
    tokenizer = load_tokenizer(hf)
    config = _load_config(hf)
    if len(tokenizer) != config.vocab_size:
        raise PretrainlabError(
            f"the tokenizer in {hf} has {len(tokenizer)} tokens but the model expects "
            f"vocab_size={config.vocab_size}: they do not belong together."
        )
    _check_weight_shapes(hf, config)
    body = {"add_pooling_layer": False} if config.model_type == "bert" else {}
    seed = int(info["seed"])
    if checkpoint == SCRATCH:
        torch.manual_seed(seed)
        encoder = AutoModel.from_config(config, **body)
        key, objective = f"scratch-{file_sha256(hf / 'config.json')[:16]}-s{seed}", SCRATCH
    else:
        encoder = _load_encoder(hf, config, body)
        key, objective = file_sha256(hf / "model.safetensors")[:16], info["objective"]
    pooling, source = _auto_pooling(info, bool(config.is_decoder), checkpoint == SCRATCH)
    return Checkpoint(
        encoder=encoder.eval(),
        tokenizer=tokenizer,
        objective=objective,
        pretrain_seed=seed,
        causal=bool(config.is_decoder),
        uses_segments=bool(info.get("uses_segments")),
        auto_pooling=pooling,
        pooling_source=source,
        run_dir=run,
        key=key,
    )


def load_with_head(ckpt: Checkpoint, head_class: Any) -> Any:
    """The checkpoint's model with its pretraining head as ``head_class`` (the objective's
    transformers class for this family), in eval mode; for scratch, that class randomly
    initialised (seeded like :func:`load_checkpoint`) in the shape of ``scratch_from``."""
    hf = ckpt.run_dir / "hf"
    config = _load_config(hf)
    if ckpt.objective == SCRATCH:
        torch.manual_seed(ckpt.pretrain_seed)
        return head_class(config).eval()
    return _load_encoder(hf, config, {}, head_class).eval()
