"""Small text helpers shared by the genres: articles, capitals, filler sentences."""

from __future__ import annotations

import random

import datasets

from pretrainlab.embedded.world import World


def qa_features(**extra: datasets.Value | datasets.List) -> datasets.Features:
    """SQuAD-format columns (``id``, ``question``, ``context``, ``answers``) plus a task's own."""
    string = datasets.Value("string")
    answers = {
        "text": datasets.List(string),
        "answer_start": datasets.List(datasets.Value("int32")),
    }
    return datasets.Features(
        {"id": string, "question": string, "context": string, "answers": answers, **extra}
    )


def cap(sentence: str) -> str:
    """Upper-case the first character only (keeps character offsets)."""
    return sentence[:1].upper() + sentence[1:]


def article(word: str) -> str:
    """``word`` with its indefinite article ("an engineer", "a nurse")."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


# Templates as functions of (rng, filler[, subject]), drawn by one rng.randrange: each draws
# its words left to right, as the f-strings read.
_VERB_PHRASES = (
    lambda rng, f: f"grew up near {article(f.adjective(rng))} {f.noun(rng)}",
    lambda rng, f: f"later wrote about the {f.noun(rng)} of {f.noun(rng)}",
    lambda rng, f: f"often {f.verb(rng)} the {f.adjective(rng)} {f.noun(rng)}",
    lambda rng, f: f"spent years studying the {f.noun(rng)}",
    lambda rng, f: f"became known for {article(f.adjective(rng))} {f.noun(rng)}",
)
_FILLER_SENTENCES = (
    lambda rng, f, _: f"the {f.adjective(rng)} {f.noun(rng)} {f.verb(rng)} the {f.noun(rng)}.",
    lambda rng, f, _: (
        f"there was {article(f.noun(rng))} next to the {f.adjective(rng)} {f.noun(rng)}."
    ),
    lambda rng, f, _: (
        f"everyone talked about the {f.adjective(rng)} {f.noun(rng)} and the {f.noun(rng)}."
    ),
    lambda rng, f, _: (
        f"the {f.noun(rng)} of the {f.noun(rng)} seemed {f.adjective(rng)} that year."
    ),
    lambda rng, f, _: (
        f"in the {f.noun(rng)}, the {f.noun(rng)} {f.verb(rng)} {article(f.noun(rng))}."
    ),
    # the last two continue a story: only with a subject
    lambda rng, f, s: (
        f"{s} {f.verb(rng)} {article(f.adjective(rng))} {f.noun(rng)} near the {f.noun(rng)}."
    ),
    lambda rng, f, s: f"{s} enjoys {f.noun(rng)} and {f.adjective(rng)} {f.noun(rng)}.",
)


def verb_phrase(rng: random.Random, world: World) -> str:
    """A short, fact-free predicate built from filler words ("later wrote about the X")."""
    return _VERB_PHRASES[rng.randrange(len(_VERB_PHRASES))](rng, world.filler)


def filler_sentence(rng: random.Random, world: World, subject: str = "") -> str:
    """A sentence of generated open-class words around common function words.

    ``subject`` (a name or pronoun) is used when given, so the sentence can continue a story.
    """
    kind = rng.randrange(len(_FILLER_SENTENCES) if subject else len(_FILLER_SENTENCES) - 2)
    return cap(_FILLER_SENTENCES[kind](rng, world.filler, subject))
