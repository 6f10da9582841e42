"""Syllable-built words (names and filler) and Zipf sampling over them."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

_ONSETS = (
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "sh",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "w",
    "z",
)
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "y")
_CODAS = ("n", "r", "l", "s", "m", "k", "t", "nd", "st", "sh", "x")
# Substrings a generated word must not contain (offensive or awkward strings).
_BLOCKED = (
    "shit",
    "fuck",
    "cunt",
    "nig",
    "fag",
    "cock",
    "dick",
    "tit",
    "slut",
    "whor",
    "rape",
    "nazi",
    "piss",
    "porn",
    "sex",
    "anal",
    "arse",
    "ass",
    "cum",
    "kill",
    "die",
)
_ADJ_SUFFIXES = ("ic", "ous", "al", "ive", "ish", "en", "ary")
_VERB_SUFFIXES = ("ed", "ed", "ished", "ated")


class NameFactory:
    """Draws syllable words that are unique across everything it ever returned.

    One factory builds a whole world, so a filler word never equals a name, and no word
    equals a reserved English word.
    """

    def __init__(self, rng: random.Random, reserved: Iterable[str] = ()) -> None:
        self.rng = rng
        self._used = {w.lower() for w in reserved}

    def word(self, syllables: tuple[int, int] = (2, 3), suffix: str = "") -> str:
        """A fresh lowercase word of ``syllables`` (inclusive range) plus ``suffix``."""
        rng = self.rng
        while True:
            n = rng.randint(*syllables)
            parts = []
            for i in range(n):
                onset = "" if i == 0 and rng.random() < 0.15 else rng.choice(_ONSETS)
                coda = rng.choice(_CODAS) if rng.random() < 0.4 else ""
                parts.append(onset + rng.choice(_VOWELS) + coda)
            word = "".join(parts) + suffix
            if len(word) >= 4 and word not in self._used and not any(b in word for b in _BLOCKED):
                self._used.add(word)
                return word

    def name(self, syllables: tuple[int, int] = (2, 3), suffix: str = "") -> str:
        """A fresh capitalised word (for proper names)."""
        return self.word(syllables, suffix).capitalize()


class ZipfSampler:
    """Samples ``words`` with probability proportional to ``1 / rank ** exponent``."""

    def __init__(self, words: Sequence[str], exponent: float = 1.0) -> None:
        self.words = tuple(words)
        self._cum = list(accumulate(1.0 / r**exponent for r in range(1, len(self.words) + 1)))
        self._total = self._cum[-1]

    def __call__(self, rng: random.Random) -> str:
        return self.words[bisect_right(self._cum, rng.random() * self._total)]


@dataclass(frozen=True)
class FillerVocab:
    """Generated open-class words, each class sampled Zipf-wise (rank = generation order)."""

    noun: ZipfSampler
    adjective: ZipfSampler
    verb: ZipfSampler  # past tense


def build_filler(
    factory: NameFactory, nouns: int = 5000, adjectives: int = 1500, verbs: int = 1500
) -> FillerVocab:
    rng = factory.rng
    noun_words = [factory.word() for _ in range(nouns)]
    adj_words = [factory.word((1, 2), rng.choice(_ADJ_SUFFIXES)) for _ in range(adjectives)]
    verb_words = [factory.word((1, 2), rng.choice(_VERB_SUFFIXES)) for _ in range(verbs)]
    return FillerVocab(ZipfSampler(noun_words), ZipfSampler(adj_words), ZipfSampler(verb_words))
