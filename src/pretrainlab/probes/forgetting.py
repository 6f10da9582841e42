"""Forgetting monitor: the pretraining loss on held-out pretraining text, for an encoder
whose weights may have moved during fine-tuning."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from pretrainlab.config import pretrain_parts
from pretrainlab.data.datamodule import Indexed
from pretrainlab.pretrain import NSP_HEAD_FILE, prepare_run


class PretrainingLoss:
    """Built once per probe from the checkpoint's saved config; call with an encoder."""

    def __init__(self, run_dir: Path, max_batches: int = 4):
        cfg = OmegaConf.load(run_dir / "config.yaml")
        parts = pretrain_parts(cfg)
        data, self.objective = prepare_run(cfg, parts, with_train=False)
        self.objective.model = self.objective.hf_class.from_pretrained(str(run_dir / "hf"))
        head = run_dir / "hf" / NSP_HEAD_FILE
        if head.is_file():
            self.objective.nsp_head.load_state_dict(load_file(str(head)))
        val = Indexed(data.val)
        size = parts.batch_size
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
