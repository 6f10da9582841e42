"""The ``direction`` QA task: which of N listed places or employers is the one an ordinal names.

A row lists N candidates (cities or employers, 2 to 3 by default, at most
:data:`MAX_CANDIDATES`) and one ordinal word (first, second, third, fourth: always the position
counted from the left) that picks the answer, with the one key (a year or a month) that the
question asks about. ``right_cue`` rows put the ordinal and the key after every candidate ("Ana
moved to Varno, Teslo and Brin, the second of them in 1995."), so the context up to the end of
the last candidate is the same whatever the answer: a left-to-right reader deciding at any
candidate has seen only the question and the candidates, which say nothing about which one is
asked (the answer is uniform over the N positions, and the key is drawn independently of it).
``left_cue`` rows are the mirror image, ordinal and key before every candidate ("In 1995 Ana
moved to the second of Varno, Teslo and Brin."): reading the ordinal and counting candidates
solves them from the left. Both subsets draw person, relation, candidates, key and position from
the same samplers.

Why an ordinal: the first design paired N candidates with N keys by position ("... in 1995, 1990
and 2001 respectively"), which asks the model to match the asked key's rank among the keys to a
candidate's rank; encoders fine-tuned on 500 rows learned none of it (MLM and CLM both at the
level of a random candidate on both subsets), so the control could not separate. The ordinal
cue is one word whose meaning never changes, and the question's key only ties the question to
its sentence.

Interleaved forms ("to Varno in 1990 and to Teslo in 1995") still cannot make a right-cue
split: every candidate after the answer has already read the asked key, so a left-to-right span
scorer marks them "not me" and the last unmarked candidate is the answer (elimination).

The same sentence forms, with random candidates, ordinal and key, occur in the pretraining
corpus: :func:`with_history` adds one to about :data:`HISTORY_SHARE` of the biographies.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import datasets

from pretrainlab.config import check_known_keys
from pretrainlab.embedded.common import qa_features, verb_phrase
from pretrainlab.embedded.facts import render
from pretrainlab.embedded.world import Person, World, build_world
from pretrainlab.errors import PretrainlabError

SUBSETS = ("right_cue", "left_cue")
ORDINALS = ("first", "second", "third", "fourth")  # ORDINALS[k]: the candidate at position k
MAX_CANDIDATES = len(ORDINALS)
HISTORY_CANDIDATES = (2, 3)  # candidates per corpus list sentence, drawn uniformly in [min, max]
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
# Any ordinal or key-like word (case-insensitive): a row's context holds exactly one of each.
_CUES = re.compile(r"(?<!\w)(?:" + "|".join((*ORDINALS, r"\d{4}", *MONTHS)) + r")(?!\w)", re.I)


FEATURES = qa_features(
    subset=datasets.Value("string"),  # right_cue | left_cue
    candidates=datasets.List(datasets.Value("string")),  # in context order; one is the answer
)


@dataclass(frozen=True)
class Relation:
    pool: str  # "cities" | "employers"
    right: tuple[str, ...]  # templates with the candidates {C} before the ordinal {O} and key {K}
    left: tuple[str, ...]  # the mirror images: ordinal (and key) before the candidates
    questions: tuple[str, ...]  # {name}, {poss} and the asked {key}


RELATIONS: dict[str, Relation] = {
    "moved": Relation(
        "cities",
        ("{n} moved to {C}, the {O} of them in {K}.", "{n} moved to {C}; the {O} was in {K}."),
        ("In {K} {n} moved to the {O} of {C}.", "{n} moved in {K} to the {O} of {C}."),
        ("Where did {name} move in {key}?", "Which city did {name} move to in {key}?"),
    ),
    "lived": Relation(
        "cities",
        (
            "{n} lived in {C}, the {O} of them starting in {K}.",
            "{n} made {poss} home in {C}, the {O} from {K} on.",
        ),
        (
            "Starting in {K}, {n} lived in the {O} of {C}.",
            "From {K} on, {n} made {poss} home in the {O} of {C}.",
        ),
        ("Where did {name} live starting in {key}?", "Where did {name} live from {key} on?"),
    ),
    "joined": Relation(
        "employers",
        (
            "{n} joined {C}, the {O} of them in {K}.",
            "{n} went to work for {C}, for the {O} in {K}.",
        ),
        ("In {K}, {n} joined the {O} of {C}.", "In {K}, {n} went to work for the {O} of {C}."),
        ("Which company did {name} join in {key}?", "Who did {name} go to work for in {key}?"),
    ),
}


@dataclass(frozen=True)
class DirectionSpec:
    """The knobs of the ``direction`` task (``probe.task.direction`` in conf/probe/direction.yaml)."""

    min_candidates: int = 2
    max_candidates: int = 3
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
                    f"other candidate, and the ordinals ({', '.join(ORDINALS)}) name at most "
                    f"{MAX_CANDIDATES}."
                )
        share = self.right_cue_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise PretrainlabError(
                f"direction.right_cue_share={share!r} is not valid: expected a number in [0, 1], "
                "the share of rows whose ordinal follows the candidates (0.5: balanced subsets)."
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> DirectionSpec:
        """The spec from a config mapping (``None``: the defaults); unknown keys are errors."""
        cfg = dict(cfg or {})
        check_known_keys("probe.task.direction", cfg, [f.name for f in fields(cls)])
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
    """One rendered list sentence: its text and relation, the candidates in listed order, each
    candidate's offset in the sentence, the position the ordinal names and the one key."""

    sentence: str
    relation: str
    candidates: list[str]
    candidate_starts: list[int]
    position: int
    key: str


