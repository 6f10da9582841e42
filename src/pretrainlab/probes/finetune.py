"""Full fine-tuning: every encoder weight trains with a small learning rate and warmup; the
dev score drives early stopping and the best weights are restored before testing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import get_linear_schedule_with_warmup

from pretrainlab.probes.features import pool


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
        if self.kind == "qa":
            return self.head(self.drop(hidden))  # (B, L, 2)
        return self.head(self.drop(pool(hidden, batch["attention_mask"], self.pooling)))  # (B, C)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch)
        if self.kind == "qa":
            loss = (
                F.cross_entropy(logits[..., 0], batch["start_positions"])
                + F.cross_entropy(logits[..., 1], batch["end_positions"])
            ) / 2
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

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total = self.trainer.estimated_stepping_batches
        sched = get_linear_schedule_with_warmup(opt, int(self.warmup_ratio * total), total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class KeepBest(pl.Callback):
    """Holds a CPU copy of the weights with the best dev score (no checkpoint files)."""

    def __init__(self) -> None:
        self.best, self.state = -float("inf"), None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        score = float(trainer.callback_metrics["dev/score"])
        if score > self.best:
            self.best = score
            self.state = copy.deepcopy({k: v.cpu() for k, v in module.state_dict().items()})


@torch.no_grad()
def predict(module: FinetuneModule, loader: Any) -> Tensor:
    module.eval()
    return torch.cat([module(batch).float().cpu() for batch in loader])
