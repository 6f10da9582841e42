"""Masked language modelling (BERT): mask ``mask_rate`` of tokens with 80/10/10 replacement,
predict the originals. The vocabulary projection runs only at masked positions.

Masks are dynamic (RoBERTa): a training example is masked anew in each epoch, from a
generator keyed by (seed, epoch, index); ``dynamic_masking=False`` keys by (seed, index)
only, BERT's static masks. Keys without an epoch (validation, probes, a streamed corpus) are
masked by (seed, index) too: validation masks never change between evaluations."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BertForMaskedLM, RoFormerForMaskedLM

from pretrainlab import seeds
from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.knobs import Knob
from pretrainlab.objectives.masking import SCHEME_KNOBS, MaskScheme, continuation_table
from pretrainlab.objectives.scoring import CandidateScorer, masked_lm_scores

IGNORE = -100
TOKENS = MaskScheme()  # BERT's: each token on its own, one rate throughout


def example_generator(seed: int, key: ExampleKey, dynamic: bool = True) -> torch.Generator:
    """The example's masking stream (:func:`pretrainlab.seeds.masking`)."""
    return seeds.masking(seed, key, dynamic)


def mask_examples(
    input_ids: Tensor,
    keys: list[ExampleKey],
    seed: int,
    mask_rate: float,
    special_ids: dict[str, int],
    vocab_size: int,
    maskable: Tensor | None = None,
    dynamic: bool = True,
    scheme: MaskScheme = TOKENS,
) -> tuple[Tensor, Tensor]:
    """Mask each row with its own example-keyed generator, so an example's mask (in a given
    epoch) is the same whatever batch, batch size, worker, DDP rank or resumed position it
    lands in. ``scheme``: which positions (and the rate's schedule, also by key)."""
    rows = [
        mask_tokens(
            input_ids[r : r + 1],
            scheme.rate(mask_rate, key),
            special_ids,
            vocab_size,
            example_generator(seed, key, dynamic),
            None if maskable is None else maskable[r : r + 1],
            scheme,
        )
        for r, key in enumerate(keys)
    ]
    return torch.cat([x for x, _ in rows]), torch.cat([y for _, y in rows])


def mask_tokens(
    input_ids: Tensor,
    mask_rate: float,
    special_ids: dict[str, int],
    vocab_size: int,
    generator: torch.Generator,
    maskable: Tensor | None = None,
    scheme: MaskScheme = TOKENS,
) -> tuple[Tensor, Tensor]:
    """BERT masking. Returns (inputs, labels); labels are ``-100`` where nothing is predicted.

    ``scheme`` selects the positions (each token alone by default: :mod:`.masking`). Of the
    selected positions 80% become [MASK], 10% a random token, 10% stay unchanged. Special
    tokens ([CLS], [SEP], [PAD]) are never selected.
    """
    if maskable is None:
        maskable = torch.ones_like(input_ids, dtype=torch.bool)
    for key in ("cls", "sep", "pad"):
        maskable = maskable & (input_ids != special_ids[key])
    selected = scheme.select(input_ids, maskable, mask_rate, generator)
    labels = torch.where(selected, input_ids, IGNORE)
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (action < 0.8)
    to_random = selected & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(len(special_ids), vocab_size, input_ids.shape, generator=generator)
    inputs = torch.where(to_mask, special_ids["mask"], input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


def check_dynamic_masking(dynamic_masking: Any) -> None:
    if not isinstance(dynamic_masking, bool):
        raise PretrainlabError(
            f"objective.dynamic_masking={dynamic_masking!r} is not valid: expected true (new "
            "masks each epoch, RoBERTa) or false (the same masks every epoch, BERT)."
        )


def masked_lm_loss(model: Any, hidden: Tensor, labels: Tensor) -> StepOutput:
    """Cross-entropy at masked positions only: gather them, then project to the vocabulary."""
    selected = labels != IGNORE  # (B, T)
    logits = model.cls.predictions(hidden[selected])  # (M, V): M masked tokens only
    target = labels[selected]  # (M,)
    loss = F.cross_entropy(logits.float(), target)
    return StepOutput(loss, {"mlm_loss": (loss, target.numel())}, {"mlm_acc": (logits, target)})


class MaskedTokens:
    """What MLM and every objective with a masked-LM term share: the masking knobs and their
    rules, the masked share of positions the vocabulary head projects, and fill-in-the-blank
    scoring with [MASK]s. A mixin before :class:`PretrainObjective` in the bases; the
    scheme's knobs (``masking``, ``span_p``, ...) are :mod:`.masking`'s."""

    knobs = {
        "mask_rate": Knob(0.15, " (BERT uses 0.15)"),
        "dynamic_masking": Knob(True, rule=check_dynamic_masking),
        **SCHEME_KNOBS,
    }
    seed: int
    special_ids: dict[str, int]
    vocab_size: int
    tokenizer: Any
    mask_rate: float
    dynamic_masking: bool
    masking: str

    def __init__(self, **args: Any):
        super().__init__(**args)
        words = self.masking != "token" and self.tokenizer is not None
        self.scheme = MaskScheme(
            **{name: getattr(self, name) for name in SCHEME_KNOBS},
            continuation=continuation_table(self.tokenizer, self.vocab_size) if words else None,
        )

    @classmethod
    def predicted_share(
        cls, mask_rate: float = 0.15, mask_rate_end: float | None = None, **_: Any
    ) -> float:
        """The masked share; under a schedule the mean of its two ends (the share of a run
        that spends as long at the start as at the end of it)."""
        return mask_rate if mask_rate_end is None else (mask_rate + mask_rate_end) / 2

    @classmethod
    def candidate_scorer(cls) -> CandidateScorer:
        return masked_lm_scores  # the blank as [MASK]s, context on both sides

    def mask(
        self, ids: Tensor, examples: list[tuple[ExampleKey, Any]], maskable: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(inputs, labels)`` of the batch ``ids`` (B, T), each row masked by its key."""
        keys = [key for key, _ in examples]
        return mask_examples(
            ids, keys, self.seed, self.mask_rate, self.special_ids, self.vocab_size,
            maskable=maskable, dynamic=self.dynamic_masking, scheme=self.scheme,
        )  # fmt: skip


class MLMObjective(MaskedTokens, PretrainObjective):
    name = "mlm"
    hf_classes = {"bert": BertForMaskedLM, "roformer": RoFormerForMaskedLM}
    loss_terms = ("mlm_loss",)
    ppl_term = "mlm_loss"
    accuracies = {"mlm_acc": "vocab"}

    def collate(self, examples: list[tuple[ExampleKey, Tensor]]) -> dict[str, Tensor]:
        inputs, labels = self.mask(torch.stack([x for _, x in examples]), examples)  # (B, T)
        return {"input_ids": inputs, "labels": labels}

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        hidden = self.encode(batch).last_hidden_state  # (B, T, H)
        return masked_lm_loss(self.model, hidden, batch["labels"])
