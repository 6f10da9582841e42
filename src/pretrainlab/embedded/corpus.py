"""The default pretraining corpus: documents of mixed genres drawn from one world.

Four genres (biography, review, news, narrative) are drawn at fixed weights from one random
stream; a ``lexical_share`` of the words goes to class-coherent ``lexical`` documents
(:mod:`~pretrainlab.embedded.lexical`) drawn from a second stream and interleaved, so the
other genres' documents are the same, in the same order, whatever the share.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import lru_cache, partial
from itertools import accumulate

from pretrainlab.embedded.biography import biography_document
from pretrainlab.embedded.lexical import (
    TEMPLATE_WORDS,
    LexicalSpec,
    Lexicon,
    lexical_document,
    make_lexicon,
)
from pretrainlab.embedded.lexicon import reserved_words
from pretrainlab.embedded.narrative import narrative_document
from pretrainlab.embedded.news import news_document
from pretrainlab.embedded.reviews import review_document
from pretrainlab.embedded.world import NUM_PEOPLE, World, build_world
from pretrainlab.errors import PretrainlabError

_GENRES: dict[str, tuple[float, Callable[[random.Random, World], list[str]]]] = {
    "biography": (0.3, biography_document),
    "review": (0.25, review_document),
    "news": (0.25, news_document),
    "narrative": (0.2, narrative_document),
}
GENRES: tuple[str, ...] = (*_GENRES, "lexical")
_CUM_WEIGHTS = list(accumulate(weight for weight, _ in _GENRES.values()))
_VOCABULARY_SAMPLE = 500  # documents per genre whose words a lexicon must avoid


def check_biography_people(people: object) -> int | None:
    ok = people is None or (isinstance(people, int) and not isinstance(people, bool))
    if not ok or (people is not None and not 1 <= people <= NUM_PEOPLE):
        raise PretrainlabError(
            f"corpus.biography_people={people!r} is not valid: expected null (biographies of "
            f"any of the world's {NUM_PEOPLE} people) or an integer in [1, {NUM_PEOPLE}] (only "
            "the first N people get biographies, so each of their facts is stated more often)."
        )
    return people


def check_lexical_share(share: object) -> float:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise PretrainlabError(
            f"corpus.lexical_share={share!r} is not valid: expected a number in [0, 1] (the "
            "share of the corpus words in lexical documents; 0: none)."
        )
    return float(share)


@lru_cache(maxsize=8)
def build_lexicon(seed: int, spec: LexicalSpec) -> Lexicon:
    """The word classes of ``seed``'s world (cached): their words occur in no other genre."""
    world = build_world(seed)
    taken = set(reserved_words()) | TEMPLATE_WORDS
    f = world.filler
    taken.update(*(sampler.words for sampler in (f.noun, f.adjective, f.verb)))
    taken.update(w.lower() for name in world.entity_names for w in name.split())
    rng = random.Random(f"pretrainlab-lexicon-vocabulary-{seed}")
    for _, make in _GENRES.values():
        for _ in range(_VOCABULARY_SAMPLE):
            taken.update(re.findall(r"[a-z]+", " ".join(make(rng, world)).lower()))
    return make_lexicon(seed, spec, frozenset(taken))


def generate_documents(
    num_words: int,
    seed: int,
    lexical_share: float = 0.0,
    lexical: LexicalSpec | None = None,
    biography_people: int | None = None,
) -> list[dict]:
    """Documents ``{"doc_id", "genre", "sentences"}`` totalling about ``num_words`` words.

    Words are whitespace-separated tokens (punctuation stays attached). Deterministic in the
    arguments; a larger ``num_words`` yields the same leading documents, and the world
    (entities and facts) depends on ``seed`` only. A lexical document comes next whenever the
    lexical documents hold at most ``lexical_share`` of the words so far (``lexical``: the
    word classes, default :class:`LexicalSpec`). ``biography_people``: biographies are about
    the world's first N people only (None: anyone), so each of their facts is stated more
    often; the other genres still name anyone. The last document is cut short at a sentence
    boundary so the total lands as close to ``num_words`` as sentences allow.
    """
    if num_words < 1:
        raise PretrainlabError(
            f"num_words must be a positive number of words for the synthetic corpus, got {num_words}."
        )
    share = check_lexical_share(lexical_share)
    world = build_world(seed)
    makers = {genre: make for genre, (_, make) in _GENRES.items()}
    if check_biography_people(biography_people) is not None:
        makers["biography"] = partial(biography_document, people=world.people[:biography_people])
    lexicon = build_lexicon(seed, lexical or LexicalSpec()) if share > 0 else None
    rng = random.Random(f"pretrainlab-corpus-{seed}")
    lexical_rng = random.Random(f"pretrainlab-corpus-lexical-{seed}")
    documents: list[dict] = []
    total = lexical_words = 0
    while total < num_words:
        if lexicon is not None and lexical_words <= share * total:
            genre, sentences = "lexical", lexical_document(lexical_rng, world, lexicon)
        else:
            genre = rng.choices(tuple(_GENRES), cum_weights=_CUM_WEIGHTS)[0]
            sentences = makers[genre](rng, world)
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
        lexical_words += sum(lengths) if genre == "lexical" else 0
    return documents


def _trim(sentences: list[str], lengths: list[int], budget: int) -> list[str]:
    """The leading sentences whose word count is closest to ``budget`` (at least one)."""
    kept, words = 1, lengths[0]
    while kept < len(sentences) and abs(words + lengths[kept] - budget) <= abs(words - budget):
        words += lengths[kept]
        kept += 1
    return sentences[:kept]
