"""Forgetting monitor: the pretraining loss on held-out pretraining text, for an encoder
whose weights may have moved during fine-tuning."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from pretrainlab.data.datamodule import Indexed
from pretrainlab.recipe import Recipe


class PretrainingLoss:
    """Built once per probe from the checkpoint's saved config; call with an encoder."""

    def __init__(self, run_dir: Path, max_batches: int = 4):
        cfg = OmegaConf.load(run_dir / "config.yaml")
        recipe = Recipe.from_cfg(cfg)
        data, self.objective = recipe.prepare(with_train=False)
        self.objective.load(run_dir / "hf")
        val = Indexed(data.val)
        size = recipe.batch_size
        self.batches = [
            self.objective.collate([val[j] for j in range(i, min(i + size, len(val)))])
            for i in range(0, min(len(val), size * max_batches), size)
        ]

    @torch.no_grad()
    def __call__(self, encoder: torch.nn.Module) -> float:
        self.objective.model.base_model.load_state_dict(encoder.state_dict(), strict=False)
        self.objective.eval()
        losses = [self.objective.compute_loss(b).loss.item() for b in self.batches]
        return sum(losses) / len(losses)
