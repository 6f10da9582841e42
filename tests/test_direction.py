"""The ``direction`` QA task: rows are what their subset claims, the knobs, the subset metrics."""

from __future__ import annotations

import re
import statistics
from collections import Counter

import pytest
import torch

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tokenizer import TokenizerSpec, _build, wrap
from pretrainlab.embedded import generate_documents, generate_probe_task
from pretrainlab.embedded.direction import (
    HISTORY_SHARE,
    MAX_CANDIDATES,
    MONTHS,
    ORDINALS,
    DirectionSpec,
)
from pretrainlab.embedded.tasks import load_embedded_task
from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.qa import subset_f1
from pretrainlab.probes.tasks import QAInputs

SEED = 0
KEY = re.compile(r"(?<!\w)(?:\d{4}|" + "|".join(MONTHS) + r")(?!\w)")
ORDINAL = re.compile(r"(?<!\w)(?:" + "|".join(ORDINALS) + r")(?!\w)", re.IGNORECASE)
FRAME = re.compile(r"(moved to|lived in|home in|joined|went to work for) $")  # right_cue wording


@pytest.fixture(scope="module")
def task() -> ProbeTask:
    return generate_probe_task("direction", SEED, 1200, 400, 800)


@pytest.fixture(scope="module")
def rows(task) -> list[dict]:
    return [row for split in task.splits.values() for row in split]


def _keys(text: str) -> list[str]:
    return KEY.findall(text)


def _ordinals(text: str) -> list[str]:
    return [word.lower() for word in ORDINAL.findall(text)]


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


# Readers: each scores every candidate from what it may read ------------------------------


def left_to_right(row: dict) -> int:
    """At each candidate's last character, from the prefix alone: the candidate whose count
    among the candidates read so far is the position an ordinal read so far names (ties: the
    first candidate)."""
    scores = []
    for k, (_, end) in enumerate(_spans(row)):
        seen = _ordinals(row["context"][:end])
        scores.append(any(ORDINALS.index(word) == k for word in seen))
    return scores.index(max(scores))


def eliminating(row: dict) -> int:
    """Left to right: a candidate whose prefix already holds the asked key is not the answer;
    the last candidate still possible wins."""
    spans = _spans(row)
    alive = [
        k for k, (_, end) in enumerate(spans) if _asked(row) not in _keys(row["context"][:end])
    ]
    return alive[-1] if alive else 0


def whole_context(row: dict) -> int:
    """Reads the whole context: the position the ordinal names, wherever it is."""
    (word,) = _ordinals(row["context"])
    return ORDINALS.index(word)


def _accuracy(reader, rows: list[dict]) -> tuple[float, float]:
    """The reader's accuracy and chance (mean 1/N) on ``rows``."""
    hits = [reader(r) == _answer(r) for r in rows]
    return statistics.mean(hits), statistics.mean(1 / len(r["candidates"]) for r in rows)


def _subset(rows: list[dict], name: str) -> list[dict]:
    return [r for r in rows if r["subset"] == name]


# Rows --------------------------------------------------------------------------------------


