"""How a combination objective (MLM + NSP, MLM + contrastive, ...) weighs its loss terms:
``objective.weighting``.

- ``fixed``: ``sum_i weights[i] * L_i`` with the config's ``weights`` (today's rule).
- ``uncertainty`` (Kendall et al. 2018): a learned log-variance ``s_i`` per term (starting
  at 0), trained by the run's optimizer with the model; the loss is ``sum_i exp(-s_i) L_i +
  s_i``, the form used for classification-like losses (their softmax likelihood with the
  factor 1/2 dropped, as common implementations do). Each weight ``exp(-s_i)`` settles where
  its gradient ``1 - exp(-s_i) L_i`` vanishes: at ``1 / L_i``.
- ``gradnorm`` (Chen et al. 2018): weights ``w_i`` (starting at 1) trained so each term's
  gradient norm on the last shared layer's weights W (the last encoder layer's feed-forward
  output matrix), ``G_i = ||grad_W w_i L_i||``, moves towards ``mean(G) * r_i ** alpha``,
  where ``r_i`` is the term's loss ratio ``L_i / L_i(0)`` over the mean of those ratios (a
  term that trains slower gets more weight; ``gradnorm_alpha``, the paper's 1.5 by
  default, sets how strongly). The weights' gradient is that of ``sum_i |G_i - target_i|``
  with the target held constant, ``sign(G_i - target_i) ||grad_W L_i||``; the run's optimizer
  applies it, and before each step the weights are renormalised to sum to the number of terms.
  The model's gradient comes from ``sum_i w_i L_i`` with the weights held constant.

Logged on the steps Lightning logs: ``train/weight_<term>`` (the weight of each term) and
``train/gradnorm_<term>`` (``||grad_W w_i L_i||``, the norm of the gradient that term puts on
W as weighted in the step), so a term that dominates the update shows on the dashboard.
``weights`` applies to ``fixed``; the adaptive modes start every term at weight 1. A term's
weight is named as its loss term without ``_loss``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor

from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.base import StepOutput
from pretrainlab.objectives.knobs import Knob

WEIGHTINGS = ("fixed", "uncertainty", "gradnorm")


def check_weights(weights: Any, pair: str) -> dict[str, float]:
    """The one rule for ``objective.weights`` of the terms ``mlm`` and ``pair``: the weights
    as floats (both 1.0 when ``weights`` is None)."""
    if weights is None:
        weights = {"mlm": 1.0, pair: 1.0}
    elif OmegaConf.is_config(weights):
        weights = OmegaConf.to_container(weights)
    ok = (
        isinstance(weights, Mapping)
        and set(weights) == {"mlm", pair}
        and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
            for v in weights.values()
        )
        and sum(weights.values()) > 0
    )
    if not ok:
        raise PretrainlabError(
            f"objective.weights={weights!r} is not valid: expected {{mlm: w1, {pair}: w2}} with "
            f"non-negative numbers, not both zero (BERT uses mlm: 1.0, {pair}: 1.0)."
        )
    return {k: float(v) for k, v in weights.items()}


class TermWeights(Knob):
    """``objective.weights``: term -> fixed weight, over the objective's loss terms (MLM's
    and its second one)."""

    def check(self, owner: type, name: str, value: Any) -> dict[str, float]:
        return check_weights(value, owner.loss_terms[1].removesuffix("_loss"))


def task_grad_norms(losses: list[Tensor], weight: Tensor) -> Tensor:
    """``||grad_weight L_i||`` for each loss (0 for one that does not reach ``weight``); the
    graph is kept for the step's own backward."""
    norms = []
    for loss in losses:
        (grad,) = torch.autograd.grad(loss, weight, retain_graph=True, allow_unused=True)
        norms.append(torch.zeros((), device=weight.device) if grad is None else grad.norm())
    return torch.stack(norms).detach()


