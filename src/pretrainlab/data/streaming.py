"""Streaming pretraining data: read, tokenize and pack on the fly, with bounded memory.

For corpora that do not fit in RAM (``corpus.streaming=true``). Nothing of the corpus is
materialised: no Arrow cache, no token array, no block tensor of the whole split.

- :func:`train_tokenizer_streaming`: the tokenizer trained by ``train_from_iterator`` on a
  generator over the first ``max_docs`` train documents (or all of them), cached under a key
  from the corpus fingerprint like the materialised one.
- :func:`iter_blocks`: documents -> token ids (batched calls to the fast tokenizer) -> packed
  ``[CLS] + seq_len-1`` blocks, documents separated by ``[SEP]``: the layout of
  :func:`pretrainlab.data.pipeline.pack_blocks` (the same blocks, in the same order).
- :class:`StreamingBlocks`: the training set, a ``torch.utils.data.IterableDataset`` yielding
  ``(index, block)`` pairs (``index``: the block's running number in packing order, which the
  collators use for per-example randomness), through a seeded shuffle buffer. Each
  ``__iter__`` is a new pass over the corpus, shuffled differently.

Memory is bounded by the tokenizer batch (``batch_docs`` documents), the shuffle buffer
(``shuffle_buffer`` blocks of ``seq_len`` int64) and the largest single document.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from transformers import PreTrainedTokenizerFast

from pretrainlab import seeds
from pretrainlab.data.corpus import SHUFFLE_BUFFER, Corpus
from pretrainlab.data.tokenizer import TokenizerSpec, cached_tokenizer
from pretrainlab.errors import PretrainlabError

STREAMING_VERSION = 1


class NoLength(PretrainlabError, TypeError):
    """``len()`` of a stream. A TypeError, so DataLoader and Lightning treat the dataset as
    unsized (as for any IterableDataset); a PretrainlabError, so code that needs a length (an
    epoch sampler) stops with a message saying why instead of a bare TypeError."""


def _sentences(doc: dict) -> list[str]:
    # the filter build_corpus applies, so both paths see the same text
    return [s for s in doc["sentences"] if s.strip()]


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def _sentence_batches(
    docs: Iterable[dict], max_docs: int | None, batch_docs: int = 256
) -> Iterator[list[str]]:
    for batch in _batched(islice(docs, max_docs), batch_docs):
        yield [s for doc in batch for s in _sentences(doc)]


def train_tokenizer_streaming(
    spec: TokenizerSpec, corpus: Corpus, cache_dir: str | os.PathLike, max_docs: int | None = None
) -> tuple[PreTrainedTokenizerFast, str]:
    """Train (or load from cache) a tokenizer on the first ``max_docs`` documents of the
    corpus' train split (all when None), read as a stream; returns it and its cache key."""
    fields = {
        "corpus": corpus.cache_key(),
        "stream_docs": max_docs,
        "streaming": STREAMING_VERSION,
    }
    return cached_tokenizer(
        spec, fields, lambda: _sentence_batches(corpus.documents("train"), max_docs), cache_dir
    )


