"""The one shape every probe task takes, embedded or loaded from files.

Columns by kind (each split is a ``datasets.Dataset``):
- ``classification``: ``text`` (str), ``label`` (int)
- ``pair``: ``text``, ``text_pair`` (str), ``label`` (int)
- ``qa``: ``id``, ``question``, ``context`` (str), ``answers`` ({"text": [...],
  "answer_start": [...]}, SQuAD format); embedded QA adds ``needs_right_context`` (bool), the
  embedded ``direction`` task ``subset`` (right_cue / left_cue) and ``candidates``.
- ``tagging``: ``tokens`` (list of words), ``tags`` (list of int, IOB2 ``label_names``); the
  embedded task adds ``subset`` and ``target`` ([start, end) words scored per subset).
- ``similarity``: ``text``, ``text_pair`` (str), ``label`` (float score in the task's range).
- ``cloze`` (zero-shot, no train rows): ``prompt`` (str with one :data:`CLOZE_BLANK`),
  ``candidates`` (list of str), ``label`` (index of the true candidate), ``subset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import datasets

TaskKind = Literal["classification", "pair", "qa", "cloze", "tagging", "similarity"]
SPLITS = ("train", "dev", "test")
CLOZE_BLANK = "___"  # where a cloze prompt's candidate goes


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
        return {"qa": "f1", "tagging": "f1", "similarity": "spearman"}.get(self.kind, "accuracy")
