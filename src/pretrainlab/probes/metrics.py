"""Probe metrics through torchmetrics (classification) and the SQuAD scorer (QA)."""

from __future__ import annotations

from torch import Tensor
from torchmetrics.functional.classification import (
    binary_matthews_corrcoef,
    multiclass_accuracy,
    multiclass_f1_score,
)


def classification_metrics(preds: Tensor, target: Tensor, num_labels: int) -> dict[str, float]:
    out = {
        "accuracy": multiclass_accuracy(preds, target, num_labels, average="micro").item(),
        "macro_f1": multiclass_f1_score(preds, target, num_labels, average="macro").item(),
    }
    if num_labels == 2:
        out["mcc"] = binary_matthews_corrcoef(preds, target).item()
    return out
