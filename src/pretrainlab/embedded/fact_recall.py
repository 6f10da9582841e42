"""Fact-recall cloze rows: a person's attribute to pick among candidates, with no training.

Which facts the corpus states, and in how many phrasings, is read from its training documents:
a biography names its person in its first sentence, and each of its sentences that fills one
of :data:`~pretrainlab.embedded.facts.TEMPLATES` with that person's true values (pronoun
subjects included) states the relations of that template's group. A (person, relation) pair is
``paraphrased`` when the training split states it in >= 2 templates, ``single_phrasing`` in
one (usually once: it counts repeats of one template too), ``unseen`` when never.

Probed relations (:data:`PROBED`) are stated only by biography fact sentences, so the count is
complete; ``home_city`` and ``employer`` also recur in news, narratives and friend sentences,
and ``university`` has no one-word values. Values and candidates are one word each (most are
one WordPiece token); distractors are other one-word values of the relation, never a value the
person holds for any relation, and a pair whose value is also the person's value for another
relation (a birth city that is the home city) is not probed, so knowing the other fact (home
cities recur in narratives) neither helps nor hurts. The facts task draws a row's true value
and its distractors from the same pool, the values of the people of its subset (stated as
often, so tokenised alike), so a scorer that ignores the facts is at chance (1 / candidates).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from string import Formatter

from pretrainlab.data.tasks.base import CLOZE_BLANK
from pretrainlab.embedded.common import cap
from pretrainlab.embedded.facts import GROUPS_FOR, TEMPLATES, slots
from pretrainlab.embedded.world import RELATIONS, Person, World

PROBED: tuple[str, ...] = ("birth_city", "field", "birth_year")
SUBSETS: tuple[str, ...] = ("paraphrased", "single_phrasing", "unseen")
PROMPT_SOURCES: tuple[str, ...] = ("heldout", "corpus")
# Prompt templates held out of the corpus: its words, in combinations no corpus template has.
HELDOUT_PROMPTS: dict[str, tuple[str, ...]] = {
    "birth_city": (
        "{name} is a native of {birth_city}.",
        "{name} was born and grew up in {birth_city}.",
    ),
    "field": ("{name} has a degree in {field}.", "{name} studied in the field of {field}."),
    "birth_year": (
        "{name} was born back in {birth_year}.",
        "The year of birth of {name} is {birth_year}.",
    ),
}
_PROMPT_SLOTS = {"n", "name", "subj"}  # besides the relation: a corpus prompt fills these only
_FORMATTER = Formatter()
Pair = tuple[str, str]  # (person name, relation)


def _pattern(template: str) -> re.Pattern[str]:
    """A template as a regex, one named group per slot; a verb phrase (``vp``) starts lower-case,
    which ends the capitalised name before it ("Born in X in 1967, Ana Bel spent years ...")."""
    parts = []
    for literal, slot, _, _ in _FORMATTER.parse(template):
        parts.append(re.escape(literal))
        if slot:
            parts.append(f"(?P<{slot}>{'[a-z]' if slot == 'vp' else ''}.+?)")
    return re.compile("".join(parts))


# Every fact template as (group, index in its group, pattern), in TEMPLATES order.
_PATTERNS = [(group, i, _pattern(t)) for group, ts in TEMPLATES.items() for i, t in enumerate(ts)]


def _stated(sentence: str, world: World, person: Person | None) -> tuple[Person, str, int] | None:
    """(person, group, template index) when ``sentence`` fills a fact template with true values
    of ``person`` (or, with ``person`` None, of the person it names)."""
    for group, index, pattern in _PATTERNS:
        m = pattern.fullmatch(sentence)
        if m is None:
            continue
        found = m.groupdict()
        who = person or world.person_by_name.get(found.get("n") or found.get("name", ""))
        if who is None:
            continue
        truth = slots(random.Random(0), world, who, who.name)
        subjects = {who.name, who.subj, cap(who.subj)}
        if found.get("n", who.name) in subjects and all(
            truth[k] == v for k, v in found.items() if k not in ("n", "vp")
        ):
            return who, group, index
    return None


def count_statements(world: World, documents: Iterable[dict]) -> dict[Pair, list[str]]:
    """(person, relation) -> the template of each sentence stating it, over ``documents``
    (``{"sentences": [...]}``): biographies, recognised by a fact sentence naming their person
    first; every other document states none of :data:`PROBED`."""
    groups = {r: set(GROUPS_FOR[r]) for r in PROBED}
    out: dict[Pair, list[str]] = {}
    for doc in documents:
        sentences = doc["sentences"]
        first = _stated(sentences[0], world, None) if sentences else None
        if first is None:
            continue
        person = first[0]
        for sentence in sentences:
            hit = _stated(sentence, world, person)
            if hit is None:
                continue
            _, group, index = hit
            for relation in PROBED:
                if group in groups[relation]:
                    out.setdefault((person.name, relation), []).append(f"{group}/{index}")
    return out


def value_pool(world: World, relation: str) -> list[str]:
    """The one-word values of ``relation`` that some person holds (candidates are drawn here)."""
    return sorted({p.value(relation) for p in world.people if " " not in p.value(relation)})


def eligible(person: Person, relation: str) -> bool:
    """A one-word value that is not also the person's value for another relation."""
    value = person.value(relation)
    others = {person.value(r) for r in RELATIONS if r != relation}
    return " " not in value and value not in others


def subset_of(templates: Sequence[str]) -> str:
    if not templates:
        return "unseen"
    return "paraphrased" if len(set(templates)) >= 2 else "single_phrasing"


def prompt_templates(relation: str, source: str) -> tuple[str, ...]:
    """``heldout``: :data:`HELDOUT_PROMPTS`; ``corpus``: the templates of the relation's own
    group whose other slots are only the subject (no country, year or filler to give hints)."""
    if source == "heldout":
        return HELDOUT_PROMPTS[relation]
    return tuple(
        t
        for t in TEMPLATES[GROUPS_FOR[relation][0]]
        if {s for _, s, _, _ in _FORMATTER.parse(t) if s} <= _PROMPT_SLOTS | {relation}
    )


def cloze_row(
    rng: random.Random,
    world: World,
    pair: Pair,
    templates: Sequence[str],
    pool: Sequence[str],
    candidates: int,
    statements: dict[Pair, list[str]],
) -> dict:
    """One row: a prompt with the blank for the value, ``candidates`` values of ``pool`` (the
    true one once; ``pool`` may repeat a value, which makes it a likelier distractor), the true
    index, the subset and how often the corpus states the fact."""
    person, relation = world.person_by_name[pair[0]], pair[1]
    value = person.value(relation)
    held = {person.value(r) for r in RELATIONS}
    # A value comes up as often as ``pool`` repeats it: a value many people hold is as likely
    # to be a distractor as to be the answer.
    order = (v for v in rng.sample(list(pool), len(pool)) if v not in held)
    distractors = list(dict.fromkeys(order))[: candidates - 1]
    options = [value, *distractors]
    rng.shuffle(options)
    fill = {"n": person.name, "name": person.name, "subj": person.subj, relation: CLOZE_BLANK}
    found = statements.get(pair, [])
    return {
        "prompt": cap(rng.choice(templates).format(**fill)),
        "candidates": options,
        "label": options.index(value),
        "subset": subset_of(found),
        "relation": relation,
        "person": person.name,
        "mentions": len(found),
        "phrasings": len(set(found)),
    }
