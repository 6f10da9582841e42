"""Small text helpers shared by the genres: articles, capitals, filler sentences."""

from __future__ import annotations

import random

import datasets

from pretrainlab.data.synthetic.world import World


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


def verb_phrase(rng: random.Random, world: World) -> str:
    """A short, fact-free predicate built from filler words ("later wrote about the X")."""
    f = world.filler
    kind = rng.randrange(5)
    if kind == 0:
        return f"grew up near {article(f.adjective(rng))} {f.noun(rng)}"
    if kind == 1:
        return f"later wrote about the {f.noun(rng)} of {f.noun(rng)}"
    if kind == 2:
        return f"often {f.verb(rng)} the {f.adjective(rng)} {f.noun(rng)}"
    if kind == 3:
        return f"spent years studying the {f.noun(rng)}"
    return f"became known for {article(f.adjective(rng))} {f.noun(rng)}"


def filler_sentence(rng: random.Random, world: World, subject: str = "") -> str:
    """A sentence of generated open-class words around common function words.

    ``subject`` (a name or pronoun) is used when given, so the sentence can continue a story.
    """
    f = world.filler
    kind = rng.randrange(7 if subject else 5)
    if kind == 0:
        s = f"the {f.adjective(rng)} {f.noun(rng)} {f.verb(rng)} the {f.noun(rng)}."
    elif kind == 1:
        s = f"there was {article(f.noun(rng))} next to the {f.adjective(rng)} {f.noun(rng)}."
    elif kind == 2:
        s = f"everyone talked about the {f.adjective(rng)} {f.noun(rng)} and the {f.noun(rng)}."
    elif kind == 3:
        s = f"the {f.noun(rng)} of the {f.noun(rng)} seemed {f.adjective(rng)} that year."
    elif kind == 4:
        s = f"in the {f.noun(rng)}, the {f.noun(rng)} {f.verb(rng)} {article(f.noun(rng))}."
    elif kind == 5:
        s = f"{subject} {f.verb(rng)} {article(f.adjective(rng))} {f.noun(rng)} near the {f.noun(rng)}."
    else:
        s = f"{subject} enjoys {f.noun(rng)} and {f.adjective(rng)} {f.noun(rng)}."
    return cap(s)