class LossWeights(torch.nn.Module):
    """The weights of ``terms`` under one mode, and their sum of the losses."""

    def __init__(
        self, terms: tuple[str, ...], weighting: str, fixed: dict[str, float], alpha: float
    ):
        super().__init__()
        self.terms, self.weighting, self.alpha = terms, weighting, alpha
        self.fixed = [fixed[t] for t in terms]
        n = len(terms)
        if weighting == "uncertainty":
            self.log_var = torch.nn.Parameter(torch.zeros(n))
        elif weighting == "gradnorm":
            self.w = torch.nn.Parameter(torch.ones(n))
            self.register_buffer("initial", torch.full((n,), math.nan))  # L_i(0)

    def current(self) -> Tensor:
        """The weight of each term now (detached)."""
        if self.weighting == "uncertainty":
            return torch.exp(-self.log_var).detach()
        if self.weighting == "gradnorm":
            return (len(self.terms) * self.w / self.w.sum()).detach()
        return torch.tensor(self.fixed)

    def forward(self, losses: list[Tensor], norms: Tensor | None = None) -> Tensor:
        """The total loss; ``norms`` (``||grad_W L_i||``, training only) drive GradNorm."""
        if self.weighting == "uncertainty":
            return sum(
                torch.exp(-s) * loss + s for s, loss in zip(self.log_var, losses, strict=True)
            )
        if self.weighting == "gradnorm":
            return self._gradnorm(losses, norms)
        total = self.fixed[0] * losses[0]
        for w, loss in zip(self.fixed[1:], losses[1:], strict=True):
            total = total + w * loss
        return total

    def _gradnorm(self, losses: list[Tensor], norms: Tensor | None) -> Tensor:
        if norms is None:  # validation: the weights as they are
            return sum(w * loss for w, loss in zip(self.current(), losses, strict=True))
        with torch.no_grad():
            self.w.mul_(len(self.terms) / self.w.sum())  # renormalised after the last update
            value = torch.stack([loss.detach().float() for loss in losses])
            if torch.isnan(self.initial).any():
                self.initial.copy_(value)
            ratio = value / self.initial
            target = (self.w * norms).mean() * (ratio / ratio.mean()) ** self.alpha
        balance = (self.w * norms - target).abs().sum()
        weighted = sum(w * loss for w, loss in zip(self.w.detach(), losses, strict=True))
        return weighted + (balance - balance.detach())  # adds the weights' gradient, not value


class WeightedTerms:
    """For objectives whose loss sums an MLM term and a second one (MLM + NSP, MLM + SOP, MLM
    + contrastive): the knobs ``weighting``, ``gradnorm_alpha`` and ``weights``,
    :class:`LossWeights` as ``self.loss_weights`` over the terms of ``self.weights``, the total
    (:meth:`combined`) and its logging. A mixin before :class:`PretrainObjective` in the
    bases."""

    knobs = {
        "weighting": Knob(
            "fixed",
            " (fixed: the config's weights; uncertainty: Kendall et al. 2018's learned "
            "log-variances; gradnorm: Chen et al. 2018's gradient balancing)",
            choices=WEIGHTINGS,
        ),
        "gradnorm_alpha": Knob(1.5, " (GradNorm's paper uses 1.5)"),
        "weights": TermWeights(),
    }
    model: Any
    training: bool
    _trainer: Any
    weighting: str
    gradnorm_alpha: float
    weights: dict[str, float]

    def __init__(self, **args: Any):
        super().__init__(**args)
        self.loss_weights = LossWeights(
            tuple(self.weights), self.weighting, self.weights, self.gradnorm_alpha
        )

    def shared_weight(self) -> Tensor:
        """W: the last shared layer's weights (the last encoder layer's feed-forward output)."""
        return self.model.base_model.encoder.layer[-1].output.dense.weight

    def _logging_step(self) -> bool:
        trainer = self._trainer
        return trainer is not None and (trainer.global_step + 1) % trainer.log_every_n_steps == 0

    def weighted_loss(self, losses: dict[str, Tensor]) -> Tensor:
        """The total of ``losses`` (term -> loss, in the weights' order) under the weighting;
        per-term weights and gradient norms logged on logging steps of training."""
        values = [losses[t] for t in self.loss_weights.terms]
        training = self.training and torch.is_grad_enabled()
        adaptive = self.loss_weights.weighting == "gradnorm"
        norms = None
        if training and (adaptive or self._logging_step()):
            norms = task_grad_norms(values, self.shared_weight())
        total = self.loss_weights(values, norms if adaptive else None)
        if norms is not None and self._trainer is not None:
            weights = self.loss_weights.current().to(norms.device)
            for term, w, g in zip(self.loss_weights.terms, weights, norms, strict=True):
                self.log(f"train/weight_{term}", w, on_step=True, on_epoch=False)
                self.log(f"train/gradnorm_{term}", w * g, on_step=True, on_epoch=False)
        return total

    def combined(self, parts: dict[str, StepOutput]) -> StepOutput:
        """The weighted total of ``parts`` (term -> that term's output), with every part's
        logged terms and accuracies."""
        loss = self.weighted_loss({term: part.loss for term, part in parts.items()})
        terms = {k: v for part in parts.values() for k, v in part.terms.items()}
        accuracy = {k: v for part in parts.values() for k, v in part.accuracy.items()}
        return StepOutput(loss, terms, accuracy)
