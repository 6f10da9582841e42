"""Unsupervised SimCSE (Gao et al. 2021): the batch is encoded twice, and dropout alone makes
the two views differ. Each input's [CLS] vector must pick its own second view among the
batch's (in-batch negatives): cross-entropy over cosine similarities / ``temperature``.

- Input: the packed blocks every block objective reads ([CLS] + seq_len-1 tokens of running
  text, crossing sentence and document boundaries), not single sentences.
- Pooling (``pooling``): the [CLS] token's last hidden state (``cls``, the default), without
  SimCSE's training-time MLP (the paper finds [CLS] with or without it close for unsupervised
  SimCSE), or the mean of the block's tokens (``mean``; the paper's average pooling). A
  probe's ``auto`` pooling reads what the loss trains (``probe_pooling``). ``mean`` is for
  an encoder continued from one whose [CLS] no loss trained (MLM, ``init_from``): measured on
  the zoo, 142 [CLS]-pooled SimCSE steps from ``mlm_90`` leave a zero-shot [CLS] cosine of
  0.013 while the same encoder's mean-pooled cosine is 0.412 (experiments/objective_zoo).
- Noise: ``dropout`` (SimCSE: 0.1) on the hidden states during pretraining, whatever the
  encoder config says (``encoder=tiny`` sets ``encoder.dropout=0.0`` for short MLM runs, and
  with no dropout the two views are the same and the loss has nothing to align). The export
  keeps the encoder's own dropout in its config, so probes fine-tune every objective alike.
  Validation runs without dropout (eval mode): one pass, identical views, so ``val/
  contrastive_loss`` measures only how well the batch's inputs are told apart.
- Negatives are the batch on each process (no gather across DDP ranks).
- Cost: both views pass through the encoder (one forward of 2B rows), twice the body FLOPs
  of a one-pass objective; the B x B similarities are negligible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.models.encoder import EncoderSpec, pool
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.body import BODIES, set_hidden_dropout, without_pooler
from pretrainlab.objectives.knobs import Knob


def info_nce(first: Tensor, second: Tensor, temperature: float) -> Tensor:
    """SimCSE's loss: row i of ``first`` (B, H) must pick row i of ``second`` among all of
    its rows by cosine similarity / ``temperature``."""
    sim = F.cosine_similarity(first.float().unsqueeze(1), second.float().unsqueeze(0), dim=-1)
    target = torch.arange(first.shape[0], device=first.device)
    return F.cross_entropy(sim / temperature, target)  # sim: (B, B)


class DropoutViews:
    """The contrastive knobs (``temperature``, ``dropout``), the dropout they force, and two
    views of a batch. A mixin before :class:`PretrainObjective` in the bases."""

    knobs = {
        "temperature": Knob(0.05, " (SimCSE uses 0.05)"),
        "dropout": Knob(
            0.1,
            " (SimCSE uses 0.1; with no dropout the two views of an input are the same and the "
            "contrastive loss has nothing to align)",
        ),
        "pooling": Knob(
            "cls",
            " (what the loss compares: the [CLS] vector, or the mean of the input's tokens)",
            choices=("cls", "mean"),
            optional=True,  # runs made before it resume
        ),
    }
    model: Any
    training: bool
    temperature: float
    dropout: float
    pooling: str

    @classmethod
    def extra_flops(cls, encoder: EncoderSpec, seq: int, vocab: int, **params: Any) -> list[float]:
        """The second pass of the body (the vocabulary head, if any, reads the first view)."""
        return [encoder.flops_per_token(seq, vocab, 0.0)]

    def add_heads(self, config: Any) -> None:
        super().add_heads(config)
        without_pooler(self.model)
        set_hidden_dropout(self.model, self.dropout)

    def load(self, folder: Path) -> None:
        super().load(folder)
        set_hidden_dropout(self.model, self.dropout)

    def views(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The last hidden states (B, T, H) of two passes over ``batch`` (one forward of 2B
        rows: independent dropout masks); in eval mode one pass, returned twice."""
        if not self.training:
            hidden = self.encode(batch).last_hidden_state
            return hidden, hidden
        doubled = {
            k: torch.cat([v, v])
            for k, v in batch.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        first, second = self.encode(doubled).last_hidden_state.chunk(2)
        return first, second

    @property
    def trains_cls(self) -> bool:  # type: ignore[override]
        """The loss reads the [CLS] vector unless it mean-pools (``probe.pooling=auto`` then
        reads the mean, what the loss trains)."""
        return self.pooling == "cls"

    def contrastive_loss(self, first: Tensor, second: Tensor) -> StepOutput:
        """InfoNCE between the two views' pooled vectors (``pooling``). Blocks are packed,
        with no padding: mean pooling averages every position."""
        real = first.new_ones(first.shape[:2])  # (B, T)
        a, b = pool(first, real, self.pooling), pool(second, real, self.pooling)
        loss = info_nce(a, b, self.temperature)
        return StepOutput(loss, {"contrastive_loss": (loss, first.shape[0])}, {})


class ContrastiveObjective(DropoutViews, PretrainObjective):
    name = "contrastive"
    hf_classes = BODIES
    loss_terms = ("contrastive_loss",)

    def collate(self, examples: list[tuple[ExampleKey, Tensor]]) -> dict[str, Tensor]:
        return {"input_ids": torch.stack([x for _, x in examples])}

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        return self.contrastive_loss(*self.views(batch))
