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


def _too_small(
    corpus: Corpus, n_train: Any, n_val: int, seq_len: int, data_format: str, batch_size: int
) -> PretrainlabError:
    return PretrainlabError(
        f"corpus {corpus.name!r} is too small for one batch: it gives {n_train} training "
        f"and {n_val} validation examples of data.seq_len={seq_len} ({data_format}), but "
        f"data.batch_size={batch_size}. Use a larger corpus (e.g. corpus.num_words) or a "
        "smaller data.batch_size / data.seq_len."
    )


def prepare_streaming_data(
    corpus: Corpus,
    tokenizer_spec: TokenizerSpec,
    seq_len: int,
    data_format: str,
    seed: int,
    cache_dir: str | os.PathLike,
    max_val_examples: int,
    batch_size: int,
) -> PretrainData:
    """The streaming path: tokenizer from a bounded stream, training blocks packed on the fly,
    the first ``max_val_examples`` validation blocks materialised."""
    from pretrainlab.data.streaming import (
        StreamingBlocks,
        take_blocks,
        train_tokenizer_streaming,
    )

    if data_format != "blocks":
        raise PretrainlabError(
            f"corpus.streaming=true supports the packed-block objectives (mlm, clm) only: this "
            f"objective needs NSP sentence pairs (data format {data_format!r}), which streaming "
            "mode does not build. Use corpus.streaming=false (the corpus is materialised in an "
            "on-disk cache) or objective=mlm / objective=clm."
        )
    tokenizer, tok_key = train_tokenizer_streaming(
        tokenizer_spec, corpus, cache_dir, getattr(corpus, "tokenizer_docs", None)
    )
    ids = special_ids(tokenizer)
    train = StreamingBlocks(
        corpus, tokenizer, seq_len, "train", seed, getattr(corpus, "shuffle_buffer", 10_000)
    )
    val = take_blocks(StreamingBlocks(corpus, tokenizer, seq_len, "validation"), max_val_examples)
    n_first = len(take_blocks(train, batch_size))  # reads only the first few documents
    if n_first < batch_size or len(val) == 0:
        raise _too_small(corpus, n_first, len(val), seq_len, data_format, batch_size)
    return PretrainData(
        tokenizer=tokenizer,
        train=train,
        val=val,
        special_ids=ids,
        data_hash=content_hash(
            {
                "streaming": corpus.cache_key(),
                "tokenizer": tok_key,
                "seq_len": seq_len,
                "format": data_format,
                "seed": seed,
                "shuffle_buffer": train.buffer_size,
            }
        ),
        stats={
            "corpus": corpus.cache_key(),
            "tokenizer": tok_key,
            "vocab_size": len(tokenizer),
            "streaming": True,
            "train_examples": None,
            "val_examples": len(val),
            "train_documents": None,
            "unigram_acc": unigram_accuracy(val, len(ids)),
        },
    )


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
    if getattr(corpus, "streaming", False):
        return prepare_streaming_data(
            corpus,
            tokenizer_spec,
            seq_len,
            data_format,
            seed,
            cache_dir,
            max_val_examples,
            batch_size,
        )
    docs = build_corpus(corpus, cache_dir)
    tokenizer, tok_key = train_tokenizer(tokenizer_spec, docs, corpus.cache_key(), cache_dir)
    ids = special_ids(tokenizer)
    tokens, tokens_key = tokenize_corpus(
        docs, tokenizer, f"{corpus.cache_key()}/{tok_key}", cache_dir
    )
    if data_format == "blocks":
        train = pack_blocks(tokens["train"], seq_len, ids["cls"]) if with_train else []
        val = pack_blocks(tokens["validation"], seq_len, ids["cls"])[:max_val_examples]
    else:
        train = (
            make_nsp_pairs(tokens["train"], seq_len, seed, ids["cls"], ids["sep"])
            if with_train
            else []
        )
        val = make_nsp_pairs(tokens["validation"], seq_len, seed + 1, ids["cls"], ids["sep"])
        val = val[:max_val_examples]
    if (with_train and len(train) < batch_size) or len(val) == 0:
        raise _too_small(corpus, len(train), len(val), seq_len, data_format, batch_size)
    stats_val = val if data_format == "blocks" else [torch.tensor(p["input_ids"]) for p in val]
    return PretrainData(
        tokenizer=tokenizer,
        train=train,
        val=val,
        special_ids=ids,
        data_hash=content_hash(
            {"tokens": tokens_key, "seq_len": seq_len, "format": data_format, "seed": seed}
        ),
        stats={
            "corpus": corpus.cache_key(),
            "tokenizer": tok_key,
            "vocab_size": len(tokenizer),
            "train_examples": len(train),
            "val_examples": len(val),
            "train_documents": len(tokens["train"]),
            "unigram_acc": unigram_accuracy(stats_val, len(ids)),
        },
    )
