"""Corpus -> tokenizer -> token ids -> the examples an objective trains on, in one call.

With a streaming corpus (``corpus.streaming=true``) the training set is a
:class:`~pretrainlab.data.streaming.StreamingBlocks` (an ``IterableDataset`` read, tokenized
and packed on the fly) and only a bounded number of validation blocks is materialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from pretrainlab import seeds
from pretrainlab.data.corpus import Corpus, build_corpus
from pretrainlab.data.pipeline import make_nsp_pairs, pack_blocks, tokenize_corpus
from pretrainlab.data.tokenizer import SPECIAL_TOKENS, TokenizerSpec, train_tokenizer
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import content_hash


@dataclass
class PretrainData:
    tokenizer: PreTrainedTokenizerFast
    # (N, T) LongTensor of blocks, a list of NSP pair dicts, or (streaming) an IterableDataset
    # yielding (index, block) pairs
    train: Any
    val: Any
    data_hash: str
    special_ids: dict[str, int]
    stats: dict[str, Any] = field(default_factory=dict)


def special_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in SPECIAL_TOKENS.items()}
    # mask_tokens draws replacement ids above the specials: they must be the first ids.
    assert sorted(ids.values()) == list(range(len(ids))), ids
    return ids


def unigram_accuracy(examples: Any, n_special: int) -> float:
    """Accuracy of always predicting the most frequent non-special token: the floor a masked-
    or next-token accuracy must clear to show the model learned anything from context."""
    ids = torch.cat([torch.as_tensor(x).flatten() for x in examples])
    ids = ids[ids >= n_special]
    return (torch.bincount(ids).max() / max(1, ids.numel())).item()


@dataclass(frozen=True)
class _Request:
    """The arguments of :func:`prepare_pretraining_data`, as the two paths share them."""

    corpus: Corpus
    tokenizer_spec: TokenizerSpec
    seq_len: int
    data_format: str
    seed: int
    cache_dir: str | os.PathLike
    max_val_examples: int
    batch_size: int

    def check_size(self, n_train: int, n_val: int, with_train: bool = True) -> None:
        if (with_train and n_train < self.batch_size) or n_val == 0:
            raise PretrainlabError(
                f"corpus {self.corpus.name!r} is too small for one batch: it gives {n_train} "
                f"training and {n_val} validation examples of data.seq_len={self.seq_len} "
                f"({self.data_format}), but data.batch_size={self.batch_size}. Use a larger "
                "corpus (e.g. corpus.num_words) or a smaller data.batch_size / data.seq_len."
            )

    def data(
        self, tokenizer: Any, tok_key: str, train: Any, val: Any, **stats: Any
    ) -> PretrainData:
        """The :class:`PretrainData` of either path; ``stats`` adds to the shared ones
        (``hash`` holds what the data hash covers besides seq_len, format and seed)."""
        ids = special_ids(tokenizer)
        hashed = {**stats.pop("hash"), "seq_len": self.seq_len, "format": self.data_format}
        stats_val = (
            val if self.data_format == "blocks" else [torch.tensor(p["input_ids"]) for p in val]
        )
        return PretrainData(
            tokenizer=tokenizer,
            train=train,
            val=val,
            special_ids=ids,
            data_hash=content_hash({**hashed, "seed": self.seed}),
            stats={
                "corpus": self.corpus.cache_key(),
                "tokenizer": tok_key,
                "vocab_size": len(tokenizer),
                **stats,
                "val_examples": len(val),
                "unigram_acc": unigram_accuracy(stats_val, len(ids)),
            },
        )


def _prepare_streaming(req: _Request) -> PretrainData:
    """The streaming path: tokenizer from a bounded stream, training blocks packed on the fly,
    the first ``max_val_examples`` validation blocks materialised."""
    from pretrainlab.data.streaming import (
        StreamingBlocks,
        take_blocks,
        train_tokenizer_streaming,
    )

    if req.data_format != "blocks":
        raise PretrainlabError(
            "corpus.streaming=true supports objectives of data format 'blocks' (packed "
            f"blocks) only: this objective's data format is {req.data_format!r} (segment "
            "pairs), which streaming mode does not build. Use corpus.streaming=false (the "
            "corpus is materialised in an on-disk cache) or an objective of data format "
            "'blocks'."
        )
    corpus = req.corpus
    tokenizer, tok_key = train_tokenizer_streaming(
        req.tokenizer_spec, corpus, req.cache_dir, getattr(corpus, "tokenizer_docs", None)
    )
    buffer = getattr(corpus, "shuffle_buffer", 10_000)
    train = StreamingBlocks(corpus, tokenizer, req.seq_len, "train", req.seed, buffer)
    val = StreamingBlocks(corpus, tokenizer, req.seq_len, "validation")
    val = take_blocks(val, req.max_val_examples)
    req.check_size(len(take_blocks(train, req.batch_size)), len(val))  # the first documents
    key = {"streaming": corpus.cache_key(), "tokenizer": tok_key, "shuffle_buffer": buffer}
    return req.data(
        tokenizer, tok_key, train, val, hash=key, streaming=True, train_examples=None,
        train_documents=None,
    )  # fmt: skip


def prepare_pretraining_data(
    corpus: Corpus,
    tokenizer_spec: TokenizerSpec,
    seq_len: int,
    data_format: str,
    seed: int,
    cache_dir: str | os.PathLike,
    max_val_examples: int,
    batch_size: int,
    with_train: bool = True,
) -> PretrainData:
    """``with_train=False`` builds the validation examples only (``train`` is then empty): what
    the forgetting monitor needs, without packing or pairing the whole training split."""
    req = _Request(
        corpus, tokenizer_spec, seq_len, data_format, seed, cache_dir, max_val_examples, batch_size
    )
    if getattr(corpus, "streaming", False):
        return _prepare_streaming(req)
    docs = build_corpus(corpus, cache_dir)
    tokenizer, tok_key = train_tokenizer(tokenizer_spec, docs, corpus.cache_key(), cache_dir)
    ids = special_ids(tokenizer)
    tokens, tokens_key = tokenize_corpus(
        docs, tokenizer, f"{corpus.cache_key()}/{tok_key}", cache_dir
    )

    def examples(split: str, wanted: bool = True) -> Any:
        if not wanted:
            return []
        if data_format == "blocks":
            return pack_blocks(tokens[split], seq_len, ids["cls"])
        # "pairs": B continues A or comes from another document; "consecutive_pairs": B
        # always continues A
        return make_nsp_pairs(
            tokens[split], seq_len, seeds.pairs(seed, split), ids["cls"], ids["sep"],
            random_next=data_format == "pairs",
        )  # fmt: skip

    train, val = examples("train", with_train), examples("validation")[:max_val_examples]
    req.check_size(len(train), len(val), with_train)
    return req.data(
        tokenizer, tok_key, train, val, hash={"tokens": tokens_key},
        train_examples=len(train), train_documents=len(tokens["train"]),
    )  # fmt: skip
