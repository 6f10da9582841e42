"""BERT's original recipe: masked LM on segment pairs plus next-sentence prediction, as a
weighted sum. Each term is logged beside the total."""

from __future__ import annotations

from torch import Tensor
from transformers import BertForPreTraining, RoFormerForMaskedLM

from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.mlm import MaskedTokens, masked_lm_loss
from pretrainlab.objectives.nsp import NSPHeads
from pretrainlab.objectives.weighting import WeightedTerms


class MLMNSPObjective(NSPHeads, WeightedTerms, MaskedTokens, PretrainObjective):
    """The knobs: ``weights`` and ``weighting`` in :class:`WeightedTerms`; the masking knobs
    (``mask_rate``, ...) in :class:`MaskedTokens`."""

    name = "mlm_nsp"
    hf_classes = {"bert": BertForPreTraining, "roformer": RoFormerForMaskedLM}
    loss_terms = ("mlm_loss", "nsp_loss")
    ppl_term = "mlm_loss"
    accuracies = {"mlm_acc": "vocab", "nsp_acc": 2}

    def collate(self, examples: list[tuple[ExampleKey, dict]]) -> dict[str, Tensor]:
        batch = self.pair_batch(examples)
        maskable = batch["attention_mask"].bool()
        batch["input_ids"], batch["labels"] = self.mask(batch["input_ids"], examples, maskable)
        return batch

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        out = self.encode(batch)
        mlm = masked_lm_loss(self.model, out.last_hidden_state, batch["labels"])
        return self.combined({"mlm": mlm, self.pair_task: self.pair_loss(out, batch)})
