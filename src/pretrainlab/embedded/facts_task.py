"""The embedded ``facts`` task (``conf/probe/facts.yaml``, kind ``cloze``): zero-shot recall of
facts the pretraining corpus states about its people, LAMA-style (Petroni et al. 2019).

A row is a prompt with one blank for a person's attribute, ``candidates`` one-word values (the
true one exactly once) and the true index; ``subset`` says how the corpus's training split
states the fact (:mod:`pretrainlab.embedded.fact_recall`). There is no train split: the
probe only ranks candidates with the checkpoint's own pretraining head.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import datasets

from pretrainlab.config import Knob
from pretrainlab.data.corpus import SyntheticCorpus
from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.embedded import fact_recall as fr
from pretrainlab.embedded.world import RELATIONS, World, build_world
from pretrainlab.errors import PretrainlabError

_INT, _STRING = datasets.Value("int64"), datasets.Value("string")
FEATURES = datasets.Features(
    {
        "prompt": _STRING,  # one blank (CLOZE_BLANK) where the value goes
        "candidates": datasets.List(_STRING),
        "label": _INT,  # index of the true value in candidates
        "subset": _STRING,  # paraphrased | single_phrasing | unseen
        "relation": _STRING,
        "person": _STRING,
        "mentions": _INT,  # sentences of the training split stating the fact
        "phrasings": _INT,  # distinct templates among them
    }
)
_STATEMENTS: dict[str, dict[fr.Pair, list[str]]] = {}  # corpus cache key -> its statements
Cell = tuple[str, str]  # (subset, relation)


def _statements(corpus: SyntheticCorpus, world: World) -> dict[fr.Pair, list[str]]:
    key = corpus.cache_key()
    if key not in _STATEMENTS:
        _STATEMENTS[key] = fr.count_statements(world, corpus.documents("train"))
    return _STATEMENTS[key]


def _names(value: Any, key: str, accepted: Sequence[str]) -> list[str]:
    names = list(value) if isinstance(value, (list, tuple)) else None
    if not names or len(set(names)) != len(names) or not set(names) <= set(accepted):
        raise PretrainlabError(
            f"probe.task.{key}={value!r} is not valid: expected a non-empty list of distinct "
            f"names from {', '.join(accepted)}."
        )
    return names


def _check(corpus: Any, sizes: dict[str, Any], candidates: Any, prompts: Any) -> None:
    if not isinstance(corpus, SyntheticCorpus):
        raise PretrainlabError(
            f"probe.task.corpus is a {type(corpus).__name__}: the facts task needs the "
            "synthetic corpus (pretrainlab.data.corpus.SyntheticCorpus), whose generated people "
            "and their stated facts it probes; set it like the pretraining run's corpus."
        )
    for split, size in sizes.items():
        Knob(f"probe.task.{split}_size", int, 1).check(size, " (rows of that split)")
    Knob("probe.task.candidates", int, 2).check(
        candidates, " (values ranked per row, the true one among them; chance is 1/candidates)"
    )
    if prompts not in fr.PROMPT_SOURCES:
        raise PretrainlabError(
            f"probe.task.prompts={prompts!r} is not valid: expected heldout (templates no "
            "corpus sentence uses) or corpus (the corpus's own templates)."
        )


def _check_pools(world: World, relations: list[str], candidates: int) -> None:
    for relation in relations:
        room = len(fr.value_pool(world, relation)) - len(RELATIONS)
        if candidates - 1 > room:
            raise PretrainlabError(
                f"probe.task.candidates={candidates} is too many for relation {relation!r}: its "
                f"one-word values leave {room} distractors after a person's own values; use "
                f"at most {room + 1} or drop {relation!r} from probe.task.relations."
            )


def _cells(
    world: World, statements: dict, relations: list[str], subsets: list[str], rng: random.Random
) -> dict[Cell, list[fr.Pair]]:
    """Eligible pairs per (subset, relation), the most often stated first (ties: random)."""
    cells: dict[Cell, list[tuple[fr.Pair, int]]] = {(s, r): [] for r in relations for s in subsets}
    for person in world.people:
        for relation in relations:
            found = statements.get((person.name, relation), [])
            cell = (fr.subset_of(found), relation)
            if cell in cells and fr.eligible(person, relation):
                cells[cell].append(((person.name, relation), len(found)))
    for pairs in cells.values():
        rng.shuffle(pairs)
        pairs.sort(key=lambda pair: -pair[1])
    return {cell: [pair for pair, _ in pairs] for cell, pairs in cells.items()}


def _distractor_pools(
    world: World, cells: dict[Cell, list[fr.Pair]], candidates: int
) -> dict[fr.Pair, list[str]]:
    """Each pair's distractor pool: the value of each person of its cell (sorted, a value as
    often as people hold it). A fact stated 30 times has a value the corpus-trained tokenizer
    keeps whole more often than a random value (measured: 1.08 pieces against 1.23), and a
    scorer summing log-probabilities over pieces prefers short candidates; values drawn as
    the answers are (same people, same weights) are tokenised alike."""
    out: dict[fr.Pair, list[str]] = {}
    for (subset, relation), pairs in cells.items():
        pool = sorted(world.person_by_name[name].value(relation) for name, _ in pairs)
        room = len(set(pool)) - len(RELATIONS)  # distinct values left after a person's own
        if pairs and room < candidates - 1:
            raise PretrainlabError(
                f"probe.task.candidates={candidates} is too many for the {subset} facts of "
                f"{relation!r}: their people hold {len(set(pool))} one-word values, and "
                "distractors are drawn among them (never a value of the row's person); use at "
                f"most {room + 1} candidates or other probe.task.subsets."
            )
        out.update({pair: pool for pair in pairs})
    return out


def _assign(
    cells: dict[Cell, list[fr.Pair]], sizes: dict[str, int], rng: random.Random
) -> dict[str, list[fr.Pair]]:
    """Rows of each split cycle through the cells (balanced subsets and relations); each cell
    gives its most-stated pairs, shuffled, test first, so test and dev get the same mix."""
    order = list(cells)
    wanted = {s: [order[i % len(order)] for i in range(n)] for s, n in sizes.items()}
    need = {c: sum(w.count(c) for w in wanted.values()) for c in order}
    short = {c: (need[c], len(cells[c])) for c in order if need[c] > len(cells[c])}
    if short:
        listed = "; ".join(f"{s}/{r}: {n} wanted, {h} exist" for (s, r), (n, h) in short.items())
        raise PretrainlabError(
            f"the corpus does not state enough facts for the facts task ({listed}). Ask for "
            "fewer rows (probe.task.dev_size / test_size), other probe.task.subsets or "
            "relations, or a corpus that states more facts: a larger probe.task.corpus.num_words "
            "or a smaller probe.task.corpus.biography_people (it must be the checkpoint's)."
        )
    pools = {c: rng.sample(cells[c][: need[c]], need[c]) for c in order}
    return {s: [pools[c].pop() for c in w] for s, w in wanted.items()}


def load_facts_task(
    corpus: SyntheticCorpus,
    seed: int = 0,
    dev_size: int = 250,
    test_size: int = 500,
    relations: Sequence[str] = ("birth_city", "field"),
    candidates: int = 10,
    subsets: Sequence[str] = ("paraphrased", "single_phrasing"),
    prompts: str = "heldout",
    train_size: Any = None,
) -> ProbeTask:
    """The facts task over ``corpus`` (the pretraining corpus: facts are counted in its train
    split). ``train_size`` is ignored (a zero-shot task has no train rows); it is accepted so a
    study's shared ``probe.task.train_size`` override applies to every task."""
    sizes = {"test": test_size, "dev": dev_size}
    _check(corpus, sizes, candidates, prompts)
    relations = _names(relations, "relations", fr.PROBED)
    subsets = _names(subsets, "subsets", fr.SUBSETS)
    world = build_world(corpus.seed)
    _check_pools(world, relations, candidates)
    statements = _statements(corpus, world)
    rng = random.Random(f"pretrainlab-facts-{seed}")
    cells = _cells(world, statements, relations, subsets, rng)
    pairs = _assign(cells, sizes, rng)
    pools = _distractor_pools(world, cells, candidates)
    templates = {r: fr.prompt_templates(r, prompts) for r in relations}
    empty = {name: [] for name in FEATURES}
    splits = {"train": datasets.Dataset.from_dict(empty, features=FEATURES, split="train")}
    for split in ("test", "dev"):
        rows = [
            fr.cloze_row(rng, world, p, templates[p[1]], pools[p], candidates, statements)
            for p in pairs[split]
        ]
        rng.shuffle(rows)
        splits[split] = datasets.Dataset.from_list(rows, features=FEATURES, split=split)
    return ProbeTask(
        name="facts",
        kind="cloze",
        splits={s: splits[s] for s in ("train", "dev", "test")},
        notes=[_note(corpus, relations, subsets, candidates, prompts, splits["test"])],
    )


def _note(
    corpus: SyntheticCorpus,
    relations: list[str],
    subsets: list[str],
    candidates: int,
    prompts: str,
    test: datasets.Dataset,
) -> str:
    mentions: dict[str, list[int]] = {}
    for subset, count in zip(test["subset"], test["mentions"], strict=True):
        mentions.setdefault(subset, []).append(count)
    per = ", ".join(f"{s} {sum(m) / len(m):.2f}" for s, m in sorted(mentions.items()))
    return (
        f"embedded synthetic task facts (zero-shot cloze, kind cloze): {', '.join(relations)} "
        f"of the people of corpus num_words={corpus.num_words} seed={corpus.seed} "
        f"lexical_share={corpus.lexical_share}; {candidates} one-word candidates per row "
        f"(chance {1 / candidates:.3f}); {prompts} prompts; subsets {', '.join(subsets)}; "
        f"mean training-split statements per test fact: {per}."
    )
