"""The default pretraining corpus: documents of mixed genres drawn from one world."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import accumulate

from pretrainlab.data.synthetic.biography import biography_document
from pretrainlab.data.synthetic.narrative import narrative_document
from pretrainlab.data.synthetic.news import news_document
from pretrainlab.data.synthetic.reviews import review_document
from pretrainlab.data.synthetic.world import World, build_world
from pretrainlab.errors import PretrainlabError

_GENRES: dict[str, tuple[float, Callable[[random.Random, World], list[str]]]] = {
    "biography": (0.3, biography_document),
    "review": (0.25, review_document),
    "news": (0.25, news_document),
    "narrative": (0.2, narrative_document),
}
GENRES: tuple[str, ...] = tuple(_GENRES)
_CUM_WEIGHTS = list(accumulate(weight for weight, _ in _GENRES.values()))


def generate_documents(num_words: int, seed: int) -> list[dict]:
    """Documents ``{"doc_id", "genre", "sentences"}`` totalling about ``num_words`` words.

    Words are whitespace-separated tokens (punctuation stays attached). Deterministic in
    ``(num_words, seed)``; a larger ``num_words`` yields the same leading documents, and the
    world (entities and facts) depends on ``seed`` only. The last document is cut short at a
    sentence boundary so the total lands as close to ``num_words`` as sentences allow.
    """
    if num_words < 1:
        raise PretrainlabError(
            f"num_words must be a positive number of words for the synthetic corpus, got {num_words}."
        )
    world = build_world(seed)
    rng = random.Random(f"pretrainlab-corpus-{seed}")
    documents: list[dict] = []
    total = 0
    while total < num_words:
        genre = rng.choices(GENRES, cum_weights=_CUM_WEIGHTS)[0]
        sentences = _GENRES[genre][1](rng, world)
        lengths = [len(s.split()) for s in sentences]
        last = total + sum(lengths) >= num_words
        if last:
            sentences = _trim(sentences, lengths, num_words - total)
        documents.append(
            {"doc_id": f"s{seed}-{len(documents):07d}", "genre": genre, "sentences": sentences}
        )
        if last:
            break
        total += sum(lengths)
    return documents


def _trim(sentences: list[str], lengths: list[int], budget: int) -> list[str]:
    """The leading sentences whose word count is closest to ``budget`` (at least one)."""
    kept, words = 1, lengths[0]
    while kept < len(sentences) and abs(words + lengths[kept] - budget) <= abs(words - budget):
        words += lengths[kept]
        kept += 1
    return sentences[:kept]
