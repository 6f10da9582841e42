"""Load what a probe needs from a pretraining run directory (or build the scratch baseline)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from pretrainlab.data.tokenizer import load_tokenizer
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json

SCRATCH = "scratch"


@dataclass
class Checkpoint:
    encoder: BertModel
    tokenizer: PreTrainedTokenizerFast
    objective: str
    pretrain_seed: int
    causal: bool
    uses_segments: bool
    run_dir: Path  # the run (for scratch: the run that lent its tokenizer and shape)
    key: str  # content hash of the weights (features are cached under it)


def _weights_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


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


def load_checkpoint(checkpoint: str, scratch_from: str | None = None, seed: int = 0) -> Checkpoint:
    """The pretrained encoder of ``checkpoint``, or for ``scratch`` a randomly initialised
    encoder of the same shape as ``scratch_from`` (with its tokenizer)."""
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
    config = BertConfig.from_pretrained(str(hf))
    if len(tokenizer) != config.vocab_size:
        raise PretrainlabError(
            f"the tokenizer in {hf} has {len(tokenizer)} tokens but the model expects "
            f"vocab_size={config.vocab_size}: they do not belong together."
        )
    config.attn_implementation = "sdpa"
    if checkpoint == SCRATCH:
        torch.manual_seed(seed)
        encoder = BertModel(config, add_pooling_layer=False)
        key, objective = f"scratch-{_weights_hash(hf / 'config.json')}-s{seed}", SCRATCH
    else:
        # The saved model has its pretraining head too; the probe takes the encoder alone.
        with _quiet_transformers():
            encoder = BertModel.from_pretrained(str(hf), config=config, add_pooling_layer=False)
        key, objective = _weights_hash(hf / "model.safetensors"), info["objective"]
    return Checkpoint(
        encoder=encoder.eval(),
        tokenizer=tokenizer,
        objective=objective,
        pretrain_seed=seed if checkpoint == SCRATCH else int(info["seed"]),
        causal=bool(config.is_decoder),
        uses_segments=bool(info.get("uses_segments")),
        run_dir=run,
        key=key,
    )
