"""``corpus.streaming=true``: blocks read, tokenized and packed on the fly, bounded memory."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from pretrainlab.data.corpus import TextFilesCorpus, WikiTextCorpus, build_corpus
from pretrainlab.data.datamodule import PretrainDataModule
from pretrainlab.data.pipeline import pack_blocks, tokenize_corpus
from pretrainlab.data.prepare import prepare_pretraining_data
from pretrainlab.data.streaming import StreamingBlocks, shuffled, take_blocks
from pretrainlab.data.tokenizer import TokenizerSpec, train_tokenizer
from pretrainlab.errors import PretrainlabError

SPEC = TokenizerSpec(vocab_size=400)


def write_corpus(path: Path, n_bytes: int, seed: int = 0) -> Path:
    """One document per line, a few sentences each, written line by line (never held whole)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(3000)]

    def sentence() -> str:
        return " ".join(rng.choices(words, k=rng.randint(4, 14))).capitalize() + "."

    pool = [" ".join(sentence() for _ in range(rng.randint(2, 8))) + "\n" for _ in range(3000)]
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < n_bytes:
            line = rng.choice(pool)
            f.write(line)
            written += len(line)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("stream") / "docs.txt", 60_000)


def stack(examples: list[tuple[int, torch.Tensor]]) -> tuple[list[int], torch.Tensor]:
    return [i for i, _ in examples], torch.stack([x for _, x in examples])


def test_same_blocks_as_the_materialised_pipeline(small, tmp_path):
    corpus = TextFilesCorpus(paths=str(small), doc_boundary="line")
    docs = build_corpus(corpus, tmp_path)
    tok, key = train_tokenizer(SPEC, docs, corpus.cache_key(), tmp_path)
    tokens, _ = tokenize_corpus(docs, tok, key, tmp_path)
    expected = pack_blocks(tokens["train"], 32, tok.cls_token_id)
    in_order = StreamingBlocks(corpus, tok, 32, shuffle_buffer=0)
    assert torch.equal(take_blocks(in_order, 10**9), expected)
    assert [i for i, _ in in_order] == list(range(len(expected)))


def test_shuffle_buffer_passes_and_plain_dataloader(small, tmp_path):
    corpus = TextFilesCorpus(
        paths=str(small), doc_boundary="line", streaming=True, shuffle_buffer=64
    )
    data = prepare_pretraining_data(corpus, SPEC, 32, "blocks", 7, tmp_path, 16, 8)
    train = data.train
    assert isinstance(train, IterableDataset)
    assert data.stats["train_examples"] is None and data.stats["streaming"] is True
    assert data.val.shape == (16, 32) and (data.val[:, 0] == data.special_ids["cls"]).all()
    reference = take_blocks(train, 10**9)  # packing order
    loader = DataLoader(train, batch_size=8, collate_fn=stack)
    first = [b for b in loader]
    second = [b for b in loader]  # a new pass: every block again, in another order
    for passes in (first, second):
        index = [i for ids, _ in passes for i in ids]
        assert sorted(index) == list(range(len(reference)))
        for ids, blocks in passes:
            assert torch.equal(blocks, reference[ids])
    order1 = [i for ids, _ in first for i in ids]
    order2 = [i for ids, _ in second for i in ids]
    assert order1 != order2 and order1 != sorted(order1)
    # seeded: a fresh dataset with the same seed repeats the first pass exactly
    again = StreamingBlocks(corpus, data.tokenizer, 32, seed=7, shuffle_buffer=64)
    assert [i for i, _ in again] == order1
    # collators get (index, block) pairs: the real MLM collator works on them
    assert first[0][1].dtype == torch.long and first[0][1].shape == (8, 32)


def test_dataloader_workers_split_the_documents(small, tmp_path):
    corpus = TextFilesCorpus(paths=str(small), doc_boundary="line")
    docs = build_corpus(corpus, tmp_path)
    tok, _ = train_tokenizer(SPEC, docs, corpus.cache_key(), tmp_path)
    ds = StreamingBlocks(corpus, tok, 32, shuffle_buffer=16)
    seen = [
        i for ids, _ in DataLoader(ds, batch_size=4, collate_fn=stack, num_workers=2) for i in ids
    ]
    assert len(seen) == len(set(seen))  # no block twice
    assert abs(len(seen) - len(take_blocks(ds, 10**9))) <= 2  # only the shards' tails differ


def test_a_stream_has_no_length_and_still_loads(small, tmp_path):
    corpus = TextFilesCorpus(paths=str(small), doc_boundary="line", streaming=True)
    data = prepare_pretraining_data(corpus, SPEC, 32, "blocks", 0, tmp_path, 4, 4)
    with pytest.raises(TypeError):  # what DataLoader / Lightning expect of an unsized dataset
        len(data.train)
    module = PretrainDataModule(data.train, data.val, stack, 4, 0)
    indices, blocks = next(iter(module.train_dataloader()))  # no sampler: read as a stream
    assert blocks.shape == (4, 32) and len(indices) == 4


def test_shuffled_keeps_every_item():
    rng = random.Random(0)
    out = list(shuffled(range(100), 10, rng))
    assert sorted(out) == list(range(100)) and out != list(range(100))
    assert list(shuffled(range(5), 1, rng)) == list(range(5))


