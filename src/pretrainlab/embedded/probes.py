"""Held-out labelled probe tasks drawn from the same world as the corpus.

Examples are generated fresh from their own random streams (never taken from corpus documents).
Splits are drawn test first, then dev, then train, each skipping texts already used, so no
example repeats across splits and the test split does not depend on ``train_size``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable

import datasets

import pretrainlab.embedded.direction as dir_task
from pretrainlab.data.tasks.base import SPLITS, ProbeTask, TaskKind
from pretrainlab.embedded import similarity, tagging, word_similarity
from pretrainlab.embedded.common import qa_features
from pretrainlab.embedded.corpus import build_lexicon
from pretrainlab.embedded.lexical import LexicalSpec, lexical_row
from pretrainlab.embedded.lexicon import TOPICS
from pretrainlab.embedded.news import topic_snippet
from pretrainlab.embedded.pairs import LABEL_NAMES as PAIR_LABELS
from pretrainlab.embedded.pairs import PairMaker
from pretrainlab.embedded.qa import QAMaker
from pretrainlab.embedded.reviews import sentiment_example
from pretrainlab.embedded.world import World, build_world
from pretrainlab.errors import PretrainlabError

TASK_NAMES: tuple[str, ...] = (
    "sentiment",
    "topic",
    "pair",
    "qa",
    "lexical",
    "direction",
    "tagging",
    "similarity",
    "word_similarity",
)
QA_RIGHT_CONTEXT_SHARE = 0.4  # share of QA rows whose answer needs right context

_STRING, _INT = datasets.Value("string"), datasets.Value("int64")
_FEATURES: dict[str, datasets.Features] = {
    "classification": datasets.Features({"text": _STRING, "label": _INT}),
    "lexical": datasets.Features({"text": _STRING, "label": _INT, "subset": _STRING}),
    "direction": dir_task.FEATURES,
    "tagging": tagging.FEATURES,
    "similarity": similarity.FEATURES,
    "word_similarity": word_similarity.FEATURES,
    "pair": datasets.Features({"text": _STRING, "text_pair": _STRING, "label": _INT}),
    "qa": qa_features(needs_right_context=datasets.Value("bool")),
}
_NOTES = {
    "sentiment": "Short product reviews; the label is the polarity of the main clause, with "
    "negation (not/never/barely) and contrast (although/even though/but/yet/while).",
    "topic": "News snippets; every cue word belongs to two topics and two cues decide, except "
    "cues in a past-story sentence, which do not count.",
    "pair": "Does text_pair restate the fact in text (same person, relation and value)?",
    "qa": f"Biography paragraphs; about {QA_RIGHT_CONTEXT_SHARE:.0%} of answers are proper "
    "prefixes of other entity names (needs_right_context).",
    "lexical": "One member word of a word class among neutral filler; the label is its class. "
    "Train uses seen members only; dev/test are half held-out members (subset).",
    "direction": "Which of N listed places or employers an ordinal (first, second, ...) picks; "
    "right_cue rows put the ordinal after the candidates, left_cue rows before (subset).",
    "tagging": tagging.NOTE,
    "similarity": similarity.NOTE,
    "word_similarity": word_similarity.NOTE,
}

Row = dict
MakeRow = Callable[[random.Random, int, str], Row]


def _task_spec(
    name: str, world: World, lexical: LexicalSpec, direction: dir_task.DirectionSpec
) -> tuple[TaskKind, list[str], MakeRow, Callable[[Row], Hashable]]:
    """Kind, label names, a row maker ``(rng, index, split) -> row`` and the dedup key of a
    row."""
    if name == "sentiment":
        return (
            "classification",
            ["negative", "positive"],
            lambda rng, i, _split: {"text": sentiment_example(rng, world, i % 2), "label": i % 2},
            lambda row: row["text"],
        )
    if name == "topic":
        return (
            "classification",
            list(TOPICS),
            lambda rng, i, _split: {
                "text": topic_snippet(rng, world, TOPICS[i % len(TOPICS)]),
                "label": i % len(TOPICS),
            },
            lambda row: row["text"],
        )
    if name == "pair":
        pair = PairMaker(world)
        return (
            "pair",
            list(PAIR_LABELS),
            lambda rng, i, _split: pair(rng, i % 2),
            lambda row: (row["text"], row["text_pair"]),
        )
    if name == "lexical":
        lexicon = build_lexicon(world.seed, lexical)
        return (
            "classification",
            [f"class_{k}" for k in range(lexical.num_classes)],
            lambda rng, i, split: lexical_row(rng, lexicon, world, i, split),
            lambda row: row["text"],
        )
    if name == "direction":
        maker = dir_task.DirectionMaker(world, direction)
        return "qa", [], maker.make_row, lambda row: (row["question"], row["context"])
    if name == "tagging":
        return "tagging", tagging.LABEL_NAMES, tagging.TaggingMaker(world).make_row, tagging.row_key
    if name == "similarity":
        maker = similarity.SimilarityMaker(world)
        return "similarity", [], maker.make_row, lambda row: (row["text"], row["text_pair"])
    if name == "word_similarity":
        words = word_similarity.WordSimilarityMaker(world, build_lexicon(world.seed, lexical))
        return "similarity", [], words.make_row, lambda row: (row["text"], row["text_pair"])
    qa = QAMaker(world)
    share = QA_RIGHT_CONTEXT_SHARE  # row i needs right context when i crosses a multiple of 1/share
    return (
        "qa",
        [],
        lambda rng, i, _split: qa(rng, int((i + 1) * share) > int(i * share)),
        lambda row: (row["question"], row["context"]),
    )


def _draw_rows(
    seed: int,
    name: str,
    split: str,
    size: int,
    make_row: MakeRow,
    key: Callable[[Row], Hashable],
    seen: set[Hashable],
) -> list[Row]:
    """``size`` rows of one split whose keys are not in ``seen`` (added to it), shuffled."""
    rng = random.Random(f"pretrainlab-probe-{seed}-{name}-{split}")
    rows = []
    for i in range(size):
        for _ in range(100):
            row = make_row(rng, i, split)
            if key(row) not in seen:
                break
        else:
            raise PretrainlabError(
                f"Could not draw {size} distinct {name!r} examples for the {split} split; "
                "ask for fewer examples."
            )
        seen.add(key(row))
        rows.append(row)
    rng.shuffle(rows)
    return rows


def generate_probe_task(
    name: str,
    seed: int,
    train_size: int,
    dev_size: int,
    test_size: int,
    lexical: LexicalSpec | None = None,
    direction: dir_task.DirectionSpec | None = None,
) -> ProbeTask:
    """One of :data:`TASK_NAMES`, identical to ``generate_probe_tasks(...)[name]``;
    ``lexical`` sets the word classes of the ``lexical`` task (default :class:`LexicalSpec`),
    ``direction`` the knobs of the ``direction`` task (default ``DirectionSpec()``)."""
    if name not in TASK_NAMES:
        raise PretrainlabError(
            f"Unknown embedded probe task {name!r}; the accepted names are {', '.join(TASK_NAMES)}."
        )
    sizes = {"train": train_size, "dev": dev_size, "test": test_size}
    bad = {split: size for split, size in sizes.items() if not isinstance(size, int) or size < 1}
    if bad:
        raise PretrainlabError(
            f"Embedded probe task {name!r} needs at least one example per split, got sizes {bad}; "
            "pass positive integers for train_size, dev_size and test_size."
        )
    spec = lexical or LexicalSpec()
    kind, label_names, make_row, key = _task_spec(
        name, build_world(seed), spec, direction or dir_task.DirectionSpec()
    )
    seen: set[Hashable] = set()
    splits: dict[str, datasets.Dataset] = {}
    for split in ("test", "dev", "train"):
        rows = _draw_rows(seed, name, split, sizes[split], make_row, key, seen)
        if kind == "qa":
            rows = [{"id": f"{split}-{j:06d}", **row} for j, row in enumerate(rows)]
        features = _FEATURES.get(name, _FEATURES[kind])
        splits[split] = datasets.Dataset.from_list(rows, features=features, split=split)
    return ProbeTask(
        name=name,
        kind=kind,
        splits={s: splits[s] for s in SPLITS},
        label_names=label_names,
        notes=[f"embedded synthetic task (seed {seed}). {_NOTES[name]}"]
        + ([f"lexical: {spec}"] if name in ("lexical", "word_similarity") else [])
        + ([f"direction: {direction or dir_task.DirectionSpec()}"] if name == "direction" else []),
    )


def generate_probe_tasks(
    seed: int, train_size: int, dev_size: int, test_size: int
) -> dict[str, ProbeTask]:
    """All embedded probe tasks (:data:`TASK_NAMES`) for ``seed``'s world."""
    return {
        name: generate_probe_task(name, seed, train_size, dev_size, test_size)
        for name in TASK_NAMES
    }
