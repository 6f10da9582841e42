"""Extractive QA probe helpers: windowed features, span decoding and SQuAD EM/F1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchmetrics.functional.text import squad
from transformers import PreTrainedTokenizerFast

from pretrainlab.errors import PretrainlabError

Offset = tuple[int, int] | None


@dataclass
class QAFeatures:
    """One row per window of "[CLS] question [SEP] context-slice [SEP]"."""

    input_ids: torch.Tensor  # (W, L) long, padded with pad id
    attention_mask: torch.Tensor  # (W, L)
    token_type_ids: torch.Tensor  # (W, L); all zeros when segments=False
    start_positions: torch.Tensor  # (W,) gold start token; 0 (= [CLS]) if not in this window
    end_positions: torch.Tensor  # (W,)
    example_index: list[int]  # window -> row index in the examples
    offsets: list[list[Offset]]  # per window per token: char span in the context, None otherwise

    def __len__(self) -> int:
        return len(self.example_index)


def _columns(examples: Any) -> tuple[list[str], list[str], list[Mapping[str, list]]]:
    """Questions, contexts and answers from a ``datasets.Dataset`` or a sequence of row dicts."""
    if hasattr(examples, "column_names"):  # datasets.Dataset: read whole columns at once
        answers = (
            list(examples["answers"])
            if "answers" in examples.column_names
            else [{"text": [], "answer_start": []}] * len(examples)
        )
        return list(examples["question"]), list(examples["context"]), answers
    rows = list(examples)
    empty = {"text": [], "answer_start": []}
    return (
        [r["question"] for r in rows],
        [r["context"] for r in rows],
        [r.get("answers", empty) for r in rows],
    )


def question_limit(max_length: int, stride: int) -> int:
    """Most question tokens a window may hold: at most half of it, and always leaving more
    than ``stride`` context tokens so consecutive windows advance."""
    limit = min((max_length - 3) // 2, max_length - 4 - stride)
    if stride < 0 or limit < 1:
        raise PretrainlabError(
            f"probe.stride={stride} with probe.max_length={max_length} is not valid: the window "
            "leaves no room for a question and more than `stride` context tokens; expected "
            f"0 <= stride <= {max(0, max_length - 5)} (less with longer questions), or a longer "
            "window."
        )
    return limit


def _truncate_questions(
    questions: list[str], tokenizer: PreTrainedTokenizerFast, limit: int
) -> list[str]:
    """Cut over-long questions to their first ``limit`` tokens (by characters, via offsets)."""
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q if len(offs) <= limit else q[: offs[limit - 1][1]]
        for q, offs in zip(questions, enc["offset_mapping"], strict=True)
    ]


def _gold_tokens(offsets: Sequence[Offset], answers: Mapping[str, list]) -> tuple[int, int]:
    """Token span of the first answer if it lies wholly inside this window's context, else (0, 0)."""
    if not answers["text"]:
        return 0, 0
    char_start = int(answers["answer_start"][0])
    char_end = char_start + len(answers["text"][0])
    ctx = [(i, span) for i, span in enumerate(offsets) if span is not None]
    if not ctx or ctx[0][1][0] > char_start or ctx[-1][1][1] < char_end:
        return 0, 0
    start = max(i for i, (a, _) in ctx if a <= char_start)  # last token starting at/before it
    end = min(i for i, (_, b) in ctx if b >= char_end)  # first token ending at/after it
    return start, end


def prepare_qa_features(
    examples: Iterable[Mapping[str, Any]],
    tokenizer: PreTrainedTokenizerFast,
    max_length: int = 128,
    stride: int = 32,
    segments: bool = True,
) -> QAFeatures:
    """Tokenize SQuAD-style rows into overlapping windows of at most ``max_length`` tokens.

    The question comes first so a causal encoder reads it before the context. Long contexts
    are split into windows sharing ``stride`` tokens; questions longer than
    ``question_limit`` tokens are cut. Rows without answers get (0, 0) gold positions.
    """
    questions, contexts, answers = _columns(examples)
    questions = _truncate_questions(questions, tokenizer, question_limit(max_length, stride))
    enc = tokenizer(  # how the windows are cut, then what comes back
        questions,
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        padding="longest",
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        return_tensors="pt",
    )
    example_index = enc["overflow_to_sample_mapping"].tolist()  # (W,)
    offsets: list[list[Offset]] = []
    gold: list[tuple[int, int]] = []
    for w, ex in enumerate(example_index):
        seq_ids = enc.sequence_ids(w)
        spans = enc["offset_mapping"][w].tolist()  # (L, 2)
        window = [tuple(s) if sid == 1 else None for s, sid in zip(spans, seq_ids, strict=True)]
        offsets.append(window)
        gold.append(_gold_tokens(window, answers[ex]))
    positions = torch.tensor(gold, dtype=torch.long).reshape(-1, 2)  # (W, 2)
    token_type_ids = enc["token_type_ids"]  # (W, L)
    if not segments:
        token_type_ids = torch.zeros_like(token_type_ids)
    return QAFeatures(
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        token_type_ids=token_type_ids,
        start_positions=positions[:, 0],
        end_positions=positions[:, 1],
        example_index=example_index,
        offsets=offsets,
    )