def test_streaming_refuses_nsp_pairs_and_bad_options(small, tmp_path):
    corpus = TextFilesCorpus(paths=str(small), doc_boundary="line", streaming=True)
    with pytest.raises(
        PretrainlabError, match="streaming=true supports objectives of data format 'blocks'"
    ):
        prepare_pretraining_data(corpus, SPEC, 32, "pairs", 0, tmp_path, 8, 8)
    assert not (tmp_path / "tokenizer").exists()  # refused before any work
    for kwargs, match in [
        ({"streaming": "yes"}, "corpus.streaming"),
        ({"tokenizer_docs": 0}, "corpus.tokenizer_docs"),
        ({"shuffle_buffer": -1}, "corpus.shuffle_buffer"),
    ]:
        with pytest.raises(PretrainlabError, match=match):
            TextFilesCorpus(paths=str(small), **kwargs)
        with pytest.raises(PretrainlabError, match=match):
            WikiTextCorpus(path=str(tmp_path), **kwargs)


def test_streaming_tokenizer_is_cached_and_bounded(small, tmp_path, monkeypatch):
    corpus = TextFilesCorpus(
        paths=str(small), doc_boundary="line", streaming=True, tokenizer_docs=20
    )
    first = prepare_pretraining_data(corpus, SPEC, 32, "blocks", 0, tmp_path, 4, 4)
    assert len(list((tmp_path / "tokenizer").iterdir())) >= 1
    from pretrainlab.data import tokenizer

    monkeypatch.setattr(tokenizer, "_build", lambda spec: pytest.fail("tokenizer retrained"))
    second = prepare_pretraining_data(corpus, SPEC, 32, "blocks", 0, tmp_path, 4, 4)
    assert second.stats["tokenizer"] == first.stats["tokenizer"]
    assert second.data_hash == first.data_hash
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "tokens").exists()


def test_pretrain_end_to_end_with_a_streaming_corpus(small, pretrain_cfg, tmp_path, monkeypatch):
    from pretrainlab import pretrain as pretrain_module

    cfg = pretrain_cfg(
        "corpus=text_files",
        f"corpus.paths=[{small}]",
        "corpus.doc_boundary=line",
        "corpus.streaming=true",
        "corpus.shuffle_buffer=32",
        "tokenizer.vocab_size=400",
        "data.seq_len=32",
        "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        "checkpoint_every=2",
        "encoder.layers=1",
        "encoder.hidden=32",
        "encoder.heads=2",
        "encoder.ffn=64",
    )
    metrics = pretrain_module.pretrain(cfg, tmp_path)
    assert metrics["steps"] == 4 and metrics["val/loss"] > 0
    assert json.loads((tmp_path / "run.json").read_text())["data"]["streaming"] is True


# The memory check runs each corpus in a fresh interpreter and reads its peak resident size.
MEASURE = r"""
import json, resource, sys
import torch
from torch.utils.data import DataLoader
from pretrainlab.data.corpus import TextFilesCorpus
from pretrainlab.data.prepare import prepare_pretraining_data
from pretrainlab.data.tokenizer import TokenizerSpec

corpus = TextFilesCorpus(paths=sys.argv[1], doc_boundary="line", streaming=True,
                         tokenizer_docs=500, shuffle_buffer=1000)
data = prepare_pretraining_data(corpus, TokenizerSpec(vocab_size=2000), 128, "blocks", 0,
                                sys.argv[2], 32, 16)
blocks = tokens = 0
for batch in DataLoader(data.train, batch_size=64,
                        collate_fn=lambda ex: torch.stack([x for _, x in ex])):
    blocks += len(batch)
    tokens += batch.numel()
try:  # this process' own peak: ru_maxrss would also count the parent's pages at fork time
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
print(json.dumps({"blocks": blocks, "tokens": tokens, "peak_rss": peak}))
"""


def test_peak_memory_does_not_grow_with_corpus_size(tmp_path):
    runs = {}
    for name, size in (("small", 700_000), ("large", 7_000_000)):
        corpus = write_corpus(tmp_path / f"{name}.txt", size, seed=1)
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(corpus), str(tmp_path / "c")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        runs[name] = json.loads(out.stdout.strip().splitlines()[-1])
    small_run, large_run = runs["small"], runs["large"]
    growth = large_run["peak_rss"] - small_run["peak_rss"]
    materialised = large_run["tokens"] * 8  # the large corpus' blocks as one int64 tensor
    print(
        f"\nstreaming peak RSS: 0.7 MB corpus {small_run['peak_rss'] / 2**20:.1f} MiB "
        f"({small_run['tokens']:,} tokens), 7 MB corpus {large_run['peak_rss'] / 2**20:.1f} "
        f"MiB ({large_run['tokens']:,} tokens): {growth / 2**20:+.1f} MiB; materialising the "
        f"large one's blocks alone would take {materialised / 2**20:.1f} MiB"
    )
    assert large_run["tokens"] > 9 * small_run["tokens"]
    # within +60 MB, and below what holding the large corpus' blocks in memory would add
    assert growth < min(60 * 2**20, materialised)
