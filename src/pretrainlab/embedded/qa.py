"""Extractive QA over short, freshly composed biography paragraphs.

An answer "needs right context" when it is a proper prefix of another entity name of the world
("Brennic Labs" while "Brennic Labs International" exists): at the answer's last word a
left-to-right reader cannot know the span ends there. Such paragraphs usually also mention
another person holding the longer name.
"""

from __future__ import annotations

import random

from pretrainlab.embedded.facts import GROUPS_FOR, TEMPLATES, render, slots
from pretrainlab.embedded.world import RELATIONS, Person, World

QUESTIONS: dict[str, tuple[str, ...]] = {
    "birth_city": (
        "Where was {} born?",
        "In which city was {} born?",
        "What is the birthplace of {}?",
    ),
    "birth_year": ("When was {} born?", "In what year was {} born?", "What year was {} born in?"),
    "home_city": (
        "Where does {} live?",
        "Which city does {} live in?",
        "In which city does {} live today?",
    ),
    "university": (
        "Which university did {} attend?",
        "Where did {} study?",
        "From which institution did {} graduate?",
    ),
    "field": (
        "What did {} study?",
        "What subject did {} study?",
        "In which field does {} hold a degree?",
    ),
    "employer": ("Which company does {} work for?", "Who employs {}?", "Where does {} work?"),
}
_GROUP_RELATIONS = {
    "birth": {"birth_city", "birth_year"},
    "education": {"university", "field"},
    **{relation: {relation} for relation in RELATIONS},
}
_RELATION_WORDS = ("colleague", "neighbour", "cousin", "old friend")


class QAMaker:
    """Draws QA rows for one world; ``pools[relation][needs_rc]`` are the eligible people."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.pools: dict[str, dict[bool, list[Person]]] = {
            r: {True: [], False: []} for r in RELATIONS
        }
        for person in world.people:
            for relation in RELATIONS:
                rc = world.is_proper_prefix(person.value(relation))
                self.pools[relation][rc].append(person)
        self.rc_relations = [r for r in RELATIONS if self.pools[r][True]]
        # (relation, value) -> people whose value for relation extends ``value`` by more words
        self.extended_by: dict[tuple[str, str], list[Person]] = {}
        for (relation, value), people in world.people_by_value.items():
            words = value.split()
            for k in range(1, len(words)):
                self.extended_by.setdefault((relation, " ".join(words[:k])), []).extend(people)

    def __call__(self, rng: random.Random, needs_rc: bool) -> dict:
        """One row without ``id``; the answer needs right context iff ``needs_rc``."""
        relation = rng.choice(self.rc_relations if needs_rc else RELATIONS)
        person = rng.choice(self.pools[relation][needs_rc])
        answer = person.value(relation)

        answer_group = rng.choice(GROUPS_FOR[relation])
        groups, covered = [answer_group], set(_GROUP_RELATIONS[answer_group])
        for group in rng.sample(list(_GROUP_RELATIONS), len(_GROUP_RELATIONS)):
            if len(groups) < 4 and not _GROUP_RELATIONS[group] & covered:
                groups.append(group)
                covered |= _GROUP_RELATIONS[group]
        groups = groups[: rng.randint(2, 4)]
        rng.shuffle(groups)
        sentences, start = [], -1
        offset = 0
        for i, group in enumerate(groups):
            subject = person.name if i == 0 or rng.random() < 0.4 else person.subj
            sentence, offsets = render(
                rng.choice(TEMPLATES[group]), slots(rng, self.world, person, subject)
            )
            if group == answer_group:
                start = offset + offsets[relation]
            sentences.append(sentence)
            offset += len(sentence) + 1
        if rng.random() < (0.8 if needs_rc else 0.5):
            sentences.append(self._distractor(rng, person, relation, answer))
        context = " ".join(sentences)
        return {
            "question": rng.choice(QUESTIONS[relation]).format(person.name),
            "context": context,
            "answers": {"text": [answer], "answer_start": [start]},
            "needs_right_context": self.world.is_proper_prefix(answer),
        }

    def _distractor(self, rng: random.Random, person: Person, relation: str, answer: str) -> str:
        """A true fact sentence about someone else with another value for ``relation``,
        preferring a value that extends ``answer``."""
        longer = self.extended_by.get((relation, answer))
        if longer:
            other = rng.choice(longer)
        else:
            other = rng.choice(self.world.people)
            while other.value(relation) == answer:
                other = rng.choice(self.world.people)
        subject = f"{person.poss} {rng.choice(_RELATION_WORDS)} {other.name}"
        sentence, _ = render(
            rng.choice(TEMPLATES[GROUPS_FOR[relation][0]]), slots(rng, self.world, other, subject)
        )
        return sentence
