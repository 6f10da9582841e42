"""The embedded ``word_similarity`` task: the zero-shot similarity probe's positive control for
pretraining.

A row is one :func:`~pretrainlab.embedded.lexical.lexical_frame` filled twice, with two member
words of the ``lexical`` word classes: the texts differ in that word (and its article) alone.
The label is 1 when the two members share a class, else 0 (every other row). A word's class
shows only in the corpus (what it co-occurs with), so the grade is not in the texts'
surface: a bag of words sees two different words either way, and so does a random-initialised
encoder. An encoder whose pretraining grouped the classes scores above both (measured:
experiments/objective_zoo).

Train rows pair seen members; dev and test rows alternate pairs of held-out members (never
in the ``lexical`` task's train split) and of seen ones (``subset``: ``heldout_words`` /
``seen_words``), as ``lexical`` does.
"""

from __future__ import annotations

import random

import datasets

from pretrainlab.data.tasks.sts import FEATURES as STS_FEATURES
from pretrainlab.embedded.lexical import SUBSETS, Lexicon, lexical_frame
from pretrainlab.embedded.world import World
from pretrainlab.errors import PretrainlabError

FEATURES = datasets.Features({**STS_FEATURES, "subset": datasets.Value("string")})
NOTE = (
    "One filler frame filled with two member words of the lexical word classes; label 1 when "
    "they share a class, else 0. Train pairs seen members; dev/test alternate held-out and seen "
    "pairs (subset)."
)


class WordSimilarityMaker:
    """Draws ``word_similarity`` rows for one world and its lexicon."""

    def __init__(self, world: World, lexicon: Lexicon) -> None:
        spec = lexicon.spec
        if spec.heldout_per_class < 2 or spec.members_per_class - spec.heldout_per_class < 2:
            raise PretrainlabError(
                f"The word_similarity task pairs two different members of one class among the "
                f"held-out members and among the seen ones, but lexical.members_per_class="
                f"{spec.members_per_class} with heldout_share={spec.heldout_share} leaves "
                f"{spec.heldout_per_class} held-out and "
                f"{spec.members_per_class - spec.heldout_per_class} seen: use at least 4 "
                "members a class with a share that keeps 2 on each side."
            )
        self.world = world
        # (member, class) pools, held-out (True) and seen (False), drawn from for every row
        self.pools = {
            heldout: [
                (word, k)
                for k, c in enumerate(lexicon.classes)
                for word in (c.heldout if heldout else c.seen)
            ]
            for heldout in (True, False)
        }

    def make_row(self, rng: random.Random, index: int, split: str) -> dict:
        """Row ``index``: the same class when ``index`` is even; held-out members on dev and
        test rows whose ``index // 2`` is even, seen members otherwise."""
        same = index % 2 == 0
        heldout = split != "train" and (index // 2) % 2 == 0
        words = self.pools[heldout]
        first, first_class = rng.choice(words)
        second, _ = rng.choice(
            [(w, k) for w, k in words if w != first and (k == first_class) == same]
        )
        frame = lexical_frame(rng, self.world)
        return {
            "text": frame(first),
            "text_pair": frame(second),
            "label": float(same),
            "subset": SUBSETS[0] if heldout else SUBSETS[1],
        }
