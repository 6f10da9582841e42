"""Prefix language modelling (UniLM; T5's Table 2 "prefix LM"): one network whose attention is
bidirectional over a prefix of the block and causal over the rest; the loss is next-token
cross-entropy on the rest only (the vocabulary head projects only those positions).

Where the prefix ends: with ``prefix_fraction`` null (the default) each example draws its
prefix length P uniformly from 1..T-1 positions (P = 1: [CLS] alone, a plain causal LM; at
most all but the last token), from a generator keyed by the example, by (seed, epoch, index)
in training (:func:`pretrainlab.seeds.prefix_split`): every split point is trained, anew each
epoch like dynamic masks, and a validation example keeps its split at every evaluation. A
fraction f in (0, 1) instead fixes P = round(f x T), kept in 1..T-1, for every example.

The attention mask is a 4D ``(B, 1, T, T)`` mask built on the batch's device by transformers'
own ``create_bidirectional_mask`` (an ``and_mask_function`` restricts the full mask to the
prefix rule), so it has the form the encoder's attention expects (boolean for BERT's SDPA,
additive for RoFormer's eager attention); transformers 5 passes a 4D ``attention_mask``
through to the layers unchanged.

The exported ``hf/`` config is bidirectional (``is_decoder`` false): ``AutoModel`` encodes a
text as one whole prefix, and ``pipeline("text-generation")`` (the causal-LM class of the
family) continues a prompt with the prompt as the prefix.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BertLMHeadModel, RoFormerForCausalLM
from transformers.masking_utils import create_bidirectional_mask

from pretrainlab import seeds
from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.knobs import Knob


def prefix_length(seed: int, key: ExampleKey, width: int, fraction: float | None) -> int:
    """The number of bidirectional positions of the example of ``key`` in a block of
    ``width`` (see the module docstring)."""
    if fraction is not None:
        return min(max(1, round(fraction * width)), width - 1)
    return int(torch.randint(1, width, (), generator=seeds.prefix_split(seed, key)))


def prefix_attention(config: Any, prefix: Tensor, width: int) -> Tensor:
    """(B, 1, T, T) attention mask: query i sees key j when j <= i, or when both are in the
    prefix (j < P of its row; then i < P sees no later j >= P)."""
    return create_bidirectional_mask(
        config=config,
        inputs_embeds=torch.empty(len(prefix), width, 0, device=prefix.device),
        attention_mask=None,
        and_mask_function=lambda b, h, q, kv: (kv <= q) | (kv < prefix[b]),
    )


class PrefixLMObjective(PretrainObjective):
    name = "prefix_lm"
    loss_terms = ("prefix_lm_loss",)
    ppl_term = "prefix_lm_loss"
    accuracies = {"next_token_acc": "vocab"}
    # the causal-LM classes (text generation), built with a bidirectional config
    hf_classes = {"bert": BertLMHeadModel, "roformer": RoFormerForCausalLM}
    knobs = {"prefix_fraction": Knob(None, " (null: drawn per example)")}
    prefix_fraction: float | None

    @classmethod
    def predicted_share(cls, prefix_fraction: float | None = None, **_: Any) -> float:
        """The share after the prefix: 1/2 on average when drawn uniformly, else 1 - f."""
        return 0.5 if prefix_fraction is None else 1 - prefix_fraction

    def collate(self, examples: list[tuple[ExampleKey, Tensor]]) -> dict[str, Tensor]:
        ids = torch.stack([x for _, x in examples])  # (B, T)
        width = ids.shape[1]
        prefix = [prefix_length(self.seed, k, width, self.prefix_fraction) for k, _ in examples]
        return {"input_ids": ids, "prefix_len": torch.tensor(prefix)}

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        ids, prefix = batch["input_ids"], batch["prefix_len"]  # (B, T), (B,)
        mask = prefix_attention(self.model.config, prefix, ids.shape[1])
        hidden = self.encode({"input_ids": ids, "attention_mask": mask}).last_hidden_state
        target = ids[:, 1:]  # position t predicts token t + 1
        scored = torch.arange(1, ids.shape[1], device=ids.device) >= prefix[:, None]  # (B, T-1)
        logits = self.model.cls(hidden[:, :-1][scored])  # (M, V): the non-prefix targets only
        loss = F.cross_entropy(logits.float(), target[scored])
        return StepOutput(
            loss,
            {"prefix_lm_loss": (loss, logits.shape[0])},
            {"next_token_acc": (logits, target[scored])},
        )
