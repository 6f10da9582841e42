"""Biographies: a person's facts in varied order and paraphrase, with pronouns referring back."""

from __future__ import annotations

import random

from pretrainlab.embedded.common import article, cap, filler_sentence
from pretrainlab.embedded.direction import with_history
from pretrainlab.embedded.facts import TEMPLATES, slots
from pretrainlab.embedded.world import Person, World

_FRIEND_TEMPLATES = (
    "{n} is a close friend of {q}, who works for {q_employer}.",
    "{n} often visits {q}, who lives in {q_home}.",
    "{n} regularly writes letters to {q}, {q_occ_a} at {q_employer}.",
)


def biography_document(
    rng: random.Random, world: World, people: tuple[Person, ...] | None = None
) -> list[str]:
    """One person's biography (of ``people``; default: anyone in the world): every fact stated
    once, shuffled, name first then pronouns; some add a list of places or employers with
    their years or months (:mod:`.direction`)."""
    person = rng.choice(people or world.people)
    groups = ["birth"] if rng.random() < 0.5 else ["birth_city", "birth_year"]
    groups += ["education"] if rng.random() < 0.6 else ["university", "field"]
    groups += ["home_city", "employer"]
    plan: list[str | None] = [*groups, *[None] * rng.randint(1, 3)]  # None: filler sentence
    if rng.random() < 0.5:
        plan.append("friend")
    rng.shuffle(plan)
    first_fact = next(i for i, g in enumerate(plan) if g in TEMPLATES)
    plan.insert(0, plan.pop(first_fact))  # the name is introduced by a fact sentence

    sentences = []
    for i, group in enumerate(plan):
        subject = person.name if i == 0 or rng.random() < 0.3 else person.subj
        if group is None:
            sentences.append(filler_sentence(rng, world, subject))
        elif group == "friend":
            friend = rng.choice(world.people)
            while friend is person:
                friend = rng.choice(world.people)
            sentences.append(
                cap(
                    rng.choice(_FRIEND_TEMPLATES).format(
                        n=subject,
                        q=friend.name,
                        q_employer=friend.employer,
                        q_home=friend.home_city,
                        q_occ_a=article(friend.occupation),
                    )
                )
            )
        else:
            values = slots(rng, world, person, subject)
            sentences.append(cap(rng.choice(TEMPLATES[group]).format(**values)))
    return with_history(sentences, world, person)  # a list sentence with an ordinal cue, sometimes