def test_answers_candidates_ordinal_and_key_are_located_exactly(rows):
    for row in rows:
        (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
        assert row["context"][start : start + len(text)] == text
        spans = _spans(row)  # every candidate exactly once, in the listed order
        assert spans == sorted(spans) and (start, start + len(text)) == spans[_answer(row)]
        assert _keys(row["context"]) == [_asked(row)]  # one key, the asked one, once
        (word,) = _ordinals(row["context"])  # one ordinal, once, naming the answer
        assert ORDINALS.index(word) == _answer(row) < len(spans)


def test_right_cue_rows_cannot_be_fixed_from_the_left(rows):
    """Up to the last candidate's end a right_cue context holds no ordinal and no key, and what
    it does hold (lead sentence or not, the relation's wording, the number of candidates) is
    independent of the answer's position."""
    right = _subset(rows, "right_cue")
    cells = Counter()
    for row in right:
        spans, context = _spans(row), row["context"]
        assert len(spans) >= 2  # another candidate exists
        prefix = context[: spans[-1][1]]
        assert _ordinals(prefix) == [] and _keys(prefix) == []
        before = context[: spans[0][0]]
        (frame,) = FRAME.search(before).groups()
        cells[(". " in before, frame, len(spans), _answer(row))] += 1
    for lead, frame, n in {c[:3] for c in cells}:
        counts = [cells[(lead, frame, n, a)] for a in range(n)]
        expected = sum(counts) / n  # within 4 standard deviations of uniform
        for a, count in enumerate(counts):
            assert abs(count - expected) <= 4 * expected**0.5 + 1, (lead, frame, n, a, counts)


def test_left_cue_rows_are_solved_by_reading_the_ordinal_and_counting(rows):
    left = _subset(rows, "left_cue")
    assert _accuracy(left_to_right, left)[0] == 1.0
    for row in left:
        spans, context = _spans(row), row["context"]
        (word,) = _ordinals(context[: spans[0][0]])  # the ordinal precedes every candidate
        assert ORDINALS.index(word) == _answer(row)
        assert _keys(context[: spans[0][0]]) == [_asked(row)]
        suffix = context[spans[0][0] :]  # nothing to read from the right
        assert _ordinals(suffix) == [] and _keys(suffix) == []


def test_one_sided_readers_solve_their_side_and_are_at_chance_on_the_other(rows):
    right, left = _subset(rows, "right_cue"), _subset(rows, "left_cue")
    assert _accuracy(left_to_right, left)[0] == 1.0
    assert _accuracy(whole_context, right)[0] == _accuracy(whole_context, left)[0] == 1.0
    for reader in (left_to_right, eliminating):
        accuracy, chance = _accuracy(reader, right)
        assert abs(accuracy - chance) < 0.05, (reader.__name__, accuracy, chance)


def test_interleaved_pairs_would_fall_to_elimination():
    """Why right_cue puts its cue after all candidates: "to X in K" pairs are solved from the
    left, since every candidate after the answer has read the asked key."""
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
    assert {len(r["candidates"]) for r in rows} == {2, 3}  # the defaults
    for name in ("right_cue", "left_cue"):
        cells = Counter((len(r["candidates"]), _answer(r)) for r in _subset(rows, name))
        for n in (2, 3):
            total = sum(cells[(n, a)] for a in range(n))
            for a in range(n):  # within 4 standard deviations of uniform
                assert abs(cells[(n, a)] - total / n) <= 4 * (total / n) ** 0.5, (name, n, a)
    right, left = _subset(rows, "right_cue"), _subset(rows, "left_cue")
    pool = lambda rs: {c for r in rs for c in r["candidates"]}  # noqa: E731
    assert len(pool(right) & pool(left)) >= 0.9 * min(len(pool(right)), len(pool(left)))
    for is_year in (True, False):  # the asked key's value says nothing of the position
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
    widest = {"min_candidates": MAX_CANDIDATES, "max_candidates": MAX_CANDIDATES}
    t = load_embedded_task("direction", SEED, 10, 10, 200, direction=widest)
    assert {len(c) for c in t.splits["test"]["candidates"]} == {MAX_CANDIDATES} == {4}
    assert {w for c in t.splits["test"]["context"] for w in _ordinals(c)} == set(ORDINALS)


def test_defaults_are_two_to_three_candidates():
    assert DirectionSpec() == DirectionSpec(2, 3, 0.5)


@pytest.mark.parametrize(
    "knobs, match",
    [
        ({"min_candidates": 1}, "min_candidates=1"),
        ({"min_candidates": 4, "max_candidates": 3}, "max_candidates=3"),
        ({"min_candidates": 5, "max_candidates": 5}, "min_candidates=5"),
        ({"max_candidates": 5}, "max_candidates=5.*max_candidates <= 4"),
        ({"max_candidates": 3.0}, "max_candidates=3.0"),
        ({"right_cue_share": 1.5}, "right_cue_share=1.5"),
        ({"right_cue_share": True}, "right_cue_share=True"),
        ({"candidates": 3}, "unknown key"),
    ],
)
def test_bad_knobs_stop_before_any_work(knobs, match, monkeypatch):
    monkeypatch.setattr(
        "pretrainlab.embedded.tasks.generate_probe_task", lambda *a: pytest.fail("work")
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


_RIGHT = re.compile(
    r"(?:moved to|lived in|home in|joined|went to work for) (.+?)(?:, the|; the|, for the) "
    rf"({'|'.join(ORDINALS)})(?!\w)[^,;]*\.$"
)
_LEFT = re.compile(rf"the ({'|'.join(ORDINALS)}) of (?!them)(.+)\.$")


def test_corpus_biographies_carry_both_list_forms():
    bios = [d for d in generate_documents(60_000, SEED) if d["genre"] == "biography"]
    lists = [s for d in bios for s in d["sentences"] if _ordinals(s)]
    assert abs(len(lists) / len(bios) - HISTORY_SHARE) < 0.1
    forms, sizes = Counter(), Counter()
    for sentence in lists:
        assert len(_ordinals(sentence)) == len(_keys(sentence)) == 1, sentence
        if left := _LEFT.search(sentence):
            word, listing = left.groups()
            assert _keys(sentence[: left.start()]), sentence  # the key precedes, too
        else:
            listing, word = _RIGHT.search(sentence).groups()
            assert _keys(sentence[sentence.index(word) :]), sentence  # the key follows
        n = len(re.split(r", | and ", listing))
        assert ORDINALS.index(word) < n, sentence
        forms["left" if left else "right"] += 1
        sizes[n] += 1
    assert 0.3 < forms["left"] / len(lists) < 0.7
    assert set(sizes) == {2, 3}
