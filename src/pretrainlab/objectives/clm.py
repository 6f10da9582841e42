"""Causal (left-to-right) language modelling: the same encoder with a causal attention mask,
predicting each next token."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BertLMHeadModel, RoFormerForCausalLM

from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.scoring import CandidateScorer, causal_lm_scores


class CLMObjective(PretrainObjective):
    name = "clm"
    # config.is_decoder=True: causal self-attention
    hf_classes = {"bert": BertLMHeadModel, "roformer": RoFormerForCausalLM}
    causal = True
    loss_terms = ("clm_loss",)
    ppl_term = "clm_loss"
    accuracies = {"next_token_acc": "vocab"}

    @classmethod
    def predicted_share(cls, **params: Any) -> float:
        return 1.0

    @classmethod
    def candidate_scorer(cls) -> CandidateScorer:
        return causal_lm_scores  # the candidate and what follows, given the text before it

    def collate(self, examples: list[tuple[int, Tensor]]) -> dict[str, Tensor]:
        return {"input_ids": torch.stack([x for _, x in examples])}

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        ids = batch["input_ids"]  # (B, T)
        hidden = self.encode(batch).last_hidden_state  # (B, T, H)
        logits = self.model.cls(hidden[:, :-1])  # (B, T-1, V): position t predicts token t+1
        target = ids[:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())
        return StepOutput(
            loss, {"clm_loss": (loss, target.numel())}, {"next_token_acc": (logits, target)}
        )
