"""Fact sentences about a person: several paraphrases per relation, rendered with offsets.

Slot names equal :data:`~pretrainlab.embedded.world.RELATIONS` where a slot holds a
relation's value, so :func:`render` reports each answer's character offset by relation.
Other slots: ``n`` (subject: name or pronoun), ``name`` (always the name; every template names the person
through ``n`` or ``name``), ``subj``/``poss``
(pronouns), ``country`` (of the birth city), ``occ_a`` ("an engineer"), ``join_year``, ``vp``
(a fact-free predicate).
"""

from __future__ import annotations

import random
from string import Formatter

from pretrainlab.embedded.common import article, cap, verb_phrase
from pretrainlab.embedded.world import Person, World

TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth": (
        "{n} was born in {birth_city} in {birth_year}.",
        "{n} was born in {birth_year} in {birth_city}.",
        "Born in {birth_city} in {birth_year}, {n} {vp}.",
        "{n} was born in {birth_city}, {country}, in {birth_year}.",
    ),
    "birth_city": (
        "{n} was born in {birth_city}, {country}.",
        "{birth_city} is the birthplace of {name}.",
        "{name}, a native of {birth_city}, {vp}.",
        "{n} grew up in {birth_city}, where {subj} was born.",
    ),
    "birth_year": (
        "{n} was born in the year {birth_year}.",
        "{name}, born in {birth_year}, {vp}.",
        "The year {birth_year} saw the birth of {name}.",
    ),
    "home_city": (
        "{n} currently lives in {home_city}.",
        "{home_city} is where {name} lives today.",
        "{n} makes {poss} home in {home_city}.",
        "These days {name} lives in {home_city}.",
    ),
    "education": (
        "{n} studied {field} at {university}.",
        "{n} graduated from {university} with a degree in {field}.",
        "At {university}, {name} studied {field}.",
        "{n} earned a degree in {field} from {university}.",
    ),
    "university": (
        "{n} studied at {university}.",
        "{n} graduated from {university}.",
        "{n} is a graduate of {university}.",
    ),
    "field": (
        "{n} holds a degree in {field}.",
        "{n} studied {field} at university.",
        "{n} completed a degree in the field of {field}.",
    ),
    "employer": (
        "{n} works as {occ_a} for {employer}.",
        "{n} is employed by {employer}.",
        "{employer} employs {name} as {occ_a}.",
        "{n} has worked at {employer} since {join_year}.",
        "{n} joined {employer} in {join_year}.",
    ),
}

# Template groups that state each relation; the single-relation group comes first.
GROUPS_FOR: dict[str, tuple[str, ...]] = {
    "birth_city": ("birth_city", "birth"),
    "birth_year": ("birth_year", "birth"),
    "home_city": ("home_city",),
    "university": ("university", "education"),
    "field": ("field", "education"),
    "employer": ("employer",),
}

_FORMATTER = Formatter()


def slots(rng: random.Random, world: World, person: Person, subject: str) -> dict[str, str]:
    """Values for every slot of :data:`TEMPLATES`; ``subject`` fills ``n``."""
    return {
        "n": subject,
        "name": person.name,
        "subj": person.subj,
        "poss": person.poss,
        "birth_city": person.birth_city,
        "birth_year": str(person.birth_year),
        "country": world.city_country[person.birth_city],
        "home_city": person.home_city,
        "university": person.university,
        "field": person.field,
        "employer": person.employer,
        "occ_a": article(person.occupation),
        "join_year": str(person.join_year),
        "vp": verb_phrase(rng, world),
    }


def render(template: str, values: dict[str, str]) -> tuple[str, dict[str, int]]:
    """Fill ``template``; return the sentence and the character offset of each slot."""
    parts: list[str] = []
    offsets: dict[str, int] = {}
    pos = 0
    for literal, slot, _, _ in _FORMATTER.parse(template):
        parts.append(literal)
        pos += len(literal)
        if slot is not None:
            offsets.setdefault(slot, pos)
            parts.append(values[slot])
            pos += len(values[slot])
    return cap("".join(parts)), offsets
