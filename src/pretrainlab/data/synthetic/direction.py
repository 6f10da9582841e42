"""The ``direction`` QA task: which of N listed places or employers goes with the asked key.

A row lists N candidates (cities or employers, 2 to 4 by default) and N keys (years or months,
in random order), paired by position ("respectively"). ``right_cue`` rows list the candidates
first ("Ana moved to Varno, Teslo and Brin in 1995, 1990 and 2001 respectively."), so no key
occurs before the last candidate ends: a left-to-right reader deciding at any candidate has
seen only the question and candidates, which say nothing about which one is asked (the answer
is uniform over the N positions; keys are an exchangeable sample, so the asked key's value says
nothing about its rank). ``left_cue`` rows are the mirror image, keys first ("In 1995, 1990 and
2001 respectively, Ana moved to Varno, Teslo and Brin."): every key precedes every candidate,
so a left-to-right reader can solve them and a right-to-left one cannot. Both subsets draw
person, relation, candidates and keys from the same samplers.

Interleaved pairs ("to Varno in 1990 and to Teslo in 1995") cannot make a right-cue split:
every candidate after the answer has already read the asked key, so a left-to-right span
scorer marks them "not me" and the last unmarked candidate is the answer (elimination).

The same sentence forms, with random candidates and keys, occur in the pretraining corpus:
:func:`with_history` adds one to about :data:`HISTORY_SHARE` of the biographies.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import datasets

from pretrainlab.data.synthetic.common import qa_features, verb_phrase
from pretrainlab.data.synthetic.facts import render
from pretrainlab.data.synthetic.world import Person, World, build_world
from pretrainlab.errors import PretrainlabError

SUBSETS = ("right_cue", "left_cue")
MAX_CANDIDATES = 6
HISTORY_SHARE = 0.3  # share of biographies with one list sentence
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
KEYS: dict[str, tuple[str, ...]] = {
    "year": tuple(str(y) for y in range(1950, 2025)),
    "month": MONTHS,
}


FEATURES = qa_features(
    subset=datasets.Value("string"),  # right_cue | left_cue
    candidates=datasets.List(datasets.Value("string")),  # in context order; one is the answer
)


@dataclass(frozen=True)
class Relation:
    pool: str  # "cities" | "employers"
    right: tuple[str, ...]  # templates with the candidates {C} before the keys {K}
    left: tuple[str, ...]  # the mirror images: keys before candidates
    questions: tuple[str, ...]  # {name}, {poss} and the asked {key}


RELATIONS: dict[str, Relation] = {
    "moved": Relation(
        "cities",
        ("{n} moved to {C} in {K}, in that order.", "{n} moved to {C} in {K} respectively."),
        ("In {K}, {n} moved to {C}, in that order.", "In {K} respectively, {n} moved to {C}."),
        ("Where did {name} move in {key}?", "Which city did {name} move to in {key}?"),
    ),
    "lived": Relation(
        "cities",
        (
            "{n} lived in {C}, starting in {K} respectively.",
            "{n} made {poss} home in {C} from {K} on, in that order.",
        ),
        (
            "Starting in {K} respectively, {n} lived in {C}.",
            "From {K} on, {n} made {poss} home in {C}, in that order.",
        ),
        ("Where did {name} live starting in {key}?", "Where did {name} live from {key} on?"),
    ),
    "joined": Relation(
        "employers",
        ("{n} joined {C} in {K} respectively.", "{n} went to work for {C} in {K}, in that order."),
        (
            "In {K} respectively, {n} joined {C}.",
            "In {K}, {n} went to work for {C}, in that order.",
        ),
        ("Which company did {name} join in {key}?", "Who did {name} go to work for in {key}?"),
    ),
}


@dataclass(frozen=True)
class DirectionSpec:
    """The knobs of the ``direction`` task (``probe.task.direction`` in conf/probe/direction.yaml)."""

    min_candidates: int = 2
    max_candidates: int = 4
    right_cue_share: float = 0.5

    def __post_init__(self) -> None:
        low, high = self.min_candidates, self.max_candidates
        for name, value, least in (("min_candidates", low, 2), ("max_candidates", high, low)):
            ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok or not (isinstance(least, int) and least <= value <= MAX_CANDIDATES):
                raise PretrainlabError(
                    f"direction.{name}={value!r} is not valid (min_candidates={low!r}, "
                    f"max_candidates={high!r}): expected integers with 2 <= min_candidates <= "
                    f"max_candidates <= {MAX_CANDIDATES}; a row needs the answer and at least one "
                    "other candidate, and lists at most that many."
                )
        share = self.right_cue_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise PretrainlabError(
                f"direction.right_cue_share={share!r} is not valid: expected a number in [0, 1], "
                "the share of rows whose keys follow the candidates (0.5: balanced subsets)."
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> DirectionSpec:
        """The spec from a config mapping (``None``: the defaults); unknown keys are errors."""
        cfg = dict(cfg or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(cfg) - set(names))
        if unknown:
            raise PretrainlabError(
                f"direction: unknown option(s) {', '.join(unknown)}; the accepted options are "
                f"{', '.join(names)}."
            )
        return cls(**cfg)


@lru_cache(maxsize=4)
def _pools(seed: int) -> dict[str, tuple[str, ...]]:
    """Candidate names: no name is a proper prefix of another entity (its extent is fixed)."""
    world = build_world(seed)
    return {
        pool: tuple(n for n in names if not world.is_proper_prefix(n))
        for pool, names in (("cities", world.cities), ("employers", world.employers))
    }


def _listing(items: list[str]) -> tuple[str, list[int]]:
    """The listing "a, b and c" of ``items`` and the offset of each item in it."""
    text, offsets = "", []
    for i, item in enumerate(items):
        text += "" if i == 0 else (" and " if i == len(items) - 1 else ", ")
        offsets.append(len(text))
        text += item
    return text, offsets


@dataclass(frozen=True)
class Listing:
    """One rendered list sentence: its text and relation, the candidates and keys in listed
    order, and each candidate's offset in the sentence."""

    sentence: str
    relation: str
    candidates: list[str]
    keys: list[str]
    candidate_starts: list[int]


