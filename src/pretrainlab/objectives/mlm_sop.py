"""ALBERT's recipe: masked LM on consecutive segment pairs plus sentence-order prediction, as
a weighted sum (``weights: {mlm: w1, sop: w2}``), each term logged beside the total. It is
:class:`~pretrainlab.objectives.mlm_nsp.MLMNSPObjective` with the pair task swapped for
sentence order (:class:`~pretrainlab.objectives.sop.SentenceOrder`); the masking knobs are
MLM's (whole-word and span masking included)."""

from __future__ import annotations

from pretrainlab.objectives.mlm_nsp import MLMNSPObjective
from pretrainlab.objectives.sop import SentenceOrder


class MLMSOPObjective(SentenceOrder, MLMNSPObjective):
    name = "mlm_sop"
    loss_terms = ("mlm_loss", "sop_loss")
    accuracies = {"mlm_acc": "vocab", "sop_acc": 2}
