"""Probe metrics through torchmetrics (classification) and the SQuAD scorer (QA)."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch
from torch import Tensor
from torchmetrics.functional.classification import (
    binary_matthews_corrcoef,
    multiclass_accuracy,
    multiclass_f1_score,
)


def classification_metrics(
    preds: Tensor, target: Tensor, num_labels: int, subsets: Sequence[str] | None = None
) -> dict[str, float]:
    """Accuracy, macro-F1 (and MCC for two labels); with ``subsets`` (one name per row, a
    task's ``subset`` column), also ``accuracy_<name>`` on the rows of each subset."""
    out = {
        "accuracy": multiclass_accuracy(preds, target, num_labels, average="micro").item(),
        "macro_f1": multiclass_f1_score(preds, target, num_labels, average="macro").item(),
    }
    if num_labels == 2:
        out["mcc"] = binary_matthews_corrcoef(preds, target).item()
    for name in sorted(set(subsets or ())):
        rows = torch.tensor([s == name for s in subsets])
        out[f"accuracy_{name}"] = (preds[rows] == target[rows]).float().mean().item()
    return out


def subset_column(ds: datasets.Dataset) -> list[str] | None:
    """The split's ``subset`` column (rows grouped for separate accuracies), if it has one."""
    return ds["subset"] if "subset" in ds.column_names else None
