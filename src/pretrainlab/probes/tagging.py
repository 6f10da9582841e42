"""The token-tagging probe (task kind ``tagging``): word-level tags from sub-token features.

Sub-word alignment is the standard one: a word's tag is predicted at its first sub-token; the
other sub-tokens, the special tokens and padding carry the ignore label (:data:`IGNORE`), so
neither the loss nor the scores see them. A word cut off by ``probe.max_length`` is predicted
``O`` (a miss if it was part of an entity). Scores are entity-level (seqeval's default,
conlleval-compatible mode, IOB2): ``f1``, ``precision``, ``recall``, plus token ``accuracy``,
and, where the task has ``subset`` and ``target`` columns (the embedded ``tagging`` task),
``f1_<subset>``: entity F1 on each row's target words alone, gold and prediction cut to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import torch
from seqeval.metrics import f1_score, precision_score, recall_score
from torch import Tensor

from pretrainlab.probes.features import padded_batch

IGNORE = -100  # label of the positions no loss or score reads


def align(
    ds: datasets.Dataset, tokenizer: Any, max_length: int
) -> tuple[dict[str, Tensor], Tensor]:
    """Encoder inputs (N, L) of the split's word lists, padded to its longest row, and labels
    (N, L): each word's tag at its first sub-token, :data:`IGNORE` elsewhere."""
    enc = padded_batch(tokenizer, list(ds["tokens"]), None, max_length, is_split_into_words=True)
    labels = torch.full_like(enc["input_ids"], IGNORE)  # (N, L)
    for row, tags in enumerate(ds["tags"]):
        previous = None
        for pos, word in enumerate(enc.word_ids(row)):
            if word is not None and word != previous:
                labels[row, pos] = tags[word]
            previous = word
    inputs = {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": torch.zeros_like(enc["input_ids"]),  # one segment
    }
    return inputs, labels


def word_tags(predicted: Tensor, labels: Tensor, lengths: Sequence[int], names: list[str]):
    """Tag names per sentence from per-position label ids (N, L) where ``labels`` is not
    :data:`IGNORE`; words past the window (truncated) are ``O``."""
    out = []
    for row, n in enumerate(lengths):
        ids = predicted[row][labels[row] != IGNORE].tolist()
        out.append([names[i] for i in ids] + ["O"] * (n - len(ids)))
    return out


def entity_scores(
    gold: list[list[str]],
    pred: list[list[str]],
    subsets: Sequence[str] | None = None,
    targets: Sequence[Sequence[int]] | None = None,
) -> dict[str, float]:
    """Entity-level F1, precision and recall (seqeval), token accuracy, and ``f1_<subset>``
    over the ``targets`` ([start, end) words) of each subset's rows."""
    flat = [(g, p) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)]
    out = {
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "accuracy": sum(g == p for g, p in flat) / max(1, len(flat)),
    }
    names = list(subsets) if subsets is not None else []
    for name in sorted(set(names)):
        rows = [i for i, s in enumerate(names) if s == name]
        cut = [(gold[i][slice(*targets[i])], pred[i][slice(*targets[i])]) for i in rows]
        out[f"f1_{name}"] = float(
            f1_score([g for g, _ in cut], [p for _, p in cut], zero_division=0)
        )
    return out


@torch.no_grad()
def word_features(encoder: Any, inputs: Any, batch_size: int = 64) -> Tensor:
    """Frozen features (M, H) in fp16 of every scored word (its first sub-token), in row
    order: the rows of ``inputs.labels != IGNORE``."""
    encoder.eval()
    out = []
    for start in range(0, len(inputs.labels), batch_size):
        batch = {k: v[start : start + batch_size] for k, v in inputs.inputs.items()}
        hidden = encoder(**batch).last_hidden_state  # (B, L, H)
        out.append(hidden[inputs.labels[start : start + batch_size] != IGNORE].half())
    return torch.cat(out)
