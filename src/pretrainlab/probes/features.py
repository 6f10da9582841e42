"""Encoder inputs and representations for probes: tokenisation by task kind, pooling, and
the per (checkpoint x task x pooling) feature cache that makes a second linear probe cost only
its head."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from transformers import BatchEncoding, PreTrainedTokenizerFast

from pretrainlab.io import cached_folder, content_hash
from pretrainlab.models.encoder import pool

FEATURES_FILE = "features.pt"


def padded_batch(
    tokenizer: PreTrainedTokenizerFast,
    text: list,
    pair: list | None,
    max_length: int,
    **options: Any,
) -> BatchEncoding:
    """``text`` (and ``pair``) tokenized as one tensor batch: cut to ``max_length`` tokens,
    padded to its longest row; ``options`` go to the tokenizer as they are."""
    return tokenizer(
        text,
        pair,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_tensors="pt",
        **options,
    )


def tokenize(
    rows: dict[str, list], tokenizer: PreTrainedTokenizerFast, max_length: int, segments: bool
) -> dict[str, Tensor]:
    """Classification inputs: ``[CLS] text [SEP]`` or ``[CLS] a [SEP] b [SEP]``, padded."""
    enc = padded_batch(
        tokenizer,
        rows["text"],
        rows.get("text_pair"),
        max_length,
        return_token_type_ids=True,  # transformers 5 leaves them out unless asked
    )
    if not segments:  # the checkpoint never saw segment ids: keep them all 0
        enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
    return dict(enc)


def row_loader(
    n: int,
    collate: Callable[[list[int]], dict[str, Tensor]],
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> DataLoader:
    """Fine-tuning batches: ``collate`` of row indices 0..n-1, shuffled from ``seed``."""
    return DataLoader(
        range(n),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collate,
    )


@torch.no_grad()
def encode_split(
    encoder: Any,
    tokenizer: PreTrainedTokenizerFast,
    ds: datasets.Dataset,
    pooling: str,
    max_length: int,
    segments: bool,
    batch_size: int = 64,
    every_layer: bool = False,
) -> Tensor:
    """Pooled features (N, H) for a classification / pair split; with ``every_layer``, those of
    every hidden state, (L + 1, N, H), 0 being the embeddings' output."""
    encoder.eval()
    out = []
    for start in range(0, len(ds), batch_size):
        batch = tokenize(ds[start : start + batch_size], tokenizer, max_length, segments)
        states = encoder(**batch, output_hidden_states=every_layer)
        hidden = torch.stack(states.hidden_states) if every_layer else states.last_hidden_state
        out.append(pool_layers(hidden, batch["attention_mask"], pooling).float())
    return torch.cat(out, dim=-2)


def pool_layers(hidden: Tensor, attention_mask: Tensor, pooling: str) -> Tensor:
    """:func:`pool` of (B, T, H), or of each layer of (L, B, T, H) -> (L, B, H)."""
    if hidden.dim() == 3:
        return pool(hidden, attention_mask, pooling)
    return torch.stack([pool(h, attention_mask, pooling) for h in hidden])


def cached_features(cache_dir: Path, key_parts: dict[str, Any], compute: Any) -> Any:
    """``compute()`` once per key, in a :func:`~pretrainlab.io.cached_folder` entry (the
    cache mechanism of corpora and tokenizers: a manifest, a lock, atomic builds), so parallel
    probe jobs of one checkpoint and task compute it once; later calls load the saved tensors
    (weights_only). A damaged entry is rebuilt, never read."""
    target = Path(cache_dir) / "features" / content_hash(key_parts, 20)

    def build(folder: Path) -> None:
        torch.save(compute(), folder / FEATURES_FILE)

    return cached_folder(
        target, build, lambda folder: torch.load(folder / FEATURES_FILE, weights_only=True)
    )
