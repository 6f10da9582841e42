"""Which positions a masked-LM objective masks: the variants behind ``objective.masking`` and
the mask-rate schedule. :class:`~pretrainlab.objectives.mlm.MaskedTokens` takes the knobs
(:data:`SCHEME_KNOBS`); the 80/10/10 replacement of the selected positions is the same for every variant.

- ``token`` (BERT): each maskable token on its own, with probability ``mask_rate``.
- ``whole_word`` (BERT's whole-word masking): a word's pieces together (a WordPiece ``##``
  piece, or a byte-level BPE piece without the leading-space mark, belongs to the word before
  it), each word with probability ``mask_rate``: the masked share of tokens is ``mask_rate``
  in expectation.
- ``span`` (SpanBERT): spans of whole words, their lengths in words drawn from a geometric
  distribution (``span_p``) truncated to ``span_max`` words and renormalised (p = 0.2, at most
  10: mean 3.8 words), each starting at a random word, until ``round(mask_rate x maskable)``
  tokens (at least one) are selected; the span that reaches the budget is cut there.

Schedule: with ``mask_rate_end`` set, a training example of epoch ``e`` is masked at
``mask_rate + (mask_rate_end - mask_rate) * min(e / mask_rate_epochs, 1)``: the rate moves
linearly over the first ``mask_rate_epochs`` epochs, then stays at ``mask_rate_end``. It is a
function of the example's key (the epoch travels with it), not of the step, so masks stay
deterministic per (seed, epoch, index) whatever worker or rank draws them. Keys without an
epoch (validation, probes, a streamed corpus) use ``mask_rate_end``: the rate the schedule
arrives at, the same at every evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.knobs import Knob

MASKINGS = ("token", "whole_word", "span")
BYTE_LEVEL_SPACE = "\u0120"  # "Ġ": byte-level BPE's mark of a token that starts a word


def continuation_table(tokenizer: Any, vocab_size: int) -> Tensor:
    """(V,) bool: token id ``v`` continues the word of the token before it. WordPiece marks a
    continuation with its prefix (``##``); byte-level BPE marks a word's first piece with
    :data:`BYTE_LEVEL_SPACE` instead. Special tokens start words."""
    prefix = getattr(tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None)
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    special = set(tokenizer.all_special_tokens)
    return torch.tensor(
        [
            t not in special
            and (t.startswith(prefix) if prefix else not t.startswith(BYTE_LEVEL_SPACE))
            for t in tokens
        ]
    )


def word_starts(input_ids: Tensor, maskable: Tensor, continuation: Tensor) -> Tensor:
    """(B, T) bool: the position starts a word. A piece after a position that cannot be masked
    (a special token, the cut of a packed block) starts one too."""
    before = torch.ones_like(maskable)
    before[:, 1:] = maskable[:, :-1]
    return ~continuation[input_ids] | ~maskable | ~before


def span_length_pmf(span_p: float, span_max: int) -> Tensor:
    """P(length = k words), k = 1..span_max: geometric(span_p) truncated and renormalised."""
    k = torch.arange(span_max, dtype=torch.float64)
    pmf = span_p * (1 - span_p) ** k
    return pmf / pmf.sum()


@dataclass(frozen=True)
class MaskScheme:
    """How an objective selects positions to mask (see the module docstring)."""

    continuation: Tensor | None = None
    """:func:`continuation_table` of the run's tokenizer: needed by whole_word and span"""
    masking: str = "token"
    """token | whole_word | span"""
    span_p: float = 0.2
    """span: the geometric distribution's parameter of span lengths in words, in (0, 1]"""
    span_max: int = 10
    """span: the longest span in words (the distribution is truncated there)"""
    mask_rate_end: float | None = None
    """the schedule's end rate; None: no schedule"""
    mask_rate_epochs: int = 1
    """the epochs the schedule takes from ``mask_rate`` to ``mask_rate_end``"""

    def __post_init__(self) -> None:
        for name, knob in SCHEME_KNOBS.items():
            knob.check(MaskScheme, name, getattr(self, name))
        if self.masking != "token" and self.continuation is None:
            raise PretrainlabError(
                f"objective.masking={self.masking!r} needs the run's tokenizer to find where "
                "words start: build the objective with tokenizer=..., or use masking=token."
            )

    def rate(self, mask_rate: float, key: ExampleKey) -> float:
        """The mask rate of the example of ``key`` (the schedule)."""
        if self.mask_rate_end is None:
            return mask_rate
        if not isinstance(key, tuple):
            return self.mask_rate_end
        progress = min(key[0] / self.mask_rate_epochs, 1.0)
        return mask_rate + (self.mask_rate_end - mask_rate) * progress

    def select(
        self, input_ids: Tensor, maskable: Tensor, rate: float, generator: torch.Generator
    ) -> Tensor:
        """(B, T) bool: the positions to predict (B = 1 from :func:`mlm.mask_examples`)."""
        if self.masking == "token":
            return (torch.rand(input_ids.shape, generator=generator) < rate) & maskable
        starts = word_starts(input_ids, maskable, self.continuation)
        if self.masking == "whole_word":
            draw = torch.rand(input_ids.shape, generator=generator)
            pos = torch.arange(input_ids.shape[-1]).expand_as(input_ids)
            first = torch.cummax(torch.where(starts, pos, 0), dim=-1).values  # the word's start
            return (draw.gather(-1, first) < rate) & maskable
        return torch.stack(
            [self._spans(s, m, rate, generator) for s, m in zip(starts, maskable, strict=True)]
        )

    def _spans(
        self, starts: Tensor, maskable: Tensor, rate: float, generator: torch.Generator
    ) -> Tensor:
        """One row's SpanBERT selection over its maskable positions."""
        where = maskable.nonzero().flatten()
        selected = torch.zeros_like(maskable)
        if len(where) == 0:
            return selected
        budget = max(1, round(rate * len(where)))
        word = (torch.cumsum(starts[where].long(), 0) - 1).tolist()  # word of each position
        first = [i for i in range(len(where)) if i == 0 or word[i] != word[i - 1]] + [len(where)]
        chosen, count = [False] * len(where), 0
        pmf = span_length_pmf(self.span_p, self.span_max)
        while count < budget:
            lengths = torch.multinomial(pmf, budget, replacement=True, generator=generator) + 1
            anchors = torch.randint(len(where), (budget,), generator=generator)
            for anchor, length in zip(anchors.tolist(), lengths.tolist(), strict=True):
                if count >= budget:
                    break
                if chosen[anchor]:
                    continue
                w = word[anchor]
                for i in range(first[w], first[min(w + length, len(first) - 1)]):
                    if count < budget and not chosen[i]:
                        chosen[i], count = True, count + 1
        selected[where] = torch.tensor(chosen)
        return selected


# The scheme's knobs, defaults as above. Optional: a run made before they existed resumes.
SCHEME_KNOBS = {
    "masking": Knob(
        MaskScheme.masking,
        " (token: BERT, whole_word: a word's pieces together, span: SpanBERT's spans)",
        choices=MASKINGS,
        optional=True,
    ),
    "span_p": Knob(MaskScheme.span_p, " (SpanBERT uses 0.2)", optional=True),
    "span_max": Knob(MaskScheme.span_max, " (SpanBERT uses 10)", optional=True),
    "mask_rate_end": Knob(MaskScheme.mask_rate_end, optional=True),
    "mask_rate_epochs": Knob(MaskScheme.mask_rate_epochs, optional=True),
}
