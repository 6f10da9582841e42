"""Task-kind specific pieces of a probe: inputs for fine-tuning, dev scoring, test metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.probes.features import tokenize
from pretrainlab.probes.metrics import classification_metrics, subset_column
from pretrainlab.probes.qa import (
    QAFeatures,
    decode_spans,
    prepare_qa_features,
    squad_scores,
    subset_f1,
)


class ClassificationInputs:
    """Rows of a classification / pair split, tokenised per batch."""

    def __init__(
        self, ds: datasets.Dataset, task: ProbeTask, tokenizer: Any, max_length: int, segments: bool
    ):
        self.ds, self.task = ds, task
        self.labels = torch.tensor(ds["label"])
        self.collate = lambda idx: {
            **tokenize(ds[idx], tokenizer, max_length, segments),
            "labels": self.labels[idx],
        }

    def loader(self, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
        g = torch.Generator().manual_seed(seed)
        return DataLoader(
            range(len(self.ds)),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=g,
            collate_fn=self.collate,
        )

    def score(self, outputs: Tensor) -> float:
        return (outputs.argmax(-1) == self.labels).float().mean().item()

    def metrics(self, outputs: Tensor) -> dict[str, float]:
        return classification_metrics(
            outputs.argmax(-1), self.labels, self.task.num_labels, subset_column(self.ds)
        )


class QAInputs:
    """Windows of a QA split; outputs are (W, L, 2) start/end logits."""

    def __init__(
        self,
        ds: datasets.Dataset,
        task: ProbeTask,
        tokenizer: Any,
        max_length: int,
        segments: bool,
        stride: int = 32,
    ):
        self.ds = ds
        self.features: QAFeatures = prepare_qa_features(ds, tokenizer, max_length, stride, segments)
        self.contexts = ds["context"]
        self.references = [a["text"] for a in ds["answers"]]

    def loader(self, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
        f = self.features
        g = torch.Generator().manual_seed(seed)

        def collate(idx: list[int]) -> dict[str, Tensor]:
            return {
                "input_ids": f.input_ids[idx],
                "attention_mask": f.attention_mask[idx],
                "token_type_ids": f.token_type_ids[idx],
                "start_positions": f.start_positions[idx],
                "end_positions": f.end_positions[idx],
            }

        return DataLoader(
            range(len(f.input_ids)),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=g,
            collate_fn=collate,
        )

    def predictions(self, outputs: Tensor) -> list[str]:
        return decode_spans(outputs[..., 0], outputs[..., 1], self.features, self.contexts)

    def score(self, outputs: Tensor) -> float:
        return squad_scores(self.predictions(outputs), self.references)["f1"]

    def metrics(self, outputs: Tensor) -> dict[str, float]:
        """EM/F1, plus F1 split by ``needs_right_context`` where the task marks it (answers
        whose extent only words to their right fix: where causal encoders should lose) and
        ``f1_<subset>`` per value of a ``subset`` column."""
        preds = self.predictions(outputs)
        out = squad_scores(preds, self.references)
        out.update(subset_f1(preds, self.references, subset_column(self.ds)))
        if "needs_right_context" in self.ds.column_names:
            flags = self.ds["needs_right_context"]
            for name, want in (("f1_right_context", True), ("f1_other", False)):
                idx = [i for i, f in enumerate(flags) if bool(f) == want]
                if idx:
                    sub = squad_scores([preds[i] for i in idx], [self.references[i] for i in idx])
                    out[name] = sub["f1"]
        return out


def make_inputs(task: ProbeTask) -> Callable[..., ClassificationInputs | QAInputs]:
    return QAInputs if task.kind == "qa" else ClassificationInputs
