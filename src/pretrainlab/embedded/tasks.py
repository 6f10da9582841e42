"""Embedded probe tasks: generated from a seed by :mod:`pretrainlab.embedded`, no files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.embedded import TASK_NAMES, generate_probe_task
from pretrainlab.embedded.direction import DirectionSpec
from pretrainlab.embedded.lexical import LexicalSpec
from pretrainlab.errors import PretrainlabError

__all__ = ["TASK_NAMES", "load_embedded_task"]


def load_embedded_task(
    name: str,
    seed: int = 0,
    train_size: int = 2000,
    dev_size: int = 500,
    test_size: int = 1000,
    lexical: Mapping[str, Any] | None = None,
    direction: Mapping[str, Any] | None = None,
) -> ProbeTask:
    """The embedded task ``name`` (one of ``sentiment``, ``topic``, ``pair``, ``qa``,
    ``lexical``, ``direction``, ``tagging``, ``similarity``, ``word_similarity``); ``lexical`` holds
    the word-class knobs of the ``lexical`` and ``word_similarity`` tasks (the node
    ``probe.task.lexical``, from the same ``conf/lexical/default.yaml`` as the corpus's);
    ``direction`` the knobs of the ``direction`` task (``probe.task.direction``).

    Examples come from the same generated world as ``generate_documents(..., seed)`` but are
    never corpus sentences; the same arguments always give the same splits.
    """
    if name not in TASK_NAMES:
        raise PretrainlabError(
            f"Unknown embedded task {name!r}. The embedded (generated) probe tasks are "
            f"{', '.join(repr(n) for n in TASK_NAMES)}; pick one of these, or point the task "
            "config at local data files for a real task."
        )
    spec = LexicalSpec.from_config(lexical)
    knobs = DirectionSpec.from_config(direction)
    return generate_probe_task(name, seed, train_size, dev_size, test_size, spec, knobs)
