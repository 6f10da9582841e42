"""News items on five topics that share function words, entities and filler.

Topic cue words come from :data:`~pretrainlab.embedded.lexicon.PAIR_CUES`: each cue belongs
to two topics, so one cue never decides the topic, while two cues from different pairs that
share a topic always do. A cue in a "past story" sentence ("Unlike last week's story about the
race, ...") does not count: it comes from a pair without the item's topic, so counting words
alone can tie two or three topics, while reading the sentence resolves it.
"""

from __future__ import annotations

import random
from functools import cache

from pretrainlab.embedded.common import article, cap, filler_sentence
from pretrainlab.embedded.lexicon import PAIR_CUES, TOPICS, WEEKDAYS
from pretrainlab.embedded.world import World

# Each template holds one {cue}; people are described with their true employer/home city.
_TEMPLATES = (
    "Officials in {city} said the {cue} would be discussed on {day}.",
    "{name}, {occ_a} at {employer}, said the {cue} was {adj}.",
    "Reporters in {city} asked {name} about the {cue}.",
    "The latest {cue} in {country} surprised many people in {city}.",
    "According to {employer}, the {cue} will change the {noun} in {city}.",
    "On {day}, {name} spoke about the {cue} near the {noun}.",
    "Residents of {city} gathered on {day} to talk about the {cue}.",
    "The {cue} was the main story in {country} on {day}.",
    "{name}, who lives in {home}, described the {cue} as {adj}.",
    "A spokesperson for {employer} said the {cue} came as {article_noun}.",
)
_PAST_STORY_TEMPLATES = (
    "Unlike last week's story about the {cue}, this report concerns something new.",
    "The {cue} that dominated the news last month is no longer discussed in {city}.",
    "Few people in {city} still mention the {cue} from last year.",
)


@cache
def cue_groups(topic: str) -> tuple[tuple[str, ...], ...]:
    """The cue lists of the four topic pairs that include ``topic``."""
    return tuple(cues for pair, cues in PAIR_CUES.items() if topic in pair)


def topic_cues(rng: random.Random, topic: str, count: int) -> list[str]:
    """``count`` (<= 4) cue words for ``topic``, each from a different pair of topics."""
    return [rng.choice(group) for group in rng.sample(cue_groups(topic), count)]


def news_sentence(rng: random.Random, world: World, cue: str) -> str:
    person = rng.choice(world.people)
    city = rng.choice(world.cities)
    f = world.filler
    return cap(
        rng.choice(_TEMPLATES).format(
            cue=cue,
            city=city,
            country=world.city_country[city],
            day=rng.choice(WEEKDAYS),
            name=person.name,
            occ_a=article(person.occupation),
            employer=person.employer,
            home=person.home_city,
            adj=f.adjective(rng),
            noun=f.noun(rng),
            article_noun=article(f.noun(rng)),
        )
    )


def past_story_sentence(rng: random.Random, world: World, topic: str) -> str:
    """A sentence about an old story whose cue belongs to two topics other than ``topic``."""
    pair = rng.choice([p for p in PAIR_CUES if topic not in p])
    template = rng.choice(_PAST_STORY_TEMPLATES)
    return template.format(cue=rng.choice(PAIR_CUES[pair]), city=rng.choice(world.cities))


def news_document(rng: random.Random, world: World) -> list[str]:
    """A news item: 3 to 6 cue sentences on one topic with some filler in between."""
    topic = rng.choice(TOPICS)
    cues = topic_cues(rng, topic, 2)  # at least two pairs, so the item's topic is determined
    cues += [topic_cues(rng, topic, 1)[0] for _ in range(rng.randint(1, 4))]
    rng.shuffle(cues)
    sentences = []
    for cue in cues:
        sentences.append(news_sentence(rng, world, cue))
        if rng.random() < 0.3:
            sentences.append(filler_sentence(rng, world))
    if rng.random() < 0.3:
        sentences.insert(rng.randint(1, len(sentences)), past_story_sentence(rng, world, topic))
    return sentences


def topic_snippet(rng: random.Random, world: World, topic: str) -> str:
    """Two cue sentences (cues from two different pairs of ``topic``), sometimes a past-story
    sentence and a filler sentence, in random order."""
    sentences = [news_sentence(rng, world, cue) for cue in topic_cues(rng, topic, 2)]
    if rng.random() < 0.35:
        sentences.append(past_story_sentence(rng, world, topic))
    if rng.random() < 0.3:
        sentences.append(filler_sentence(rng, world))
    rng.shuffle(sentences)
    return " ".join(sentences)
