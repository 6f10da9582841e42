"""Next-sentence prediction: is segment B the continuation of segment A? Classified from the
pooled first token; segments are marked with token type ids."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BertForNextSentencePrediction

from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.body import BODIES, bert_linears


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


class NSPHead(torch.nn.Module):
    """BERT's pooler (dense + tanh on the first token) and its 2-way classifier, for a family
    whose transformers classes have no NSP head (RoFormer). Written out because it is two
    layers; it is exported beside the model as ``hf/nsp_head.safetensors``."""

    def __init__(self, hidden: int):
        super().__init__()
        self.pooler, self.seq_relationship = bert_linears((hidden, hidden), (hidden, 2))


class NSPHeads:
    """For objectives with a next-sentence head: BERT's classes hold it, RoFormer's do not
    (:class:`NSPHead` is added, and saved beside the model as ``nsp_head.safetensors``). They
    train on segment pairs with token type ids, and their loss reads the pooled [CLS]."""

    data_format = "pairs"
    uses_segments = True
    trains_cls = True  # next-sentence prediction classifies the pooled [CLS]
    pair_task = "nsp"  # names the pair loss term, its accuracy and its weight

    def pair_batch(self, examples: list[tuple[ExampleKey, dict]]) -> dict[str, Tensor]:
        """The padded pairs with their labels (``next_sentence_label``)."""
        return pad_pairs(examples, self.special_ids["pad"])

    def pair_loss(self, out: Any, batch: dict[str, Tensor]) -> StepOutput:
        """The pair classifier's loss from the encoder's output ``out``."""
        classifier, pooled = next_sentence_parts(self, out)  # tanh(W h_[CLS])
        return next_sentence_loss(classifier, pooled, batch["next_sentence_label"], self.pair_task)

    def add_heads(self, config: Any) -> None:
        if self.encoder_spec.family != "bert":
            self.nsp_head = NSPHead(config.hidden_size)

    def extra_heads(self) -> dict[str, torch.nn.Module]:
        head = getattr(self, "nsp_head", None)
        return {"nsp_head": head} if head is not None else {}


def next_sentence_parts(objective: PretrainObjective, out: Any) -> tuple[Any, Tensor]:
    """(classifier, pooled first token) from BERT's own NSP head, or from :class:`NSPHead`."""
    head = getattr(objective, "nsp_head", None)
    if head is None:
        return objective.model.cls.seq_relationship, out.pooler_output
    return head.seq_relationship, torch.tanh(head.pooler(out.last_hidden_state[:, 0]))


def next_sentence_loss(
    seq_relationship: Any, pooled: Tensor, labels: Tensor, task: str = "nsp"
) -> StepOutput:
    """Two-way cross-entropy, logged as ``{task}_loss`` and ``{task}_acc``."""
    logits = seq_relationship(pooled)  # (B, 2)
    loss = F.cross_entropy(logits.float(), labels)
    n = labels.numel()
    return StepOutput(loss, {f"{task}_loss": (loss, n)}, {f"{task}_acc": (logits, labels)})


class NSPObjective(NSPHeads, PretrainObjective):
    name = "nsp"
    hf_classes = {**BODIES, "bert": BertForNextSentencePrediction}  # RoFormer: NSPHead added
    loss_terms = ("nsp_loss",)
    accuracies = {"nsp_acc": 2}

    def collate(self, examples: list[tuple[ExampleKey, dict]]) -> dict[str, Tensor]:
        return self.pair_batch(examples)

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        return self.pair_loss(self.encode(batch), batch)
