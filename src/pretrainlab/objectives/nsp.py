"""Next-sentence prediction: is segment B the continuation of segment A? Classified from the
pooled first token; segments are marked with token type ids."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BertForNextSentencePrediction

from pretrainlab.objectives.base import PretrainObjective, StepOutput


def pad_pairs(examples: list[tuple[int, dict]], pad_id: int) -> dict[str, Tensor]:
    """Pad segment pairs to the longest in the batch (pairs vary in length; blocks do not)."""
    rows = [x for _, x in examples]
    width = max(len(r["input_ids"]) for r in rows)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "token_type_ids": torch.zeros((len(rows), width), dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
    }
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        batch["input_ids"][i, :n] = torch.tensor(r["input_ids"])
        batch["token_type_ids"][i, :n] = torch.tensor(r["token_type_ids"])
        batch["attention_mask"][i, :n] = 1
    batch["next_sentence_label"] = torch.tensor([r["next_sentence_label"] for r in rows])
    return batch


def next_sentence_loss(seq_relationship: Any, pooled: Tensor, labels: Tensor) -> StepOutput:
    logits = seq_relationship(pooled)  # (B, 2)
    loss = F.cross_entropy(logits.float(), labels)
    return StepOutput(loss, {"nsp_loss": (loss, labels.numel())}, {"nsp_acc": (logits, labels)})


class NSPObjective(PretrainObjective):
    name = "nsp"
    hf_class = BertForNextSentencePrediction
    data_format = "pairs"
    uses_segments = True
    loss_terms = ("nsp_loss",)
    accuracies = {"nsp_acc": 2}

    def collate(self, examples: list[tuple[int, dict]]) -> dict[str, Tensor]:
        return pad_pairs(examples, self.special_ids["pad"])

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        pooled = self.encode(batch).pooler_output  # (B, H): tanh(W h_[CLS])
        return next_sentence_loss(
            self.model.cls.seq_relationship, pooled, batch["next_sentence_label"]
        )
