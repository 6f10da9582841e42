"""Graded sentence-pair similarity from STS-B-format files (``conf/probe/stsb.yaml``).

GLUE's STS-B TSVs have a header row with (among others) ``sentence1``, ``sentence2`` and
``score`` (a float in [0, 5]); any CSV / TSV / JSON-lines file with such columns works
(:func:`~pretrainlab.data.tasks.generic.read_table`). A score that is not a number or lies
outside ``score_range`` is an error naming the file, line and value, before any model work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import datasets

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tasks.generic import read_table
from pretrainlab.data.tasks.splits import file_splits
from pretrainlab.errors import PretrainlabError

FEATURES = datasets.Features(
    {
        "text": datasets.Value("string"),
        "text_pair": datasets.Value("string"),
        "label": datasets.Value("float64"),
    }
)


def _range(score_range: Sequence[float]) -> tuple[float, float]:
    values = list(score_range) if isinstance(score_range, Sequence) else []
    ok = len(values) == 2 and all(isinstance(v, int | float) for v in values)
    if not ok or not values[0] < values[1] or not all(math.isfinite(v) for v in values):
        raise PretrainlabError(
            f"probe.task.score_range={score_range!r} is not valid: expected [low, high] with "
            "low < high (STS-B: [0, 5])."
        )
    return float(values[0]), float(values[1])


def _score(value: object, path: str, line: int, column: str, bounds: tuple[float, float]) -> float:
    try:
        score = float(str(value).strip())
    except ValueError:
        score = math.nan
    if not (math.isfinite(score) and bounds[0] <= score <= bounds[1]):
        raise PretrainlabError(
            f"Data file {path!r} line {line}: {column} is {value!r}, outside the declared score "
            f"range [{bounds[0]:g}, {bounds[1]:g}] (probe.task.score_range); expected a number "
            "in it. Fix the row, or declare the range the file uses."
        )
    return score


def load_sts(
    train_file: str,
    dev_file: str | None = None,
    test_file: str | None = None,
    sentence1_column: str = "sentence1",
    sentence2_column: str = "sentence2",
    score_column: str = "score",
    score_range: Sequence[float] = (0.0, 5.0),
    dev_size: int | float = 0.1,
    test_size: int | float = 0.1,
    seed: int = 0,
    name: str = "stsb",
) -> ProbeTask:
    """A ``similarity`` task; a missing dev / test file is carved out of train."""
    bounds = _range(score_range)
    columns = [sentence1_column, sentence2_column, score_column]

    def read(path: str) -> list[tuple[str, str, float]]:
        rows, lines = read_table(path, columns)
        return [
            (
                str(r[sentence1_column]),
                str(r[sentence2_column]),
                _score(r[score_column], path, line, score_column, bounds),
            )
            for r, line in zip(rows, lines, strict=True)
        ]

    splits, notes = file_splits(read, train_file, dev_file, test_file, dev_size, test_size, seed)
    data = {
        split: datasets.Dataset.from_dict(
            {
                "text": [a for a, _, _ in rows],
                "text_pair": [b for _, b, _ in rows],
                "label": [s for _, _, s in rows],
            },
            features=FEATURES,
        )
        for split, rows in splits.items()
    }
    return ProbeTask(name, "similarity", data, [], [*notes, f"score range {list(bounds)}"])
