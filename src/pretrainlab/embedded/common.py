"""Small text helpers shared by the genres: articles, capitals, filler sentences."""

from __future__ import annotations

import random
import re

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


# Templates of filler words, one picked by one rng.randrange. Slots: {noun}, {adjective},
# {verb} (each one draw of that word class, left to right as the template reads); {a_noun},
# {a_adjective}: the same with the indefinite article; {s}: the subject.
_VERB_PHRASES = (
    "grew up near {a_adjective} {noun}",
    "later wrote about the {noun} of {noun}",
    "often {verb} the {adjective} {noun}",
    "spent years studying the {noun}",
    "became known for {a_adjective} {noun}",
)
_FILLER_SENTENCES = (
    "the {adjective} {noun} {verb} the {noun}.",
    "there was {a_noun} next to the {adjective} {noun}.",
    "everyone talked about the {adjective} {noun} and the {noun}.",
    "the {noun} of the {noun} seemed {adjective} that year.",
    "in the {noun}, the {noun} {verb} {a_noun}.",
    # the last two continue a story: only with a subject
    "{s} {verb} {a_adjective} {noun} near the {noun}.",
    "{s} enjoys {noun} and {adjective} {noun}.",
)
_SLOT = re.compile(r"\{(a_)?(\w+)\}")


def _fill(template: str, rng: random.Random, world: World, subject: str = "") -> str:
    """``template`` with its slots filled in reading order (re.sub calls ``draw`` left to
    right), so the words are drawn in that order."""

    def draw(slot: re.Match) -> str:
        if slot[2] == "s":
            return subject
        word = getattr(world.filler, slot[2])(rng)
        return article(word) if slot[1] else word

    return _SLOT.sub(draw, template)


def verb_phrase(rng: random.Random, world: World) -> str:
    """A short, fact-free predicate built from filler words ("later wrote about the X")."""
    return _fill(_VERB_PHRASES[rng.randrange(len(_VERB_PHRASES))], rng, world)


def filler_sentence(rng: random.Random, world: World, subject: str = "") -> str:
    """A sentence of generated open-class words around common function words.

    ``subject`` (a name or pronoun) is used when given, so the sentence can continue a story.
    """
    kind = rng.randrange(len(_FILLER_SENTENCES) if subject else len(_FILLER_SENTENCES) - 2)
    return cap(_fill(_FILLER_SENTENCES[kind], rng, world, subject))