def list_sentence(
    rng: random.Random, world: World, person: Person, subject: str, n: int, right: bool
) -> Listing:
    """A list sentence about ``person`` with ``n`` random candidates, the ordinal of a uniform
    position among them and a random key; the ordinal follows the candidates iff ``right``."""
    relation = rng.choice(sorted(RELATIONS))
    rel = RELATIONS[relation]
    candidates = rng.sample(_pools(world.seed)[rel.pool], n)
    position = rng.randrange(n)
    key = rng.choice(KEYS[rng.choice(sorted(KEYS))])
    template = rng.choice(rel.right if right else rel.left)
    c_text, c_offsets = _listing(candidates)
    values = {"n": subject, "poss": person.poss, "C": c_text, "O": ORDINALS[position], "K": key}
    sentence, offsets = render(template, values)
    starts = [offsets["C"] + o for o in c_offsets]
    return Listing(sentence, relation, candidates, starts, position, key)


def _occurrences(text: str, word: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text))


def _clean(context: str, listing: Listing) -> bool:
    """Every candidate occurs once, and the only ordinal and key-like words are the row's own
    ordinal and key, once each (no "May" or "first" in filler, no year inside a name)."""
    cues = sorted(m.lower() for m in _CUES.findall(context))
    own = sorted((ORDINALS[listing.position], listing.key.lower()))
    return cues == own and all(_occurrences(context, c) == 1 for c in listing.candidates)


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
        candidate, ordinal or key occurs more than once (a name inside another, "May" in filler)
        or another ordinal or key-like word occurs at all."""
        for _ in range(100):
            row, listing = self._draw(rng, right)
            if _clean(row["context"], listing):
                return row
        raise RuntimeError("direction: no row with unique candidates, ordinal and key in 100 draws")

    def _draw(self, rng: random.Random, right: bool) -> tuple[dict, Listing]:
        person = rng.choice(self.world.people)
        n = rng.randint(self.spec.min_candidates, self.spec.max_candidates)
        lead = rng.random() < 0.5  # a fact-free first sentence moves the list along
        subject = person.subj if lead else person.name
        listing = list_sentence(rng, self.world, person, subject, n, right)
        prefix = f"{person.name} {verb_phrase(rng, self.world)}. " if lead else ""
        question = rng.choice(RELATIONS[listing.relation].questions)
        answer = listing.position
        row = {
            "question": question.format(name=person.name, poss=person.poss, key=listing.key),
            "context": prefix + listing.sentence,
            "answers": {
                "text": [listing.candidates[answer]],
                "answer_start": [len(prefix) + listing.candidate_starts[answer]],
            },
            "subset": SUBSETS[0] if right else SUBSETS[1],
            "candidates": listing.candidates,
        }
        return row, listing


def with_history(sentences: list[str], world: World, person: Person) -> list[str]:
    """``sentences`` (a biography of ``person``) with one list sentence about them somewhere
    after the first sentence, in about :data:`HISTORY_SHARE` of biographies. Its own random
    stream is keyed by the text, so the corpus stream (and every other document) stays as is."""
    rng = random.Random("pretrainlab-direction-history-" + " ".join(sentences))
    if rng.random() >= HISTORY_SHARE:
        return sentences
    n = rng.randint(*HISTORY_CANDIDATES)
    listing = list_sentence(rng, world, person, person.subj, n, rng.random() < 0.5)
    at = rng.randint(1, len(sentences))
    return [*sentences[:at], listing.sentence, *sentences[at:]]
