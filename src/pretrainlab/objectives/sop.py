"""Sentence-order prediction (ALBERT): two consecutive segments of one document, in their order
(label 0) or swapped (label 1), classified from the pooled first token. Unlike NSP's random
second segment, a swap keeps both segments' topic, so the classifier must learn order (the
coherence between them), not topic.

The pairs are NSP's (:func:`pretrainlab.data.pipeline.make_nsp_pairs`, data format
``consecutive_pairs``: B always continues A); whether an example is swapped is drawn at
collation from a generator keyed by the example (:func:`pretrainlab.seeds.segment_order`):
by (seed, epoch, index) in training, so a pair is swapped anew each epoch, by (seed, index)
for validation, so every evaluation sees the same order. The pair head, its export beside the
model for RoFormer (``nsp_head.safetensors``) and the loss are NSP's (:class:`NSPHeads`); the
batch's ``next_sentence_label`` holds the order label.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pretrainlab import seeds
from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.objectives.nsp import NSPObjective


def swap_segments(pair: dict[str, Any]) -> dict[str, Any]:
    """``[CLS] A [SEP] B [SEP]`` -> ``[CLS] B [SEP] A [SEP]`` with the token types that go with
    it, labelled 1 (swapped)."""
    ids, b_start = pair["input_ids"], pair["token_type_ids"].index(1)
    cls, a, sep, b = ids[0], ids[1 : b_start - 1], ids[b_start - 1], ids[b_start:-1]
    return {
        "input_ids": [cls, *b, sep, *a, sep],
        "token_type_ids": [0] * (len(b) + 2) + [1] * (len(a) + 1),
        "next_sentence_label": 1,
    }


def is_swapped(seed: int, key: ExampleKey) -> bool:
    return bool(torch.rand((), generator=seeds.segment_order(seed, key)) < 0.5)


class SentenceOrder:
    """Makes an objective with a pair head (:class:`NSPHeads`) predict segment order: it
    trains on consecutive pairs and swaps half of them. A mixin first in the bases."""

    data_format = "consecutive_pairs"
    pair_task = "sop"
    seed: int

    def pair_batch(self, examples: list[tuple[ExampleKey, dict]]) -> dict[str, Tensor]:
        ordered = [
            (key, swap_segments(pair) if is_swapped(self.seed, key) else pair)
            for key, pair in examples
        ]
        return super().pair_batch(ordered)  # type: ignore[misc]


class SOPObjective(SentenceOrder, NSPObjective):
    name = "sop"
    loss_terms = ("sop_loss",)
    accuracies = {"sop_acc": 2}
