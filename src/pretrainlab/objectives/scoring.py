"""How a pretrained model with its own head scores candidates for a prompt's blank (zero-shot).

An objective declares its scorer with :meth:`PretrainObjective.candidate_scorer`. Both scorers
return, per prompt and candidate, the summed log-probability of the candidate's tokens, so the
same candidate set is ranked the same way by any model that ignores the prompt's facts:

- :func:`masked_lm_scores` (MLM heads): the blank becomes as many [MASK] as the candidate has
  tokens, the rest of the prompt visible on both sides; one pass per candidate.
- :func:`causal_lm_scores` (left-to-right heads): the log-probability of the candidate and then
  the rest of the prompt given the text before the blank (the prefix is the same for every
  candidate, so this ranks like the whole sentence's probability); a left-to-right model sees
  no right context while it reads the candidate, only after.

The blank must sit between words (whitespace or punctuation around it): then the prefix,
candidate and suffix tokenise exactly as the filled sentence does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from pretrainlab.data.tasks.base import CLOZE_BLANK

IGNORE = -100
CandidateScorer = Callable[[Any, Any, Sequence[str], Sequence[Sequence[str]]], Tensor]


def _pieces(tokenizer: Any, prompt: str) -> tuple[list[int], list[int]]:
    if prompt.count(CLOZE_BLANK) != 1:
        raise ValueError(f"a cloze prompt needs exactly one {CLOZE_BLANK!r}: {prompt!r}")
    prefix, suffix = prompt.split(CLOZE_BLANK)
    ids = tokenizer([prefix, suffix], add_special_tokens=False)["input_ids"]
    return ids[0], ids[1]


@torch.no_grad()
def _sum_logprobs(
    model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int, shift: bool, batch: int
) -> Tensor:
    """Sum over each row's labelled positions of log p(label) under ``model.cls.predictions``;
    a row is (input ids, labels with :data:`IGNORE` where nothing is scored). ``shift``: the
    output at position t predicts token t + 1 (causal)."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        for i, (x, y) in enumerate(chunk):
            ids[i, : len(x)], labels[i, : len(y)] = torch.tensor(x), torch.tensor(y)
        ids, labels = ids.to(device), labels.to(device)
        hidden = model.base_model(
            input_ids=ids, attention_mask=(ids != pad_id).long(), use_cache=False
        ).last_hidden_state
        if shift:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        selected = labels != IGNORE
        logp = model.cls.predictions(hidden[selected]).float().log_softmax(-1)
        picked = logp.gather(-1, labels[selected][:, None]).squeeze(-1)
        row = torch.arange(len(chunk), device=device)[:, None].expand_as(labels)[selected]
        out.append(torch.zeros(len(chunk), device=device).index_add_(0, row, picked))
    return torch.cat(out).cpu()


Row = tuple[list[int], list[int]]  # (input ids, labels with IGNORE where nothing is scored)


def _scorer(
    name: str, make: Callable[[Any, list[int], list[int], list[int]], Row], shift: bool
) -> Any:
    """A :data:`CandidateScorer` from its row builder ``make(tokenizer, prefix, option,
    suffix)``: (prompts, candidates) summed log-probabilities, one row per candidate."""

    def score(
        model: Any,
        tokenizer: Any,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]],
        batch: int = 256,
    ) -> Tensor:
        width = {len(c) for c in candidates}
        if len(width) != 1 or len(prompts) != len(candidates):
            raise ValueError("every prompt needs a list of candidates, all of the same length")
        rows = []
        for prompt, options in zip(prompts, candidates, strict=True):
            prefix, suffix = _pieces(tokenizer, prompt)
            for option in tokenizer(list(options), add_special_tokens=False)["input_ids"]:
                rows.append(make(tokenizer, prefix, option, suffix))
        scores = _sum_logprobs(model, rows, tokenizer.pad_token_id, shift, batch)
        return scores.view(len(prompts), width.pop())

    score.__name__ = score.__qualname__ = name
    score.__doc__ = make.__doc__
    return score


def _masked_row(tokenizer: Any, prefix: list[int], option: list[int], suffix: list[int]) -> Row:
    """The candidate's tokens at as many [MASK] as it has, in [CLS] prefix [MASK]... suffix
    [SEP]."""
    masks = [tokenizer.mask_token_id] * len(option)
    ids = [tokenizer.cls_token_id, *prefix, *masks, *suffix, tokenizer.sep_token_id]
    return ids, [IGNORE] * (1 + len(prefix)) + option


def _causal_row(tokenizer: Any, prefix: list[int], option: list[int], suffix: list[int]) -> Row:
    """The candidate's tokens and then the suffix's, left to right after [CLS] prefix (the
    block start pretraining used)."""
    ids = [tokenizer.cls_token_id, *prefix, *option, *suffix]
    return ids, [IGNORE] * (1 + len(prefix)) + option + suffix


masked_lm_scores: CandidateScorer = _scorer("masked_lm_scores", _masked_row, shift=False)
causal_lm_scores: CandidateScorer = _scorer("causal_lm_scores", _causal_row, shift=True)
