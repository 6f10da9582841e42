"""The ``direction`` QA task: rows are what their subset claims, the knobs, the subset metrics."""

from __future__ import annotations

import re
import statistics
from collections import Counter

import pytest
import torch

from pretrainlab.data.synthetic import generate_documents, generate_probe_task
from pretrainlab.data.synthetic.direction import HISTORY_SHARE, MONTHS, DirectionSpec
from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tasks.embedded import load_embedded_task
from pretrainlab.data.tokenizer import TokenizerSpec, _build, wrap
from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.qa import subset_f1
from pretrainlab.probes.tasks import QAInputs

SEED = 0
KEY = re.compile(r"(?<!\w)(?:\d{4}|" + "|".join(MONTHS) + r")(?!\w)")


@pytest.fixture(scope="module")
def task() -> ProbeTask:
    return generate_probe_task("direction", SEED, 1200, 400, 800)


@pytest.fixture(scope="module")
def rows(task) -> list[dict]:
    return [row for split in task.splits.values() for row in split]


def _keys(text: str) -> list[str]:
    return KEY.findall(text)


def _asked(row: dict) -> str:
    (key,) = _keys(row["question"])
    return key


def _spans(row: dict) -> list[tuple[int, int]]:
    """(start, end) of each candidate in the context, in order (each occurs exactly once)."""
    found = []
    for name in row["candidates"]:
        (match,) = re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", row["context"])
        found.append(match.span())
    return found


def _answer(row: dict) -> int:
    return row["candidates"].index(row["answers"]["text"][0])


# Readers: each scores every candidate from one side of the context only -------------------


def left_to_right(row: dict) -> int:
    """At each candidate's last character, from the prefix alone: the candidate whose rank
    equals the asked key's rank among the keys read so far (ties: the first candidate)."""
    asked, scores = _asked(row), []
    for k, (_, end) in enumerate(_spans(row)):
        seen = _keys(row["context"][:end])
        scores.append(asked in seen and seen.index(asked) == k)
    return scores.index(max(scores))


def eliminating(row: dict) -> int:
    """Left to right: a candidate whose prefix already holds the asked key is not the answer;
    the last candidate still possible wins."""
    spans = _spans(row)
    alive = [
        k for k, (_, end) in enumerate(spans) if _asked(row) not in _keys(row["context"][:end])
    ]
    return alive[-1] if alive else 0


def right_to_left(row: dict) -> int:
    """The mirror of :func:`left_to_right`: at each candidate's first character, from the
    suffix alone, ranks counted from the right (ties: the last candidate)."""
    asked, spans, scores = _asked(row), _spans(row), []
    for k, (start, _) in enumerate(spans):
        seen = _keys(row["context"][start:])
        scores.append(asked in seen and seen[::-1].index(asked) == len(spans) - 1 - k)
    return max(range(len(spans)), key=lambda k: (scores[k], k))


def _accuracy(reader, rows: list[dict]) -> tuple[float, float]:
    """The reader's accuracy and chance (mean 1/N) on ``rows``."""
    hits = [reader(r) == _answer(r) for r in rows]
    return statistics.mean(hits), statistics.mean(1 / len(r["candidates"]) for r in rows)


def _subset(rows: list[dict], name: str) -> list[dict]:
    return [r for r in rows if r["subset"] == name]


# Rows --------------------------------------------------------------------------------------


