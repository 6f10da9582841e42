"""Masked language modelling (BERT): mask ``mask_rate`` of tokens with 80/10/10 replacement,
predict the originals. The vocabulary projection runs only at masked positions."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BertForMaskedLM, RoFormerForMaskedLM

from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.base import PretrainObjective, StepOutput

IGNORE = -100


def example_generator(seed: int, indices: list[int]) -> torch.Generator:
    """A generator keyed by the examples in the batch, not by when the batch is drawn."""
    return torch.Generator().manual_seed(hash((seed, *indices)) & 0x7FFF_FFFF_FFFF_FFFF)


def mask_examples(
    input_ids: Tensor,
    indices: list[int],
    seed: int,
    mask_rate: float,
    special_ids: dict[str, int],
    vocab_size: int,
    maskable: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Mask each row with its own example-keyed generator, so an example's mask is the same
    whatever batch, batch size, worker or DDP rank it lands in."""
    rows = [
        mask_tokens(
            input_ids[r : r + 1],
            mask_rate,
            special_ids,
            vocab_size,
            example_generator(seed, [i]),
            None if maskable is None else maskable[r : r + 1],
        )
        for r, i in enumerate(indices)
    ]
    return torch.cat([x for x, _ in rows]), torch.cat([y for _, y in rows])


def mask_tokens(
    input_ids: Tensor,
    mask_rate: float,
    special_ids: dict[str, int],
    vocab_size: int,
    generator: torch.Generator,
    maskable: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT masking. Returns (inputs, labels); labels are ``-100`` where nothing is predicted.

    Of the selected positions 80% become [MASK], 10% a random token, 10% stay unchanged.
    Special tokens ([CLS], [SEP], [PAD]) are never selected.
    """
    if maskable is None:
        maskable = torch.ones_like(input_ids, dtype=torch.bool)
    for key in ("cls", "sep", "pad"):
        maskable = maskable & (input_ids != special_ids[key])
    draw = torch.rand(input_ids.shape, generator=generator)
    selected = (draw < mask_rate) & maskable
    labels = torch.where(selected, input_ids, IGNORE)
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (action < 0.8)
    to_random = selected & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(len(special_ids), vocab_size, input_ids.shape, generator=generator)
    inputs = torch.where(to_mask, special_ids["mask"], input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


def check_mask_rate(mask_rate: Any) -> None:
    if (
        not isinstance(mask_rate, (int, float))
        or isinstance(mask_rate, bool)
        or not 0 < mask_rate < 1
    ):
        raise PretrainlabError(
            f"objective.mask_rate={mask_rate!r} is not valid: expected a number strictly between "
            "0 and 1 (BERT uses 0.15)."
        )


def masked_lm_loss(model: Any, hidden: Tensor, labels: Tensor) -> StepOutput:
    """Cross-entropy at masked positions only: gather them, then project to the vocabulary."""
    selected = labels != IGNORE  # (B, T)
    logits = model.cls.predictions(hidden[selected])  # (M, V): M masked tokens only
    target = labels[selected]  # (M,)
    loss = F.cross_entropy(logits.float(), target)
    return StepOutput(loss, {"mlm_loss": (loss, target.numel())}, {"mlm_acc": (logits, target)})


class MLMObjective(PretrainObjective):
    name = "mlm"
    hf_classes = {"bert": BertForMaskedLM, "roformer": RoFormerForMaskedLM}
    loss_terms = ("mlm_loss",)
    ppl_term = "mlm_loss"
    accuracies = {"mlm_acc": "vocab"}

    def __init__(self, *, mask_rate: float = 0.15, **shared: Any):
        check_mask_rate(mask_rate)
        self.mask_rate = mask_rate
        super().__init__(**shared)

    @classmethod
    def validate(cls, mask_rate: float = 0.15, **_: Any) -> None:
        check_mask_rate(mask_rate)

    def objective_hparams(self) -> dict[str, Any]:
        return {"mask_rate": self.mask_rate}

    def predicted_fraction(self) -> float:
        return self.mask_rate

    def collate(self, examples: list[tuple[int, Tensor]]) -> dict[str, Tensor]:
        ids = torch.stack([x for _, x in examples])  # (B, T)
        inputs, labels = mask_examples(
            ids,
            [i for i, _ in examples],
            self.seed,
            self.mask_rate,
            self.special_ids,
            self.vocab_size,
        )
        return {"input_ids": inputs, "labels": labels}

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        hidden = self.encode(batch).last_hidden_state  # (B, T, H)
        return masked_lm_loss(self.model, hidden, batch["labels"])
