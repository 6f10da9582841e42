"""Linear probes on frozen features: a softmax classifier (or a start/end span head for QA)
trained on cached representations, with the dev score choosing the epoch and, from a grid,
the weight decay (:func:`tune_classifier`, :func:`tune_span_head`).

Hand-written rather than scikit-learn: it runs on the same device/dtype as the features,
handles the token-level QA head the same way, and is bit-reproducible from the seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pretrainlab.probes.tuning import tune

# The defaults of every linear head fitted on pooled features (the accuracy probe, the MDL
# probe's blocks); the probe's own values come from probe.linear (conf/probe/settings.yaml).
EPOCHS = 300
LR = 0.01


def _standardiser(x: Tensor) -> Callable[[Tensor], Tensor]:
    flat = x.reshape(-1, x.size(-1)).float()
    # one row has no spread (std would be NaN): centre it only (the MDL probe's first blocks)
    std = flat.std(0) if len(flat) > 1 else torch.ones_like(flat[0])
    mean, std = flat.mean(0), std.clamp(min=1e-6)
    return lambda z: (z.float() - mean) / std


@dataclass(frozen=True)
class LinearClassifier:
    """A fitted softmax head with its training features' standardiser: labels for accuracy,
    log-probabilities for the MDL probe's code length (:mod:`pretrainlab.probes.mdl`)."""

    head: torch.nn.Linear
    scale: Callable[[Tensor], Tensor]

    def predict(self, x: Tensor) -> Tensor:
        """The most probable label of each row of ``x`` (N, H) -> (N,)."""
        return self.head(self.scale(x)).argmax(-1).detach()

    def log_probs(self, x: Tensor) -> Tensor:
        """Natural-log label probabilities (N, H) -> (N, num_labels)."""
        with torch.no_grad():
            return F.log_softmax(self.head(self.scale(x)).double(), -1)


@dataclass(frozen=True)
class Labelled:
    """The rows a classifier head is fitted on (``train_x`` (N, H), ``train_y`` (N,)) and
    chosen on (``dev_x``, ``dev_y``), with the label count."""

    train_x: Tensor
    train_y: Tensor
    dev_x: Tensor
    dev_y: Tensor
    num_labels: int

    def first(self, n: int) -> Labelled:
        """The first ``n`` training rows, the same dev rows."""
        return Labelled(self.train_x[:n], self.train_y[:n], self.dev_x, self.dev_y, self.num_labels)


def fit_classifier(
    data: Labelled,
    seed: int,
    epochs: int = EPOCHS,
    lr: float = LR,
    weight_decay: float = 0.01,
    select: str = "accuracy",
) -> LinearClassifier:
    """Full-batch AdamW on standardised features; returns the head of the epoch with the best
    dev accuracy (``.predict(x) -> labels``, ``.log_probs(x)``), or with ``select="loss"`` the
    lowest dev cross-entropy, the untrained head included: what a code length is measured in
    (a head chosen by accuracy can be confidently wrong, and code worse than uniform)."""
    scale = _standardiser(data.train_x)
    xs, dev, train_y, dev_y = scale(data.train_x), scale(data.dev_x), data.train_y, data.dev_y
    torch.manual_seed(seed)
    head = torch.nn.Linear(xs.size(1), data.num_labels)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)

    def dev_score() -> float:
        with torch.no_grad():
            logits = head(dev)
            if select == "loss":
                return -F.cross_entropy(logits, dev_y).item()
            return (logits.argmax(-1) == dev_y).float().mean().item()

    best, best_state = (
        (dev_score(), copy.deepcopy(head.state_dict())) if select == "loss" else (-1.0, None)
    )
    for epoch in range(epochs):
        loss = F.cross_entropy(head(xs), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 5 == 4 or epoch == epochs - 1:
            score = dev_score()
            if score > best:
                best, best_state = score, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    return LinearClassifier(head, scale)


def tune_classifier(
    data: Labelled,
    seed: int,
    weight_decays: Sequence[float],
    epochs: int = EPOCHS,
    lr: float = LR,
) -> tuple[Callable[[Tensor], Tensor], dict[str, Any]]:
    """:func:`fit_classifier` for each weight decay; the best dev accuracy (of its own best
    epoch) wins. Returns its ``predict`` and the ``tuning`` record (updates per value)."""

    def fit(weight_decay: float) -> tuple[float, Callable[[Tensor], Tensor]]:
        predict = fit_classifier(data, seed, epochs, lr, weight_decay).predict
        return (predict(data.dev_x) == data.dev_y).float().mean().item(), predict

    predict, record = tune("weight_decay", weight_decays, fit)
    return predict, {**record, "train_steps": epochs}  # full batch: one update an epoch


def tune_span_head(
    train_h: Tensor,
    starts: Tensor,
    ends: Tensor,
    score_dev: Callable,
    seed: int,
    weight_decays: Sequence[float],
    epochs: int = 12,
    lr: float = 3e-3,
    batch_size: int = 64,
) -> tuple[Callable[[Tensor], tuple[Tensor, Tensor]], dict[str, Any]]:
    """A linear start/end head on frozen token features (W, L, H) for each weight decay,
    minibatch AdamW; ``score_dev(predict)`` returns the dev F1 that keeps each value's best
    epoch and chooses the value. Returns ``predict(h) -> (start, end)`` and the ``tuning``
    record."""
    scale = _standardiser(train_h)

    def fit(weight_decay: float) -> tuple[float, Callable[[Tensor], tuple[Tensor, Tensor]]]:
        torch.manual_seed(seed)
        head = torch.nn.Linear(train_h.size(-1), 2)
        opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
        g = torch.Generator().manual_seed(seed)

        def predict(h: Tensor) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                logits = torch.cat([head(scale(h[i : i + 256])) for i in range(0, len(h), 256)])
            return logits[..., 0], logits[..., 1]  # (W, L) each

        best, best_state = -1.0, None
        for _ in range(epochs):
            for idx in torch.randperm(len(train_h), generator=g).split(batch_size):
                logits = head(scale(train_h[idx]))  # (b, L, 2)
                loss = (
                    F.cross_entropy(logits[..., 0], starts[idx])
                    + F.cross_entropy(logits[..., 1], ends[idx])
                ) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
            score = score_dev(predict)
            if score > best:
                best, best_state = score, copy.deepcopy(head.state_dict())
        head.load_state_dict(best_state)
        return score_dev(predict), predict

    predict, record = tune("weight_decay", weight_decays, fit)
    steps = epochs * -(-len(train_h) // batch_size)  # minibatch updates per value
    return predict, {**record, "train_steps": steps}