def _encode(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without special tokens: the fast (Rust) tokenizer's batch
    encoding, called directly (the ids ``tokenizer(texts, add_special_tokens=False)`` gives,
    without building offsets and masks nobody reads)."""
    backend = tokenizer.backend_tokenizer
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    return [e.ids for e in encode(texts, add_special_tokens=False)]


def iter_blocks(
    docs: Iterable[dict], tokenizer: PreTrainedTokenizerFast, seq_len: int, batch_docs: int = 64
) -> Iterator[torch.Tensor]:
    """Packed ``[CLS] + seq_len-1`` blocks (int64, shape ``(seq_len,)``) over the documents,
    each document's sentences' ids followed by ``[SEP]``; the tail that does not fill a block
    is dropped. Tokenizes ``batch_docs`` documents per call to the fast tokenizer."""
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    body = seq_len - 1
    carry: list[int] = []
    for batch in _batched(docs, batch_docs):
        texts = [s for s in (_sentences(d) for d in batch) if s]
        flat = [s for doc in texts for s in doc]
        if not flat:
            continue
        ids = _encode(tokenizer, flat)
        stream, k = carry, 0
        for doc in texts:
            for sentence in ids[k : k + len(doc)]:
                stream.extend(sentence)
            stream.append(sep_id)
            k += len(doc)
        n = len(stream) // body
        carry = stream[n * body :]
        if n == 0:
            continue
        blocks = np.empty((n, seq_len), dtype=np.int64)
        blocks[:, 0] = cls_id
        blocks[:, 1:] = np.asarray(stream[: n * body], dtype=np.int64).reshape(n, body)
        # one tensor per block (not views of the batch array: a block held in the shuffle
        # buffer must not keep its whole batch alive)
        yield from torch.from_numpy(blocks).clone().unbind(0)


def shuffled(items: Iterable[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Items in a locally shuffled order: hold up to ``size`` items, yield a random one each
    time a new one arrives, then the rest in random order. ``size <= 1`` keeps the order."""
    if size <= 1:
        yield from items
        return
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = rng.randrange(size)
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


class StreamingBlocks(IterableDataset):
    """Packed blocks of one split of a corpus, read and tokenized on the fly.

    Yields ``(index, block)`` with ``index`` the block's running number in packing order.
    Every ``__iter__`` starts a new pass (pass ``p`` is shuffled with a generator seeded by
    ``seed`` and ``p``; ``set_epoch`` sets ``p`` explicitly). In DataLoader workers each
    worker packs every ``num_workers``-th document (no block is seen twice per pass) and
    numbers its blocks ``k * num_workers + worker_id``.
    """

    def __init__(
        self,
        corpus: Corpus,
        tokenizer: PreTrainedTokenizerFast,
        seq_len: int,
        split: str = "train",
        seed: int = 0,
        shuffle_buffer: int = SHUFFLE_BUFFER,
        batch_docs: int = 64,
    ):
        super().__init__()
        self.corpus, self.tokenizer, self.seq_len, self.split = corpus, tokenizer, seq_len, split
        self.seed, self.buffer_size, self.batch_docs = seed, shuffle_buffer, batch_docs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        raise NoLength(
            "corpus.streaming=true gives a training stream without a length, and something "
            "asked for one (a length-based sampler such as PretrainDataModule's epoch "
            "permutation). A stream is read by a DataLoader without a sampler: "
            "DataLoader(dataset, batch_size, collate_fn=...); see 'Streaming corpora' in "
            "experiments/bert_ablation_real/README.md for the PretrainDataModule branch."
        )

    def blocks(self, shard: int = 0, num_shards: int = 1) -> Iterator[torch.Tensor]:
        """One pass of blocks in packing order (no shuffling)."""
        docs: Iterable[dict] = self.corpus.documents(self.split)
        if num_shards > 1:
            docs = islice(docs, shard, None, num_shards)
        return iter_blocks(docs, self.tokenizer, self.seq_len, self.batch_docs)

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor]]:
        info = get_worker_info()
        shard, num_shards = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, self.epoch = self.epoch, self.epoch + 1
        rng = seeds.stream_order(self.seed, epoch, shard)
        numbered = (
            (k * num_shards + shard, block)
            for k, block in enumerate(self.blocks(shard, num_shards))
        )
        return shuffled(numbered, self.buffer_size, rng)


def take_blocks(dataset: StreamingBlocks, n: int) -> torch.Tensor:
    """The first ``n`` blocks of a pass in packing order, as an ``(m, seq_len)`` tensor
    (``m <= n``); reads only as many documents as they need."""
    blocks = list(islice(dataset.blocks(), n))
    if not blocks:
        return torch.empty((0, dataset.seq_len), dtype=torch.long)
    return torch.stack(blocks)
