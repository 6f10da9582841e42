"""The embedded ``tagging`` task: entity tags (PER, LOC, ORG in IOB2) of short sentences about the
world's people, places and companies, with one *target* name per row whose type only one side
of its context decides.

A target is one of the world's one-word city names. Used alone it is a place (``B-LOC``); one
of the world's company suffixes after it ("Varno Systems", as its employers are "Brennic Labs")
makes it the first word of a company (``B-ORG I-ORG``). ``right_context`` rows decide the type
that way, so every word up to and including the target is drawn the same whatever the type
("She visited Varno in 1990." / "She visited Varno Systems in 1990."): a left-to-right reader
labelling the target's first sub-token is at chance by construction, a bidirectional one reads
the next word. ``left_context`` rows put a type word before the target ("She visited the town
Varno again." / "... the company Varno again."), and what follows it is drawn the same whatever
the type: the negative control, solved from the left. Subjects are a pronoun or a person of the
world (``B-PER I-PER``); "with NAME" continuations add a second person.

``target`` holds the [start, end) words scored per subset: the target and the word after it
(the suffix or the first word of the continuation), so ``f1_right_context`` and
``f1_left_context`` are entity F1 on the words whose tags the cue decides.
"""

from __future__ import annotations

import random
from functools import lru_cache

import datasets

from pretrainlab.embedded.world import World, build_world

SUBSETS = ("right_context", "left_context")
TYPES = ("PER", "LOC", "ORG")
LABEL_NAMES = ["O", *(f"{p}-{t}" for t in TYPES for p in ("B", "I"))]
TAG = {name: i for i, name in enumerate(LABEL_NAMES)}
PRONOUNS = ("She", "He", "They")
VERBS = (("visited",), ("wrote", "about"), ("left",), ("spoke", "of"), ("returned", "to"))
ENDINGS = (("again",), ("last", "year"))
TYPE_WORDS = {"LOC": ("city", "town"), "ORG": ("company", "firm")}  # left_context cues
NOTE = (
    "Entity tags (IOB2: PER, LOC, ORG) of short sentences; each row's target name is a place "
    "alone or the first word of a company with a suffix after it (right_context rows: only the "
    "next word decides) or after a type word before it (left_context rows); f1_<subset> scores "
    "the target and the word after it."
)

FEATURES = datasets.Features(
    {
        "tokens": datasets.List(datasets.Value("string")),
        "tags": datasets.List(datasets.Value("int64")),
        "subset": datasets.Value("string"),  # right_context | left_context
        "target": datasets.List(datasets.Value("int64")),  # [start, end) words of the cue's tags
    }
)


@lru_cache(maxsize=4)
def _pools(seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Target names (one-word cities no entity name extends) and company suffixes (the last
    word of the world's two-word employers), each sorted."""
    world = build_world(seed)
    heads = sorted(c for c in world.cities if " " not in c and not world.is_proper_prefix(c))
    suffixes = sorted({e.split()[1] for e in world.employers if len(e.split()) == 2})
    return tuple(heads), tuple(suffixes)


def _person(rng: random.Random, world: World) -> list[tuple[str, str]]:
    """A person's name as (word, tag) pairs: ``B-PER I-PER``."""
    given, family = rng.choice(world.people).name.split()
    return [(given, "B-PER"), (family, "I-PER")]


def _continuation(rng: random.Random, world: World) -> list[tuple[str, str]]:
    """What follows the target, drawn alike for every type."""
    kind = rng.randrange(4)
    if kind == 0:
        return [("in", "O"), (str(rng.randint(1950, 2024)), "O")]
    if kind == 1:
        return [("with", "O"), *_person(rng, world)]
    return [(w, "O") for w in ENDINGS[kind - 2]]


class TaggingMaker:
    """Draws ``tagging`` rows for one world: right_context and left_context alternately."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.heads, self.suffixes = _pools(world.seed)

    def make_row(self, rng: random.Random, index: int, _split: str) -> dict:
        return self(rng, index % 2 == 0)

    def __call__(self, rng: random.Random, right: bool) -> dict:
        """One row; the type (LOC or ORG) is a fair coin drawn after the words before it."""
        pronoun = rng.random() < 0.5
        words = [(rng.choice(PRONOUNS), "O")] if pronoun else _person(rng, self.world)
        words += [(w, "O") for w in rng.choice(VERBS)]
        head = rng.choice(self.heads)
        kind = rng.choice(("LOC", "ORG"))
        if right:
            start = len(words)
            words.append((head, f"B-{kind}"))
            if kind == "ORG":
                words.append((rng.choice(self.suffixes), "I-ORG"))
        else:
            words += [("the", "O"), (rng.choice(TYPE_WORDS[kind]), "O")]
            start = len(words)
            words.append((head, f"B-{kind}"))
        words += [*_continuation(rng, self.world), (".", "O")]
        return {
            "tokens": [w for w, _ in words],
            "tags": [TAG[t] for _, t in words],
            "subset": SUBSETS[0] if right else SUBSETS[1],
            "target": [start, start + 2],
        }


def row_key(row: dict) -> tuple[str, ...]:
    """Rows are distinct by their words."""
    return tuple(row["tokens"])