def _best_window_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context_mask: torch.Tensor,
    max_answer_tokens: int,
    n_best: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best valid (start, end) per window among the top ``n_best`` starts x ``n_best`` ends.

    Returns score (W,), -inf where a window has no valid span, start (W,) and end (W,).
    """
    neg_inf = torch.finfo(start_logits.dtype).min
    start = start_logits.masked_fill(~context_mask, neg_inf)  # (W, L)
    end = end_logits.masked_fill(~context_mask, neg_inf)  # (W, L)
    k = min(n_best, start.shape[1])
    s_val, s_idx = start.topk(k, dim=1)  # (W, k)
    e_val, e_idx = end.topk(k, dim=1)  # (W, k)
    s_ok = context_mask.gather(1, s_idx)  # (W, k)
    e_ok = context_mask.gather(1, e_idx)  # (W, k)
    length = e_idx[:, None, :] - s_idx[:, :, None] + 1  # (W, k, k)
    valid = (length >= 1) & (length <= max_answer_tokens) & s_ok[:, :, None] & e_ok[:, None, :]
    score = (s_val[:, :, None] + e_val[:, None, :]).masked_fill(~valid, float("-inf"))  # (W, k, k)
    best, flat = score.flatten(1).max(dim=1)  # (W,)
    return (
        best,
        s_idx.gather(1, (flat // k)[:, None])[:, 0],
        e_idx.gather(1, (flat % k)[:, None])[:, 0],
    )


def decode_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    features: QAFeatures,
    contexts: list[str],
    max_answer_tokens: int = 30,
    n_best: int = 20,
) -> list[str]:
    """Answer text per example: the highest start+end logit span over all of its windows.

    Spans must lie in context tokens with start <= end and at most ``max_answer_tokens`` tokens;
    only the top ``n_best`` starts and ends of each window are paired. An example with no valid
    span (or no window) gets "".
    """
    if not features.example_index:
        return [""] * len(contexts)
    context_mask = torch.tensor(
        [[span is not None for span in window] for window in features.offsets], dtype=torch.bool
    ).to(start_logits.device)  # (W, L)
    best, starts, ends = _best_window_spans(
        start_logits.float(), end_logits.float(), context_mask, max_answer_tokens, n_best
    )
    best, starts, ends = best.tolist(), starts.tolist(), ends.tolist()
    answers = [""] * len(contexts)
    top = [float("-inf")] * len(contexts)
    for w, ex in enumerate(features.example_index):
        if best[w] > top[ex]:  # -inf (no valid span) never wins
            top[ex] = best[w]
            (a, _), (_, b) = features.offsets[w][starts[w]], features.offsets[w][ends[w]]
            answers[ex] = contexts[ex][a:b]
    return answers


def squad_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 in [0, 100], each best over an example's references.

    Uses torchmetrics' functional ``squad`` (the official normalisation and token F1), fed with
    synthetic ids. An example with no references counts as unanswerable: only "" scores there.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {"em": 0.0, "f1": 0.0}
    preds = [{"id": str(i), "prediction_text": p} for i, p in enumerate(predictions)]
    target = [
        {"id": str(i), "answers": {"text": list(refs) or [""], "answer_start": []}}
        for i, refs in enumerate(references)
    ]
    out = squad(preds, target)
    return {"em": float(out["exact_match"]), "f1": float(out["f1"])}


def subset_f1(
    predictions: list[str], references: list[list[str]], subsets: Sequence[str] | None
) -> dict[str, float]:
    """``f1_<name>``: SQuAD F1 on the rows of each subset (``subsets``: one name per row, a
    task's ``subset`` column such as the direction task's right_cue / left_cue; None: none)."""
    names = [] if subsets is None else list(subsets)
    out = {}
    for name in sorted(set(names)):
        rows = [i for i, s in enumerate(names) if s == name]
        scores = squad_scores([predictions[i] for i in rows], [references[i] for i in rows])
        out[f"f1_{name}"] = scores["f1"]
    return out
