"""Word classes: the ``lexical`` genre of the corpus and the ``lexical`` probe task.

A :class:`Lexicon` has ``num_classes`` classes of generated words; each class has member words
and context words. A lexical document picks one class and mixes its members and context words
with the shared filler, so a word's class shows only in what it co-occurs with. A probe text
holds one member word among filler drawn the same way for every class: its label (the class)
is knowable from pretraining alone. Part of each class's members (``heldout_share``) never
appears in the probe's train split; only the corpus tells a reader which class they belong to.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pretrainlab.config import check_known_keys
from pretrainlab.embedded.common import article, cap, filler_sentence
from pretrainlab.embedded.vocab import NameFactory
from pretrainlab.embedded.world import World
from pretrainlab.errors import PretrainlabError

SUBSETS = ("heldout_words", "seen_words")
MAX_WORDS = 100_000  # generated words of one lexicon (members and context words)
# Sentences of a lexical document: {m}/{m2}/{m3} members, {c}/{c2} context words of its class,
# {n} noun, {a} adjective, {v} verb of the shared filler; {am2}: m2 with its article. Most
# members stand next to a context word ("the {c} {m}", like an adjective and its noun): with
# the context words two to four tokens away, a tiny MLM needed 12-16M tokens to group the
# classes (CLM 1-2M); adjacent, with 40 members a class, one seed grouped them by 4M tokens
# and two not by 8M; with 20 (each twice as frequent) all three by 4M (README, "Calibrating
# the benchmark").
_DOCUMENT_TEMPLATES = (
    "the {c} {m} {v} the {c2} {m2}.",
    "{m} and {m2} were often found with the {c} {m3}.",
    "people who keep {c} {m} also talk about the {c2} {m2}.",
    "in the {a} {n}, the {c} {m} stood beside the {m2}.",
    "the {m} {c} {v} {am2}.",
    "we saw the {c} {m}, the {m2} and the {c2} {m3}.",
    "nobody mentions the {c} without the {m} {c2}.",
)
# A probe text's sentence: one member {m} among filler (the filler_sentence shapes).
_EXAMPLE_TEMPLATES = (
    "the {a} {n} {v} the {m}.",
    "there was {am} next to the {a} {n}.",
    "everyone talked about the {a} {n} and the {m}.",
    "the {m} of the {n} seemed {a} that year.",
    "in the {n}, the {m} {v} {an}.",
    "the {a} {m} {v} the {n} again.",
)
TEMPLATE_WORDS = frozenset(
    w.strip(".,")
    for t in _DOCUMENT_TEMPLATES + _EXAMPLE_TEMPLATES
    for w in t.split()
    if "{" not in w
)


@dataclass(frozen=True)
class LexicalSpec:
    """The knobs of the word classes (``conf/lexical/default.yaml``, shared by the corpus as
    ``corpus.lexical`` and by the probe task as ``probe.task.lexical``)."""

    num_classes: int = 10
    members_per_class: int = 20
    context_words_per_class: int = 30
    heldout_share: float = 0.5

    def __post_init__(self) -> None:
        _integer("num_classes", self.num_classes, 2, 1000, "word classes, the probe's labels")
        _integer("members_per_class", self.members_per_class, 2, 1000, "member words per class")
        _integer("context_words_per_class", self.context_words_per_class, 1, 1000, "")
        words = self.num_classes * (self.members_per_class + self.context_words_per_class)
        if words > MAX_WORDS:
            raise PretrainlabError(
                f"lexical: num_classes x (members_per_class + context_words_per_class) = {words} "
                f"generated words, more than the {MAX_WORDS} accepted; use fewer or smaller classes."
            )
        share, m = self.heldout_share, self.members_per_class
        low, high = 0.5 / m, 1 - 0.5 / m  # round(m * share) in [1, m - 1]
        if not _number(share) or not low <= share < high:
            raise PretrainlabError(
                f"lexical.heldout_share={share!r} is not valid with members_per_class={m}: "
                f"expected a number in [{low:g}, {high:g}), so that each class keeps at least one "
                "seen and one held-out member (the held-out count is share x members, rounded)."
            )

    @property
    def heldout_per_class(self) -> int:
        return math.floor(self.members_per_class * self.heldout_share + 0.5)

    @classmethod
    def from_config(cls, node: LexicalSpec | Mapping[str, Any] | None) -> LexicalSpec:
        """The spec from a config mapping (``None``: the defaults); unknown keys are refused."""
        if node is None or isinstance(node, LexicalSpec):
            return node or cls()
        check_known_keys("lexical", node, [f.name for f in fields(cls)])
        return cls(**node)


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _integer(key: str, value: Any, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = f" ({what})" if what else ""
        raise PretrainlabError(
            f"lexical.{key}={value!r} is not valid: expected an integer in [{low}, {high}]{what}."
        )


@dataclass(frozen=True)
class WordClass:
    seen: tuple[str, ...]
    heldout: tuple[str, ...]
    context: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return self.seen + self.heldout


@dataclass(frozen=True)
class Lexicon:
    spec: LexicalSpec
    classes: tuple[WordClass, ...]


def make_lexicon(seed: int, spec: LexicalSpec, taken: frozenset[str]) -> Lexicon:
    """Classes of fresh 1-2 syllable words, none in ``taken`` (the rest of the vocabulary).

    Members are drawn before context words and held-out members from their own stream, so
    the members and their split depend only on ``seed``, ``num_classes``,
    ``members_per_class`` and ``heldout_share``.
    """
    factory = NameFactory(random.Random(f"pretrainlab-lexicon-{seed}"), taken)
    members = [
        [factory.word((1, 2)) for _ in range(spec.members_per_class)]
        for _ in range(spec.num_classes)
    ]
    context = [
        tuple(factory.word((1, 2)) for _ in range(spec.context_words_per_class))
        for _ in range(spec.num_classes)
    ]
    split = random.Random(f"pretrainlab-lexicon-heldout-{seed}")
    classes = []
    for words, ctx in zip(members, context, strict=True):
        heldout = set(split.sample(words, spec.heldout_per_class))
        seen = tuple(w for w in words if w not in heldout)
        classes.append(WordClass(seen, tuple(w for w in words if w in heldout), ctx))
    return Lexicon(spec, tuple(classes))


def _filler_slots(rng: random.Random, world: World) -> dict[str, str]:
    f = world.filler
    return {"n": f.noun(rng), "a": f.adjective(rng), "v": f.verb(rng), "an": article(f.noun(rng))}


def lexical_document(rng: random.Random, world: World, lexicon: Lexicon) -> list[str]:
    """4 to 9 sentences about one class (its members and context words), some filler."""
    words = rng.choice(lexicon.classes)
    sentences = []
    for _ in range(rng.randint(4, 9)):
        if rng.random() < 0.15:
            sentences.append(filler_sentence(rng, world))
            continue
        m, m2, m3 = (rng.choice(words.members) for _ in range(3))
        c, c2 = rng.choice(words.context), rng.choice(words.context)
        slots = _filler_slots(rng, world)
        template = rng.choice(_DOCUMENT_TEMPLATES)
        text = template.format(m=m, m2=m2, m3=m3, am2=article(m2), c=c, c2=c2, **slots)
        sentences.append(cap(text))
    return sentences


def lexical_frame(rng: random.Random, world: World) -> Callable[[str], str]:
    """A probe text's frame: ``frame(member)`` puts ``member`` in a filler sentence, sometimes
    beside a filler sentence. Everything but the member is drawn here, the same way for every
    class, so one frame filled with two members gives texts that differ only in that word."""
    slots = _filler_slots(rng, world)
    template = rng.choice(_EXAMPLE_TEMPLATES)
    alone = rng.random() < 0.5
    other = None if alone else filler_sentence(rng, world)
    before = not alone and rng.random() < 0.5

    def frame(member: str) -> str:
        sentence = cap(template.format(m=member, am=article(member), **slots))
        if other is None:
            return sentence
        return f"{sentence} {other}" if before else f"{other} {sentence}"

    return frame


def lexical_example(rng: random.Random, world: World, member: str) -> str:
    """A probe text: ``member`` in a :func:`lexical_frame`. Nothing but ``member`` depends on
    the label."""
    return lexical_frame(rng, world)(member)


def lexical_row(rng: random.Random, lexicon: Lexicon, world: World, i: int, split: str) -> dict:
    """Row ``i`` of a split: label ``i % num_classes``. Train rows take the seen members in
    turn (every one shows once ``train_size`` reaches their number); dev and test rows
    alternate held-out and seen members every ``num_classes`` rows, each set in turn."""
    label, turn = i % lexicon.spec.num_classes, i // lexicon.spec.num_classes
    heldout = split != "train" and turn % 2 == 0
    if split != "train":
        turn //= 2
    words = lexicon.classes[label].heldout if heldout else lexicon.classes[label].seen
    return {
        "text": lexical_example(rng, world, words[turn % len(words)]),
        "label": label,
        "subset": SUBSETS[0] if heldout else SUBSETS[1],
    }
