"""A tokenizer trained from scratch on the corpus (WordPiece or BPE), cached by content hash."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast

from pretrainlab.config import check_choice
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import cached_folder, content_hash

TOKENIZER_VERSION = 1
# One fixed set of special tokens for every objective, at fixed ids.
SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
KINDS = ("wordpiece", "bpe")


@dataclass(kw_only=True)
class TokenizerSpec:
    kind: str = "wordpiece"
    vocab_size: int = 8192
    lowercase: bool = True
    min_frequency: int = 2

    def __post_init__(self) -> None:
        check_choice("tokenizer.kind", self.kind, KINDS)
        if not isinstance(self.vocab_size, int) or not 64 <= self.vocab_size <= 1_000_000:
            raise PretrainlabError(
                f"tokenizer.vocab_size={self.vocab_size!r} is not valid: expected an integer "
                "between 64 and 1000000."
            )


def _build(spec: TokenizerSpec) -> tuple[Tokenizer, trainers.Trainer]:
    specials = list(SPECIAL_TOKENS.values())
    norm = [normalizers.NFKC()] + ([normalizers.Lowercase()] if spec.lowercase else [])
    if spec.kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=spec.vocab_size, min_frequency=spec.min_frequency, special_tokens=specials
        )
    else:
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=spec.vocab_size,
            min_frequency=spec.min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    tok.normalizer = normalizers.Sequence(norm)
    return tok, trainer


def _sentences(train: datasets.Dataset, batch: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(train), batch):
        rows = train[start : start + batch]["sentences"]
        yield [s for doc in rows for s in doc]


def wrap(tok: Tokenizer, max_length: int) -> PreTrainedTokenizerFast:
    """Wrap a trained tokenizer for transformers (pipelines, save_pretrained)."""
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=max_length,
        **{f"{k}_token": v for k, v in SPECIAL_TOKENS.items()},
    )
    return fast


def load_tokenizer(folder: str | os.PathLike) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    for key, token in SPECIAL_TOKENS.items():
        if getattr(tok, f"{key}_token") != token:
            raise PretrainlabError(
                f"the tokenizer in {folder} has {key}_token={getattr(tok, f'{key}_token')!r}, "
                f"expected {token!r}: it was not made by pretrainlab."
            )
    return tok


def cached_tokenizer(
    spec: TokenizerSpec,
    key_fields: dict[str, Any],
    sentences: Callable[[], Iterable[Any]],
    cache_dir: str | os.PathLike,
) -> tuple[PreTrainedTokenizerFast, str]:
    """Train a tokenizer on ``sentences()`` (texts or batches of texts), or load it from the
    cache under a key of ``spec`` and ``key_fields``; returns it and its key. Both the
    materialised and the streaming path train through this."""
    key = f"{spec.kind}{spec.vocab_size}-" + content_hash(
        {"v": TOKENIZER_VERSION, **key_fields, **asdict(spec)}
    )

    def build(folder: Path) -> None:
        tok, trainer = _build(spec)
        tok.train_from_iterator(sentences(), trainer=trainer)
        wrap(tok, max_length=1_000_000).save_pretrained(str(folder))

    tok = cached_folder(Path(cache_dir) / "tokenizer" / key, build, load_tokenizer)
    if len(tok) > spec.vocab_size:
        raise AssertionError(f"tokenizer has {len(tok)} tokens, more than {spec.vocab_size}")
    return tok, key


def train_tokenizer(
    spec: TokenizerSpec, corpus: datasets.DatasetDict, corpus_key: str, cache_dir: str | os.PathLike
) -> tuple[PreTrainedTokenizerFast, str]:
    """Train (or load from cache) a tokenizer on the corpus' train split; returns it and its key."""
    return cached_tokenizer(
        spec, {"corpus": corpus_key}, lambda: _sentences(corpus["train"]), cache_dir
    )
