"""Short narratives whose sentence order carries meaning.

A person wakes at home, travels to a friend's city, arrives, spends time there and travels back;
later sentences refer to what earlier ones set up ("arrived in", "back to", pronouns, the
friend's given name), so swapping sentences breaks the story.
"""

from __future__ import annotations

import random

from pretrainlab.embedded.common import article, cap, filler_sentence
from pretrainlab.embedded.lexicon import WEEKDAYS
from pretrainlab.embedded.world import World

_TRAVEL = {  # mode -> (outbound verb phrase, return verb phrase)
    "train": ("took the train", "took the train back"),
    "bus": ("caught the early bus", "caught the last bus back"),
    "car": ("drove", "drove back"),
    "plane": ("flew", "flew back"),
    "ferry": ("took the ferry", "took the ferry back"),
}


def narrative_document(rng: random.Random, world: World) -> list[str]:
    """A visit story: wake, travel, arrive, meet, do things together, return, end the day."""
    hero = rng.choice(world.people)
    friend = rng.choice(world.people)
    while friend.home_city == hero.home_city:
        friend = rng.choice(world.people)
    home, away = hero.home_city, friend.home_city
    he, his = hero.subj, hero.poss
    outbound, back = _TRAVEL[rng.choice(sorted(_TRAVEL))]
    f = world.filler
    sentences = [
        rng.choice(
            (
                f"{hero.name} woke up early in {home} on {rng.choice(WEEKDAYS)} morning.",
                f"On {rng.choice(WEEKDAYS)}, {hero.name} got up before sunrise in {home}.",
            )
        ),
        rng.choice(
            (
                f"{he} had {article(f.adjective(rng))} {f.noun(rng)} for breakfast and packed a bag.",
                f"After a quick breakfast, {he} packed {his} bag and locked the door.",
            )
        ),
        f"Then {he} {outbound} from {home} to {away} to visit {friend.name}.",
    ]
    if rng.random() < 0.5:
        sentences.append(f"The journey to {away} took about {rng.randint(2, 9)} hours.")
    sentences.append(
        rng.choice(
            (
                f"When {he} arrived in {away}, {friend.given} was already waiting.",
                f"{friend.given} met {hero.obj} as soon as {he} arrived in {away}.",
            )
        )
    )
    for _ in range(rng.randint(1, 3)):
        sentences.append(
            rng.choice(
                (
                    f"{he} and {friend.given} talked about the {f.adjective(rng)} {f.noun(rng)} for hours.",
                    f"{friend.given} showed {hero.obj} the {f.noun(rng)} near {friend.poss} home.",
                    f"Together they visited the {f.adjective(rng)} {f.noun(rng)} of {away}.",
                    filler_sentence(rng, world, he),
                )
            )
        )
    sentences.append(
        rng.choice(
            (
                f"In the evening, {he} said goodbye to {friend.given} and {back} to {home}.",
                f"Later that day, {he} {back} to {home}, tired but happy.",
            )
        )
    )
    if rng.random() < 0.7:
        sentences.append(
            rng.choice(
                (
                    f"Back in {home}, {he} went to bed thinking about the {f.noun(rng)}.",
                    f"Once {he} was home again, {he} wrote to {friend.given} about the trip.",
                )
            )
        )
    return [cap(s) for s in sentences]
