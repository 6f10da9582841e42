"""Token ids from a corpus, then the two training shapes objectives consume.

- :func:`tokenize_corpus`: one ``datasets`` batched map over documents, cached on disk. Each
  document becomes ``tokens`` (its sentences' ids, then ``[SEP]``) and ``sentence_lengths``.
- :func:`pack_blocks`: MLM/CLM blocks: documents concatenated, cut into ``[CLS] + seq_len-1``
  token blocks (no padding anywhere).
- :func:`make_nsp_pairs`: NSP segment pairs from document boundaries, 50% true next / 50% from
  another document (BERT's ``create_pretraining_data`` recipe, simplified).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import cached_folder, content_hash

PIPELINE_VERSION = 1
FEATURES = datasets.Features(
    {
        "doc_id": datasets.Value("string"),
        "tokens": datasets.Sequence(datasets.Value("int32")),
        "sentence_lengths": datasets.Sequence(datasets.Value("int32")),
    }
)


def _tokenize_batch(batch: dict, tokenizer: PreTrainedTokenizerFast) -> dict:
    flat = [s for doc in batch["sentences"] for s in doc]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"]
    tokens, lengths, k = [], [], 0
    for doc in batch["sentences"]:
        sents = ids[k : k + len(doc)]
        k += len(doc)
        sents = [s for s in sents if s]
        tokens.append([t for s in sents for t in s] + [tokenizer.sep_token_id])
        lengths.append([len(s) for s in sents])
    return {"doc_id": batch["doc_id"], "tokens": tokens, "sentence_lengths": lengths}


def tokenize_corpus(
    corpus: datasets.DatasetDict,
    tokenizer: PreTrainedTokenizerFast,
    key: str,
    cache_dir: str | os.PathLike,
) -> tuple[datasets.DatasetDict, str]:
    """Token ids per document for every split, from cache when the same key was built before."""
    key = f"tokens-{content_hash({'v': PIPELINE_VERSION, 'key': key})}"

    def build(folder: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            out = datasets.DatasetDict(
                {
                    split: ds.map(
                        _tokenize_batch,
                        batched=True,
                        batch_size=500,
                        features=FEATURES,
                        remove_columns=ds.column_names,
                        fn_kwargs={"tokenizer": tokenizer},
                        cache_file_name=os.path.join(tmp, f"{split}.arrow"),
                        desc=f"tokenize {split}",
                    )
                    for split, ds in corpus.items()
                }
            )
            out.save_to_disk(str(folder))

    return cached_folder(
        Path(cache_dir) / "tokens" / key, build, lambda f: datasets.load_from_disk(str(f))
    ), key


def token_stream(docs: datasets.Dataset) -> np.ndarray:
    """All documents' tokens back to back (each ends with [SEP]), as one int64 array."""
    column = docs.data.column("tokens").combine_chunks()
    return np.asarray(column.flatten(), dtype=np.int64)


def pack_blocks(docs: datasets.Dataset, seq_len: int, cls_id: int) -> torch.Tensor:
    """Fixed-length ``[CLS] + seq_len-1`` blocks over the concatenated documents; the tail that
    does not fill a block is dropped."""
    stream = token_stream(docs)
    body = seq_len - 1
    n = len(stream) // body
    blocks = np.empty((n, seq_len), dtype=np.int64)
    blocks[:, 0] = cls_id
    blocks[:, 1:] = stream[: n * body].reshape(n, body)
    return torch.from_numpy(blocks)


def _sentences(docs: datasets.Dataset) -> list[list[list[int]]]:
    out = []
    for row in docs:
        tokens, k, sents = row["tokens"], 0, []
        for n in row["sentence_lengths"]:
            sents.append(tokens[k : k + n])
            k += n
        out.append(sents)
    return out


def _truncate(a: list[int], b: list[int], budget: int) -> None:
    while len(a) + len(b) > budget:
        (a if len(a) > len(b) else b).pop()


def make_nsp_pairs(
    docs: datasets.Dataset,
    seq_len: int,
    seed: int,
    cls_id: int,
    sep_id: int,
    random_next: bool = True,
) -> list[dict]:
    """Sentence-pair examples ``[CLS] A [SEP] B [SEP]`` with ``token_type_ids`` 0/1.

    ``next_sentence_label`` follows transformers: 0 = B continues A, 1 = B is random.
    ``random_next=False``: B always continues A (label 0), the consecutive segments that
    sentence-order prediction swaps at collation.
    """
    rng = random.Random(seed)
    all_docs = _sentences(docs)
    if sum(len(d) >= 2 for d in all_docs) < 2:
        raise PretrainlabError(
            "Segment pairs (data format 'pairs') need documents with sentence boundaries: at "
            "least two documents of two or more "
            "sentences, but this corpus has "
            f"{sum(len(d) >= 2 for d in all_docs)}. Use a corpus that keeps sentence and document "
            "boundaries (e.g. corpus=synthetic or corpus=wikitext2), or an objective of data "
            "format 'blocks'."
        )
    budget, pairs = seq_len - 3, []
    for d, sents in enumerate(all_docs):
        chunk, length, i = [], 0, 0
        while i < len(sents):
            chunk.append(sents[i])
            length += len(sents[i])
            if (i == len(sents) - 1 or length >= budget) and len(chunk) >= 2:
                a_end = rng.randint(1, len(chunk) - 1)
                a = [t for s in chunk[:a_end] for t in s]
                if random_next and rng.random() < 0.5:
                    other = rng.randrange(len(all_docs) - 1)
                    other += other >= d
                    start = rng.randrange(len(all_docs[other]))
                    b = [t for s in all_docs[other][start:] for t in s][:budget]
                    i -= len(chunk) - a_end  # unused sentences go back into the stream
                    label = 1
                else:
                    b = [t for s in chunk[a_end:] for t in s]
                    label = 0
                _truncate(a, b, budget)
                pairs.append(
                    {
                        "input_ids": [cls_id, *a, sep_id, *b, sep_id],
                        "token_type_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1),
                        "next_sentence_label": label,
                    }
                )
                chunk, length = [], 0
            elif length >= budget:  # a single over-long sentence: cannot make a pair
                chunk, length = [], 0
            i += 1
    return pairs
