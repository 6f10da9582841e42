"""Product reviews whose polarity is a deterministic function of the text.

A clause about an aspect has the polarity of its opinion word, flipped by ``not``/``never``
(and ``barely``, used with positive words only). A sentence's polarity is its main clause's:
in "although A, B", "B, even though A" and "A, but B" that is B. Bag-of-words features see
both opinion words and the negator but not which clause or word they attach to.
"""

from __future__ import annotations

import random

from pretrainlab.embedded.common import cap, filler_sentence
from pretrainlab.embedded.lexicon import (
    BARELY_POSITIVE,
    INTENSIFIERS,
    NEGATIVE,
    POSITIVE,
    PRODUCT_ASPECTS,
)
from pretrainlab.embedded.world import Product, World

STRUCTURES = ("simple", "negated", "contrast")
# Mix of sentiment probe examples; sets how far a bag-of-words model falls short (about 0.75).
_PROBE_STRUCTURE_WEIGHTS = (0.65, 0.15, 0.2)
_LEAD_INS = (
    "I think",
    "Honestly,",
    "In my opinion,",
    "To be fair,",
    "After a week,",
    "As far as I can tell,",
    "From what I have seen,",
)
_CONTRASTS = (
    "Although {sub}, {main}.",
    "{main}, although {sub}.",
    "Even though {sub}, {main}.",
    "{main}, even though {sub}.",
    "{sub}, but {main}.",
    "While {sub}, {main}.",
    "{sub}, yet {main}.",
)


NEGATIONS = (
    "{subject} is not {word}",
    "{subject} was never {word}",
    "{subject} is not at all {word}",
    "I would not call {subject} {word}",
)


def _opinion(rng: random.Random, polarity: int) -> str:
    return rng.choice(POSITIVE if polarity > 0 else NEGATIVE)


def clause(rng: random.Random, aspect: str, polarity: int, negated: bool) -> str:
    """A lowercase clause about ``aspect`` meaning ``polarity`` (+1 or -1)."""
    subject = f"the {aspect}"
    if not negated:
        verb = rng.choice(("is", "was", "feels", "seems"))
        intensifier = f"{rng.choice(INTENSIFIERS)} " if rng.random() < 0.4 else ""
        return f"{subject} {verb} {intensifier}{_opinion(rng, polarity)}"
    if polarity < 0 and rng.random() < 0.25:
        return f"{subject} is barely {rng.choice(BARELY_POSITIVE)}"
    word = _opinion(rng, -polarity)
    template = NEGATIONS[rng.randrange(len(NEGATIONS))]
    return template.format(subject=subject, word=word)


def judgement(rng: random.Random, aspects: tuple[str, ...], polarity: int, structure: str) -> str:
    """One review sentence whose main clause has ``polarity``; ``structure`` in STRUCTURES."""
    if structure == "contrast":
        main_aspect, sub_aspect = rng.sample(aspects, 2)
        main = clause(rng, main_aspect, polarity, rng.random() < 0.4)
        sub = clause(rng, sub_aspect, -polarity, rng.random() < 0.4)
        return cap(rng.choice(_CONTRASTS).format(main=main, sub=sub))
    text = clause(rng, rng.choice(aspects), polarity, structure == "negated")
    if len(text.split()) < 5 or rng.random() < 0.3:
        text = f"{rng.choice(_LEAD_INS)} {text}"
    return cap(text + ".")


def review_intro(rng: random.Random, world: World, product: Product) -> str:
    """A neutral opening sentence naming the product."""
    kind = rng.randrange(4)
    if kind == 0:
        reviewer = rng.choice(world.people)
        return f"{reviewer.name} from {reviewer.home_city} reviewed the {product.name} {product.category}."
    if kind == 1:
        when = rng.choice(("last month", "two weeks ago", "in the spring", "for my birthday"))
        return f"I bought the {product.name} {product.category} {when}."
    if kind == 2:
        return f"My {rng.choice(('sister', 'brother', 'friend', 'neighbour'))} gave me the {product.name} as a gift."
    return f"I have used the {product.name} {product.category} for {rng.randint(2, 9)} weeks now."


def _verdict(rng: random.Random, product: Product, polarity: int) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        verb = "would recommend" if polarity > 0 else "would not recommend"
        return f"Overall, I {verb} the {product.name} to a friend."
    if kind == 1:
        return f"In the end, the {product.name} is a {_opinion(rng, polarity)} {product.category}."
    feeling = "am happy with" if polarity > 0 else "regret buying"
    return f"All things considered, I {feeling} this {product.category}."


def review_document(rng: random.Random, world: World) -> list[str]:
    """Intro, an odd number of judgements whose majority sets the verdict, then the verdict."""
    product = rng.choice(world.products)
    aspects = PRODUCT_ASPECTS[product.category]
    overall = rng.choice((1, -1))
    count = rng.choice((1, 3, 5))
    agreeing = rng.randint(count // 2 + 1, count)
    polarities = [overall] * agreeing + [-overall] * (count - agreeing)
    rng.shuffle(polarities)
    sentences = [review_intro(rng, world, product)]
    for polarity in polarities:
        sentences.append(judgement(rng, aspects, polarity, rng.choice(STRUCTURES)))
        if rng.random() < 0.3:
            sentences.append(filler_sentence(rng, world))
    sentences.append(_verdict(rng, product, overall))
    return sentences


def sentiment_example(rng: random.Random, world: World, label: int) -> str:
    """A short review (optional neutral intro + one judgement); ``label`` 1 is positive."""
    product = rng.choice(world.products)
    structure = rng.choices(STRUCTURES, weights=_PROBE_STRUCTURE_WEIGHTS)[0]
    text = judgement(rng, PRODUCT_ASPECTS[product.category], 1 if label else -1, structure)
    if rng.random() < 0.6:
        text = f"{review_intro(rng, world, product)} {text}"
    return text