def test_answers_candidates_and_keys_are_located_exactly(rows):
    for row in rows:
        (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
        assert row["context"][start : start + len(text)] == text
        spans = _spans(row)  # every candidate exactly once, in the listed order
        assert spans == sorted(spans) and (start, start + len(text)) == spans[_answer(row)]
        keys = _keys(row["context"])
        assert len(keys) == len(set(keys)) == len(spans) and _asked(row) in keys


def test_right_cue_rows_cannot_be_fixed_from_the_left(rows):
    for row in _subset(rows, "right_cue"):
        spans, context = _spans(row), row["context"]
        answer_end = spans[_answer(row)][1]
        assert _asked(row) not in _keys(context[:answer_end])
        assert len(spans) >= 2  # another candidate exists, and no key at all (its own, the
        assert _keys(context[: spans[-1][1]]) == []  # asked one) is read before the last ends


def test_left_cue_rows_hold_the_key_before_the_answer(rows):
    for row in _subset(rows, "left_cue"):
        spans, context = _spans(row), row["context"]
        before = _keys(context[: spans[0][0]])
        assert len(before) == len(spans) and before.index(_asked(row)) == _answer(row)
        assert _keys(context[spans[_answer(row)][0] :]) == []  # nothing to read from the right


def test_one_sided_readers_solve_their_side_and_are_at_chance_on_the_other(rows):
    right, left = _subset(rows, "right_cue"), _subset(rows, "left_cue")
    for reader, solves, blind in (
        (left_to_right, left, right),
        (right_to_left, right, left),
        (eliminating, None, right),
    ):
        if solves is not None:
            assert _accuracy(reader, solves)[0] == 1.0, reader.__name__
        accuracy, chance = _accuracy(reader, blind)
        assert abs(accuracy - chance) < 0.05, (reader.__name__, accuracy, chance)


def test_interleaved_pairs_would_fall_to_elimination():
    """Why right_cue lists the keys after all candidates: "to X in K" pairs are solved from
    the left, since every candidate after the answer has read the asked key."""
    cities, years = ["Varno", "Teslo", "Brin"], ["1990", "1995", "2001"]
    context = (
        "Ana moved " + ", ".join(f"to {c} in {y}" for c, y in zip(cities, years, strict=True)) + "."
    )
    for a in range(3):
        row = {"question": f"Where did Ana move in {years[a]}?", "context": context}
        row |= {"candidates": cities, "answers": {"text": [cities[a]]}}
        assert eliminating(row) == a


def test_positions_are_uniform_and_subsets_share_their_samplers(task, rows):
    for split in task.splits.values():
        counts = Counter(split["subset"])
        assert set(counts) == {"right_cue", "left_cue"}
        assert abs(counts["right_cue"] - counts["left_cue"]) <= 1
    for name in ("right_cue", "left_cue"):
        cells = Counter((len(r["candidates"]), _answer(r)) for r in _subset(rows, name))
        for n in (2, 3, 4):
            total = sum(cells[(n, a)] for a in range(n))
            for a in range(n):  # within 4 standard deviations of uniform
                assert abs(cells[(n, a)] - total / n) <= 4 * (total / n) ** 0.5, (name, n, a)
    right, left = _subset(rows, "right_cue"), _subset(rows, "left_cue")
    pool = lambda rs: {c for r in rs for c in r["candidates"]}  # noqa: E731
    assert len(pool(right) & pool(left)) >= 0.9 * min(len(pool(right)), len(pool(left)))
    for is_year in (True, False):  # the asked key's value says nothing of its rank
        pairs = [
            (int(k) if is_year else MONTHS.index(k), _answer(r) / (len(r["candidates"]) - 1))
            for r in right
            if (k := _asked(r)).isdigit() == is_year
        ]
        assert abs(statistics.correlation(*zip(*pairs, strict=True))) < 0.1


def test_deterministic_in_the_seed(task):
    again = generate_probe_task("direction", SEED, 1200, 400, 800)
    for split in ("train", "dev", "test"):
        assert again.splits[split].to_list() == task.splits[split].to_list()
    other = generate_probe_task("direction", SEED + 1, 10, 10, 10)
    assert other.splits["test"]["context"] != task.splits["test"]["context"][:10]
    smaller = generate_probe_task("direction", SEED, 10, 400, 800)
    assert smaller.splits["test"]["context"] == task.splits["test"]["context"]


# Knobs -------------------------------------------------------------------------------------


def test_knobs_change_the_rows():
    knobs = {"min_candidates": 3, "max_candidates": 3, "right_cue_share": 0.25}
    t = load_embedded_task("direction", SEED, 40, 40, 40, direction=knobs)
    assert {len(c) for c in t.splits["test"]["candidates"]} == {3}
    assert Counter(t.splits["test"]["subset"])["right_cue"] == 10


@pytest.mark.parametrize(
    "knobs, match",
    [
        ({"min_candidates": 1}, "min_candidates=1"),
        ({"min_candidates": 4, "max_candidates": 3}, "max_candidates=3"),
        ({"max_candidates": 7}, "max_candidates=7"),
        ({"max_candidates": 3.0}, "max_candidates=3.0"),
        ({"right_cue_share": 1.5}, "right_cue_share=1.5"),
        ({"right_cue_share": True}, "right_cue_share=True"),
        ({"candidates": 3}, "unknown option"),
    ],
)
def test_bad_knobs_stop_before_any_work(knobs, match, monkeypatch):
    monkeypatch.setattr(
        "pretrainlab.data.tasks.embedded.generate_probe_task", lambda *a: pytest.fail("work")
    )
    with pytest.raises(PretrainlabError, match=match) as err:
        load_embedded_task("direction", SEED, 10, 10, 10, direction=knobs)
    assert "\n" not in str(err.value)
    with pytest.raises(PretrainlabError, match=match):  # the spec checks itself, too
        DirectionSpec.from_config(knobs)


# Metrics -----------------------------------------------------------------------------------


def test_subset_f1():
    preds, refs = ["Teslo", "Brin", "x"], [["Teslo"], ["Varno"], ["x"]]
    assert subset_f1(preds, refs, ["right_cue", "right_cue", "left_cue"]) == {
        "f1_left_cue": 100.0,
        "f1_right_cue": 50.0,
    }
    assert subset_f1(preds, refs, None) == {}


def test_qa_metrics_report_f1_per_subset(task):
    ds = task.splits["dev"].select(range(40))
    tok, trainer = _build(TokenizerSpec(vocab_size=400, min_frequency=1))
    tok.train_from_iterator([*ds["question"], *ds["context"]], trainer=trainer)
    inputs = QAInputs(ds, task, wrap(tok, max_length=512), 128, False)
    f = inputs.features
    outputs = torch.zeros((*f.input_ids.shape, 2))  # (W, L, 2): logits peaked on the gold span
    outputs[torch.arange(len(f)), f.start_positions, 0] = 10.0
    outputs[torch.arange(len(f)), f.end_positions, 1] = 10.0
    metrics = inputs.metrics(outputs)
    assert metrics["f1"] == metrics["f1_right_cue"] == metrics["f1_left_cue"] == 100.0
    assert metrics["em"] == 100.0 and "f1_right_context" not in metrics


# Corpus ------------------------------------------------------------------------------------


def test_corpus_biographies_carry_both_list_forms():
    bios = [d for d in generate_documents(60_000, SEED) if d["genre"] == "biography"]
    lists = [s for d in bios for s in d["sentences"] if "respectively" in s or "in that order" in s]
    assert abs(len(lists) / len(bios) - HISTORY_SHARE) < 0.1
    key_first = [s for s in lists if s.startswith(("In ", "Starting in ", "From "))]
    assert 0.3 < len(key_first) / len(lists) < 0.7
    assert all(len(_keys(s)) >= 2 for s in lists)
