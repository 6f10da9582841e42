"""Task-kind specific pieces of a probe: inputs for fine-tuning, dev scoring, test metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.probes.features import row_loader, tokenize
from pretrainlab.probes.metrics import classification_metrics, subset_column
from pretrainlab.probes.qa import (
    QAFeatures,
    decode_spans,
    prepare_qa_features,
    squad_scores,
    subset_f1,
)
from pretrainlab.probes.tagging import align, entity_scores, word_tags


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
        return row_loader(len(self.ds), self.collate, batch_size, shuffle, seed)

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

        def collate(idx: list[int]) -> dict[str, Tensor]:
            return {
                "input_ids": f.input_ids[idx],
                "attention_mask": f.attention_mask[idx],
                "token_type_ids": f.token_type_ids[idx],
                "start_positions": f.start_positions[idx],
                "end_positions": f.end_positions[idx],
            }

        return row_loader(len(f.input_ids), collate, batch_size, shuffle, seed)

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


class TaggingInputs(ClassificationInputs):
    """Rows of a tagging split, aligned once (:func:`~pretrainlab.probes.tagging.align`: one
    padded length for the whole split); outputs are (N, L, num_labels) logits."""

    def __init__(
        self, ds: datasets.Dataset, task: ProbeTask, tokenizer: Any, max_length: int, segments: bool
    ):
        self.ds, self.names = ds, task.label_names
        self.inputs, self.labels = align(ds, tokenizer, max_length)  # (N, L) each
        self.lengths = [len(t) for t in ds["tokens"]]
        self.gold = [[self.names[i] for i in tags] for tags in ds["tags"]]
        self.collate = lambda idx: {
            **{k: v[idx] for k, v in self.inputs.items()},
            "labels": self.labels[idx],
        }

    def score(self, outputs: Tensor) -> float:
        return self.metrics(outputs)["f1"]

    def metrics(self, outputs: Tensor) -> dict[str, float]:
        return self.scores(outputs.argmax(-1))

    def scores(self, predicted: Tensor) -> dict[str, float]:
        """Entity scores (:func:`~pretrainlab.probes.tagging.entity_scores`) of label ids
        (N, L), per subset where the split has ``subset`` and ``target`` columns."""
        cols = self.ds.column_names
        subsets = self.ds["subset"] if "subset" in cols and "target" in cols else None
        targets = self.ds["target"] if subsets is not None else None
        predictions = word_tags(predicted, self.labels, self.lengths, self.names)
        return entity_scores(self.gold, predictions, subsets, targets)


def make_inputs(task: ProbeTask) -> Callable[..., ClassificationInputs | QAInputs | TaggingInputs]:
    return {"qa": QAInputs, "tagging": TaggingInputs}.get(task.kind, ClassificationInputs)
