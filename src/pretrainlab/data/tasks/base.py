"""The one shape every probe task takes, embedded or loaded from files.

Columns by kind (each split is a ``datasets.Dataset``):
- ``classification``: ``text`` (str), ``label`` (int)
- ``pair``: ``text``, ``text_pair`` (str), ``label`` (int)
- ``qa``: ``id``, ``question``, ``context`` (str), ``answers`` ({"text": [...],
  "answer_start": [...]}, SQuAD format); embedded QA adds ``needs_right_context`` (bool).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import datasets
import numpy as np

from pretrainlab.errors import PretrainlabError

TaskKind = Literal["classification", "pair", "qa"]
SPLITS = ("train", "dev", "test")


@dataclass
class ProbeTask:
    name: str
    kind: TaskKind
    splits: dict[str, datasets.Dataset]
    label_names: list[str] = field(default_factory=list)  # empty for qa
    notes: list[str] = field(default_factory=list)  # e.g. "12 answers not found in context"

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def primary_metric(self) -> str:
        return "f1" if self.kind == "qa" else "accuracy"


def cap_split(split: datasets.Dataset, size: int | None, seed: int, name: str) -> tuple:
    """At most ``size`` rows of ``split`` (a seeded sample, kept in file order), and a note
    saying so. A cap keeps large release sets (66k SST-2 sentences) cheap to encode when a
    study only probes a few hundred labels; ``None`` keeps everything."""
    if size is None:
        return split, None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise PretrainlabError(
            f"{name}={size!r} is not valid: expected null (every row) or an integer >= 1."
        )
    if size >= len(split):
        return split, None
    rows = np.random.default_rng(seed).permutation(len(split))[:size]
    return split.select(sorted(rows.tolist())), f"{name}={size}: {size} of {len(split)} rows kept"
