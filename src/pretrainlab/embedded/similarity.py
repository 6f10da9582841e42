"""The embedded ``similarity`` task: graded pairs of short texts about one person of the world,
scored by how many facts they share (STS-B style, 0 to 5).

Each text states :data:`FACTS_PER_TEXT` of the person's facts (relations of
:data:`~pretrainlab.embedded.world.RELATIONS`), one sentence each, the first naming the person
and the rest a pronoun. ``text_pair`` restates ``shared`` of ``text``'s facts in another
template (a paraphrase: same relation and value, other words) and states the person's other
relations for the rest, so the score ``5 * shared / FACTS_PER_TEXT`` is fixed by the facts
alone; ``shared`` is uniform over 0..FACTS_PER_TEXT. A bag-of-words cosine is a classical
check that the grade is in the words (shared values are shared words); an encoder has to see
that "was born in X" and "X is the birthplace of" state one fact.
"""

from __future__ import annotations

import random

from pretrainlab.data.tasks.sts import FEATURES  # noqa: F401 (the columns of both readers)
from pretrainlab.embedded.facts import GROUPS_FOR, TEMPLATES, render, slots
from pretrainlab.embedded.world import RELATIONS, Person, World

FACTS_PER_TEXT = 3  # at most half the relations, so a pair can share none
SCORE_RANGE = (0.0, 5.0)
NOTE = (
    f"Pairs of {FACTS_PER_TEXT}-sentence texts about one person; the score (0-5) is 5 x the "
    f"share of the {FACTS_PER_TEXT} facts both texts state (restated in other words)."
)


class SimilarityMaker:
    """Draws ``similarity`` rows for one world."""

    def __init__(self, world: World) -> None:
        self.world = world

    def make_row(self, rng: random.Random, index: int, _split: str) -> dict:
        """Row ``index``: ``shared = index mod (FACTS_PER_TEXT + 1)``, so every grade is as
        frequent as every other in each split."""
        return self(rng, index % (FACTS_PER_TEXT + 1))

    def __call__(self, rng: random.Random, shared: int) -> dict:
        person = rng.choice(self.world.people)
        first = rng.sample(RELATIONS, FACTS_PER_TEXT)
        rest = [r for r in RELATIONS if r not in first]
        second = rng.sample(first, shared) + rng.sample(rest, FACTS_PER_TEXT - shared)
        rng.shuffle(second)
        text, used = self._text(rng, person, first, {})
        text_pair, _ = self._text(rng, person, second, used)
        return {"text": text, "text_pair": text_pair, "label": 5.0 * shared / FACTS_PER_TEXT}

    def _text(
        self, rng: random.Random, person: Person, relations: list[str], avoid: dict[str, str]
    ) -> tuple[str, dict[str, str]]:
        """One sentence per relation (its single-relation templates, never ``avoid``'s template
        for it); returns the text and the template used for each relation."""
        sentences, used = [], {}
        for i, relation in enumerate(relations):
            options = [t for t in TEMPLATES[GROUPS_FOR[relation][0]] if t != avoid.get(relation)]
            used[relation] = rng.choice(options)
            subject = person.name if i == 0 else person.subj
            sentence, _ = render(used[relation], slots(rng, self.world, person, subject))
            sentences.append(sentence)
        return " ".join(sentences), used
