"""Full fine-tuning: every encoder weight trains with a small learning rate and warmup for a
fixed number of updates (no early stopping: every arm and every grid point gets the same
budget); dev is scored every few updates and the best weights are restored before testing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from pretrainlab.callbacks import StepProgressBar
from pretrainlab.models.encoder import pool
from pretrainlab.objectives.optim import OptimSpec, lr_schedule
from pretrainlab.probes.tagging import IGNORE


class FinetuneModule(pl.LightningModule):
    """Encoder + a linear head: pooled classification, or start/end span logits for QA."""

    def __init__(
        self,
        encoder: Any,
        kind: str,
        num_outputs: int,
        pooling: str,
        score_dev: Callable[[Tensor], float],
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.encoder, self.kind, self.pooling, self.score_dev = encoder, kind, pooling, score_dev
        self.head = torch.nn.Linear(encoder.config.hidden_size, 2 if kind == "qa" else num_outputs)
        self.drop = torch.nn.Dropout(dropout)
        self.lr, self.weight_decay, self.warmup_ratio = lr, weight_decay, warmup_ratio
        self._dev_outputs: list[Tensor] = []

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        hidden = self.encoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        ).last_hidden_state
        if self.kind in ("qa", "tagging"):
            return self.head(self.drop(hidden))  # (B, L, 2) span or (B, L, C) tag logits
        return self.head(self.drop(pool(hidden, batch["attention_mask"], self.pooling)))  # (B, C)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch)
        if self.kind == "qa":
            loss = (
                F.cross_entropy(logits[..., 0], batch["start_positions"])
                + F.cross_entropy(logits[..., 1], batch["end_positions"])
            ) / 2
        elif self.kind == "tagging":  # first sub-tokens only: the rest are labelled IGNORE
            loss = F.cross_entropy(
                logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE
            )
        else:
            loss = F.cross_entropy(logits, batch["labels"])
        self.log("probe/train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._dev_outputs.append(self(batch).float().cpu())

    def on_validation_epoch_end(self) -> None:
        score = self.score_dev(torch.cat(self._dev_outputs))
        self._dev_outputs.clear()
        self.log("dev/score", score, prog_bar=True)
        self.log("probe/lr", self.lr)  # which grid value's run this dev score belongs to

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total = self.trainer.estimated_stepping_batches
        # the pretraining schedule (one schedule in the project): linear decay after warmup
        linear = OptimSpec(schedule="linear", warmup_steps=int(self.warmup_ratio * total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule(linear, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class KeepBest(pl.Callback):
    """Holds a CPU copy of the weights with the best dev score (no checkpoint files), and has
    the weights after the last update scored too."""

    def __init__(self) -> None:
        self.best, self.state = -float("inf"), None

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True  # Lightning validates before a requested stop

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        score = float(trainer.callback_metrics["dev/score"])
        if score > self.best:
            self.best = score
            self.state = copy.deepcopy({k: v.cpu() for k, v in module.state_dict().items()})


@torch.no_grad()
def predict(module: FinetuneModule, loader: Any) -> Tensor:
    module.eval()
    return torch.cat([module(batch).float().cpu() for batch in loader])


def update_budget(max_steps: int, max_epochs: int | None, steps_per_epoch: int) -> int:
    """Updates per fine-tuning run: ``max_steps``, or fewer where ``max_epochs`` caps it. Either
    way it depends on the training set alone (its size; for QA, its windows), never on the
    encoder, so every arm and every learning rate gets the same."""
    return max_steps if max_epochs is None else min(max_steps, max_epochs * steps_per_epoch)


def fit_steps(
    module: FinetuneModule,
    train: Any,
    dev: Any,
    steps: int,
    eval_every: int,
    **trainer_args: Any,
) -> tuple[float, dict[str, Tensor]]:
    """Train exactly ``steps`` updates (epochs roll over), scoring dev every ``eval_every``
    updates and after the last; returns the best dev score and the weights that scored it."""
    keep = KeepBest()
    bar = [StepProgressBar()] if trainer_args.get("enable_progress_bar", True) else []
    trainer = pl.Trainer(
        max_steps=steps,
        max_epochs=-1,
        val_check_interval=eval_every,
        check_val_every_n_epoch=None,  # count updates across epochs, not batches of one
        callbacks=[keep, *bar],
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_args,
    )
    trainer.fit(module, train, dev)
    return keep.best, keep.state
