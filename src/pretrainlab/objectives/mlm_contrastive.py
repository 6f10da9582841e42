"""Masked LM plus SimCSE in one network: the masked batch is encoded twice with dropout
(:class:`~pretrainlab.objectives.contrastive.DropoutViews`); the MLM loss reads the first
view's masked positions, the contrastive loss the two views' pooled vectors (``pooling``:
[CLS], never masked, or the mean). The terms are summed under ``objective.weighting``
(:mod:`pretrainlab.objectives.weighting`); each is logged beside the total. The export is
the masked-LM model (fill-mask works)."""

from __future__ import annotations

from torch import Tensor

from pretrainlab.objectives.base import StepOutput
from pretrainlab.objectives.contrastive import DropoutViews
from pretrainlab.objectives.mlm import MLMObjective, masked_lm_loss
from pretrainlab.objectives.weighting import WeightedTerms

CONTRASTIVE = "contrastive"  # the contrastive term's name in weights and logs


class MLMContrastiveObjective(WeightedTerms, DropoutViews, MLMObjective):
    """MLM's model, masking and collation; the views, the contrastive term and the
    weighting added. The knobs: ``weights`` and ``weighting`` in :class:`WeightedTerms`, the
    contrastive knobs in :class:`DropoutViews`, the masking knobs in :class:`MaskedTokens`."""

    name = "mlm_contrastive"
    loss_terms = ("mlm_loss", "contrastive_loss")

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        first, second = self.views(batch)  # (B, T, H) each
        mlm = masked_lm_loss(self.model, first, batch["labels"])
        return self.combined({"mlm": mlm, CONTRASTIVE: self.contrastive_loss(first, second)})
