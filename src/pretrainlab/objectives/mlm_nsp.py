"""BERT's original recipe: masked LM on segment pairs plus next-sentence prediction, as a
weighted sum. Each term is logged beside the total."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf
from torch import Tensor
from transformers import BertForPreTraining, RoFormerForMaskedLM

from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.mlm import MaskedTokens, masked_lm_loss
from pretrainlab.objectives.nsp import (
    NSPHeads,
    next_sentence_loss,
    next_sentence_parts,
    pad_pairs,
)


def check_weights(weights: Any) -> dict[str, float]:
    """The one rule for ``objective.weights`` (config validation calls it through
    :meth:`MLMNSPObjective.validate`)."""
    if weights is None:
        weights = {"mlm": 1.0, "nsp": 1.0}
    elif OmegaConf.is_config(weights):
        weights = OmegaConf.to_container(weights)
    ok = (
        isinstance(weights, Mapping)
        and set(weights) == {"mlm", "nsp"}
        and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
            for v in weights.values()
        )
        and sum(weights.values()) > 0
    )
    if not ok:
        raise PretrainlabError(
            f"objective.weights={weights!r} is not valid: expected {{mlm: w1, nsp: w2}} with "
            "non-negative numbers, not both zero (BERT uses mlm: 1.0, nsp: 1.0)."
        )
    return {k: float(v) for k, v in weights.items()}


class MLMNSPObjective(NSPHeads, MaskedTokens, PretrainObjective):
    name = "mlm_nsp"
    hf_classes = {"bert": BertForPreTraining, "roformer": RoFormerForMaskedLM}
    loss_terms = ("mlm_loss", "nsp_loss")
    ppl_term = "mlm_loss"
    accuracies = {"mlm_acc": "vocab", "nsp_acc": 2}

    def __init__(
        self,
        *,
        mask_rate: float = 0.15,
        weights: Any = None,
        dynamic_masking: bool = True,
        **shared: Any,
    ):
        self.validate(mask_rate=mask_rate, weights=weights, dynamic_masking=dynamic_masking)
        self.mask_rate, self.weights = mask_rate, check_weights(weights)
        self.dynamic_masking = dynamic_masking
        super().__init__(**shared)

    @classmethod
    def validate(
        cls, mask_rate: float = 0.15, weights: Any = None, dynamic_masking: bool = True, **_: Any
    ) -> None:
        super().validate(mask_rate=mask_rate, dynamic_masking=dynamic_masking)
        check_weights(weights)

    def objective_hparams(self) -> dict[str, Any]:
        return {
            "mask_rate": self.mask_rate,
            "weights": self.weights,
            "dynamic_masking": self.dynamic_masking,
        }

    def collate(self, examples: list[tuple[ExampleKey, dict]]) -> dict[str, Tensor]:
        batch = pad_pairs(examples, self.special_ids["pad"])
        maskable = batch["attention_mask"].bool()
        batch["input_ids"], batch["labels"] = self.mask(batch["input_ids"], examples, maskable)
        return batch

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        out = self.encode(batch)
        mlm = masked_lm_loss(self.model, out.last_hidden_state, batch["labels"])
        nsp = next_sentence_loss(*next_sentence_parts(self, out), batch["next_sentence_label"])
        loss = self.weights["mlm"] * mlm.loss + self.weights["nsp"] * nsp.loss
        return StepOutput(loss, {**mlm.terms, **nsp.terms}, {**mlm.accuracy, **nsp.accuracy})
