"""``probe.mode=linear`` for token tagging: a per-token softmax head on the frozen encoder's
features of each word's first sub-token, cached like every linear probe's features."""

from __future__ import annotations

from typing import Any

import torch

from pretrainlab.data.tasks.base import SPLITS, ProbeTask
from pretrainlab.probes.features import cached_features
from pretrainlab.probes.linear import Labelled, fit_classifier
from pretrainlab.probes.tagging import IGNORE, word_features
from pretrainlab.probes.tasks import TaggingInputs
from pretrainlab.probes.tuning import probe_grid, tune


def linear_tagging(
    cfg: Any, ckpt: Any, task: ProbeTask, rows: list[int], key: dict[str, Any]
) -> tuple[dict, dict, dict, dict]:
    """A per-token softmax head on frozen first-sub-token features, fitted as the linear
    classification head is (``probe.linear``: full-batch AdamW, dev token accuracy keeping the
    epoch), its weight decay chosen from ``probe.linear.weight_decay_grid`` by dev entity F1.
    The features are cached per checkpoint x task x window, like every linear probe's."""
    p = cfg.probe
    args = (task, ckpt.tokenizer, p.max_length, ckpt.uses_segments)
    inputs = {s: TaggingInputs(task.splits[s], *args) for s in SPLITS}
    feats = cached_features(
        cfg.paths.cache_dir,
        {**key, "kind": "tagging"},
        lambda: {s: word_features(ckpt.encoder, inp) for s, inp in inputs.items()},
    )
    labels = {s: inp.labels[inp.labels != IGNORE] for s, inp in inputs.items()}
    train_rows = torch.arange(len(inputs["train"].labels))[:, None].expand_as(
        inputs["train"].labels
    )[inputs["train"].labels != IGNORE]  # the sentence of each scored word
    keep = torch.isin(train_rows, torch.tensor(rows, dtype=torch.long))
    data = Labelled(
        feats["train"][keep], labels["train"][keep], feats["dev"], labels["dev"], task.num_labels
    )

    def scores(split: str, predict: Any) -> dict[str, float]:
        inp = inputs[split]
        full = torch.zeros_like(inp.labels)
        full[inp.labels != IGNORE] = predict(feats[split])
        return inp.scores(full)

    def fit(weight_decay: float) -> tuple[float, Any]:
        predict = fit_classifier(data, cfg.seed, p.linear.epochs, p.linear.lr, weight_decay).predict
        return scores("dev", predict)["f1"], predict

    predict, tuning = tune("weight_decay", probe_grid(p, "linear"), fit)
    tuning["train_steps"] = p.linear.epochs  # full batch: one update an epoch
    return scores("dev", predict), scores("test", predict), {}, tuning