def list_sentence(
    rng: random.Random, world: World, person: Person, subject: str, n: int, right: bool
) -> Listing:
    """A list sentence about ``person`` with ``n`` random candidates and keys."""
    relation = rng.choice(sorted(RELATIONS))
    rel = RELATIONS[relation]
    candidates = rng.sample(_pools(world.seed)[rel.pool], n)
    keys = rng.sample(KEYS[rng.choice(sorted(KEYS))], n)
    template = rng.choice(rel.right if right else rel.left)
    (c_text, c_offsets), (k_text, _) = _listing(candidates), _listing(keys)
    values = {"n": subject, "poss": person.poss, "C": c_text, "K": k_text}
    sentence, offsets = render(template, values)
    starts = [offsets["C"] + o for o in c_offsets]
    return Listing(sentence, relation, candidates, keys, starts)


def _occurrences(text: str, word: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text))


class DirectionMaker:
    """Draws ``direction`` rows for one world and :class:`DirectionSpec`."""

    def __init__(self, world: World, spec: DirectionSpec) -> None:
        self.world, self.spec = world, spec

    def make_row(self, rng: random.Random, index: int, _split: str) -> dict:
        """Row ``index`` of a split: right_cue when ``index`` crosses a multiple of
        1 / right_cue_share (0.5: alternating, so every split is balanced to one row)."""
        share = self.spec.right_cue_share
        return self(rng, int((index + 1) * share) > int(index * share))

    def __call__(self, rng: random.Random, right: bool) -> dict:
        """One row without ``id``: ``right_cue`` iff ``right``. Redraws the rare row in which a
        candidate or key occurs more than once (a name inside another, a month in filler)."""
        for _ in range(100):
            row, keys = self._draw(rng, right)
            if all(_occurrences(row["context"], w) == 1 for w in (*row["candidates"], *keys)):
                return row
        raise RuntimeError("direction: no row with unique candidates and keys in 100 draws")

    def _draw(self, rng: random.Random, right: bool) -> tuple[dict, list[str]]:
        person = rng.choice(self.world.people)
        n = rng.randint(self.spec.min_candidates, self.spec.max_candidates)
        answer = rng.randrange(n)
        lead = rng.random() < 0.5  # a fact-free first sentence moves the list along
        subject = person.subj if lead else person.name
        listing = list_sentence(rng, self.world, person, subject, n, right)
        prefix = f"{person.name} {verb_phrase(rng, self.world)}. " if lead else ""
        question = rng.choice(RELATIONS[listing.relation].questions)
        row = {
            "question": question.format(
                name=person.name, poss=person.poss, key=listing.keys[answer]
            ),
            "context": prefix + listing.sentence,
            "answers": {
                "text": [listing.candidates[answer]],
                "answer_start": [len(prefix) + listing.candidate_starts[answer]],
            },
            "subset": SUBSETS[0] if right else SUBSETS[1],
            "candidates": listing.candidates,
        }
        return row, listing.keys


def with_history(sentences: list[str], world: World, person: Person) -> list[str]:
    """``sentences`` (a biography of ``person``) with one list sentence about them somewhere
    after the first sentence, in about :data:`HISTORY_SHARE` of biographies. Its own random
    stream is keyed by the text, so the corpus stream (and every other document) stays as is."""
    rng = random.Random("pretrainlab-direction-history-" + " ".join(sentences))
    if rng.random() >= HISTORY_SHARE:
        return sentences
    n = rng.randint(2, 4)
    listing = list_sentence(rng, world, person, person.subj, n, rng.random() < 0.5)
    at = rng.randint(1, len(sentences))
    return [*sentences[:at], listing.sentence, *sentences[at:]]
