"""Sentence pairs: does sentence B restate the fact of sentence A?

Positives restate A's fact (same person, relation and value) with another template. Negatives
are equally true statements that say something else: the same person's other relation, another
person with the same value, or a namesake (shared given or family name) on the same relation.
Every B uses a template other than A's, so template identity gives nothing away.
"""

from __future__ import annotations

import random

from pretrainlab.embedded.common import cap
from pretrainlab.embedded.facts import GROUPS_FOR, TEMPLATES, slots
from pretrainlab.embedded.world import RELATIONS, Person, World

LABEL_NAMES = ["different", "same"]


class PairMaker:
    """Draws pair rows for one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.namesakes: dict[str, list[Person]] = {}
        for person in world.people:
            given, family = person.name.split()
            self.namesakes.setdefault(given, []).append(person)
            self.namesakes.setdefault(family, []).append(person)

    def _sentence(
        self, rng: random.Random, person: Person, relation: str, avoid: str
    ) -> tuple[str, str]:
        templates = [t for t in TEMPLATES[GROUPS_FOR[relation][0]] if t != avoid]
        template = rng.choice(templates)
        return template.format(**slots(rng, self.world, person, person.name)), template

    def __call__(self, rng: random.Random, label: int) -> dict:
        person = rng.choice(self.world.people)
        relation = rng.choice(RELATIONS)
        text, template = self._sentence(rng, person, relation, avoid="")
        other, other_relation = person, relation
        if not label:
            kind = rng.randrange(3)
            if kind == 0:
                other_relation = rng.choice([r for r in RELATIONS if r != relation])
            else:
                candidates = (
                    self.world.people_by_value[(relation, person.value(relation))]
                    if kind == 1
                    else self.namesakes[rng.choice(person.name.split())]
                )
                candidates = [p for p in candidates if p is not person] or list(self.world.people)
                other = rng.choice(candidates)
                while other is person:
                    other = rng.choice(self.world.people)
        text_pair, _ = self._sentence(rng, other, other_relation, avoid=template)
        return {"text": cap(text), "text_pair": cap(text_pair), "label": label}
