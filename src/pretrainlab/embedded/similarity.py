"""The embedded ``similarity`` task: graded pairs of short texts, on STS-B's 0-5 scale.

Each text states :data:`FACTS_PER_TEXT` facts of one person of the world (relations of
:data:`~pretrainlab.embedded.world.RELATIONS`), one sentence each, the first naming the person
and the rest a pronoun. The grades follow STS-B's annotation guide:

- 0, "completely dissimilar" (subset ``other_person``): the two texts are about two people.
- 1, "not equivalent, but on the same topic", to 5, "completely equivalent" (subset
  ``same_person``): one person, and ``text_pair`` restates ``shared`` of ``text``'s facts in
  another template (a paraphrase: same relation and value, other words) and states the
  person's other relations for the rest; the score is ``1 + 4 * shared / FACTS_PER_TEXT``.

Every grade is equally frequent. The whole scale is what STS scores; ``same_person`` alone
(the fine, within-topic grades) is reported as its own subset. Before the ``other_person``
rows were added the task was ``same_person`` alone, and there a mean-pooled encoder tuned by
SimCSE, which separates unrelated texts well, ranked below raw MLM (experiments/objective_zoo).

A bag-of-words cosine is a classical check that the grade is in the words (shared values are
shared words); an encoder has to see that "was born in X" and "X is the birthplace of" state
one fact.
"""

from __future__ import annotations

import random

import datasets

from pretrainlab.data.tasks.sts import FEATURES as STS_FEATURES
from pretrainlab.embedded.facts import GROUPS_FOR, TEMPLATES, render, slots
from pretrainlab.embedded.world import RELATIONS, Person, World

FACTS_PER_TEXT = 3  # at most half the relations, so a pair can share none
SCORE_RANGE = (0.0, 5.0)
OTHER_PERSON, SAME_PERSON = "other_person", "same_person"
GRADES = FACTS_PER_TEXT + 2  # two people, then one person sharing 0..FACTS_PER_TEXT facts
FEATURES = datasets.Features({**STS_FEATURES, "subset": datasets.Value("string")})
NOTE = (
    f"Pairs of {FACTS_PER_TEXT}-sentence texts, STS-B's 0-5 scale: 0 for two people "
    f"(other_person); for one person (same_person), 1 + 4 x the share of the "
    f"{FACTS_PER_TEXT} facts both texts state (restated in other words)."
)


def score(shared: int | None) -> float:
    """The grade of a pair: 0 for two people (``shared`` None), else ``1 + 4 * shared /
    FACTS_PER_TEXT``."""
    return 0.0 if shared is None else 1.0 + 4.0 * shared / FACTS_PER_TEXT


class SimilarityMaker:
    """Draws ``similarity`` rows for one world."""

    def __init__(self, world: World) -> None:
        self.world = world

    def make_row(self, rng: random.Random, index: int, _split: str) -> dict:
        """Row ``index``: two people when ``index mod GRADES`` is 0, else one person sharing
        ``index mod GRADES - 1`` facts, so every grade is as frequent as every other."""
        grade = index % GRADES
        return self(rng, None if grade == 0 else grade - 1)

    def __call__(self, rng: random.Random, shared: int | None) -> dict:
        """A pair sharing ``shared`` facts of one person, or (None) about two people."""
        person = rng.choice(self.world.people)
        first = rng.sample(RELATIONS, FACTS_PER_TEXT)
        text, used = self._text(rng, person, first, {})
        if shared is None:
            other = rng.choice([p for p in self.world.people if p is not person])
            text_pair, _ = self._text(rng, other, rng.sample(RELATIONS, FACTS_PER_TEXT), {})
        else:
            rest = [r for r in RELATIONS if r not in first]
            second = rng.sample(first, shared) + rng.sample(rest, FACTS_PER_TEXT - shared)
            rng.shuffle(second)
            text_pair, _ = self._text(rng, person, second, used)
        subset = OTHER_PERSON if shared is None else SAME_PERSON
        return {"text": text, "text_pair": text_pair, "label": score(shared), "subset": subset}

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
