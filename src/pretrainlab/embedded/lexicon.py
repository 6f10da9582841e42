"""Fixed English word lists shared by the genres.

Generated (syllable) words must never collide with these, so that a label-bearing word such
as ``not``, ``great`` or a topic cue keeps its meaning everywhere; :func:`reserved_words` is
what the world's name factory avoids.
"""

from __future__ import annotations

FIELDS: tuple[str, ...] = (
    "physics",
    "chemistry",
    "biology",
    "mathematics",
    "economics",
    "philosophy",
    "medicine",
    "linguistics",
    "geology",
    "astronomy",
    "architecture",
    "psychology",
    "sociology",
    "literature",
    "statistics",
    "nursing",
    "agriculture",
    "history",
    "music",
    "art",
    "law",
    "computer science",
    "marine biology",
    "political science",
    "civil engineering",
)
# Longer fields whose proper prefix is a field above ("art" -> "art history").
FIELD_EXTENSIONS: tuple[str, ...] = (
    "history of science",
    "music theory",
    "art history",
    "law and economics",
    "computer science education",
    "political science and economics",
    "civil engineering management",
    "mathematics education",
)

OCCUPATIONS: tuple[str, ...] = (
    "engineer",
    "teacher",
    "nurse",
    "designer",
    "analyst",
    "chemist",
    "accountant",
    "editor",
    "architect",
    "lawyer",
    "pilot",
    "librarian",
    "manager",
    "programmer",
    "researcher",
    "consultant",
    "electrician",
    "journalist",
    "surgeon",
    "translator",
    "economist",
    "photographer",
    "pharmacist",
    "geologist",
    "statistician",
    "mechanic",
    "chef",
    "auditor",
)

WEEKDAYS: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)

# Reviews ---------------------------------------------------------------------------------
# product -> the six aspects its reviews talk about (space-separated, like _FUNCTION_WORDS)
PRODUCT_ASPECTS: dict[str, tuple[str, ...]] = {
    product: tuple(aspects.split())
    for product, aspects in {
        "phone": "battery screen camera speaker price design",
        "laptop": "battery screen keyboard trackpad price hinge",
        "headphones": "sound bass fit battery price cable",
        "camera": "lens autofocus battery grip price viewfinder",
        "kettle": "lid handle price switch design spout",
        "blender": "motor blades jug price lid design",
        "tablet": "screen battery stylus speaker price case",
        "watch": "strap display battery clasp price design",
    }.items()
}
POSITIVE: tuple[str, ...] = (
    "good",
    "great",
    "excellent",
    "decent",
    "solid",
    "impressive",
    "reliable",
    "pleasant",
    "superb",
    "fantastic",
    "wonderful",
    "sturdy",
)
NEGATIVE: tuple[str, ...] = (
    "bad",
    "poor",
    "terrible",
    "awful",
    "weak",
    "disappointing",
    "flimsy",
    "mediocre",
    "unreliable",
    "annoying",
    "dreadful",
    "clumsy",
)
# Positive words that read naturally after "barely" ("barely usable" is negative).
BARELY_POSITIVE: tuple[str, ...] = ("usable", "acceptable", "adequate", "functional", "decent")
INTENSIFIERS: tuple[str, ...] = ("very", "extremely", "really", "quite", "incredibly", "truly")

# News --------------------------------------------------------------------------------------
TOPICS: tuple[str, ...] = ("politics", "sports", "science", "business", "weather")
# Every topic cue word belongs to exactly two topics, so no single cue names the topic; two cues
# from different pairs that share a topic do.
PAIR_CUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("politics", "sports"): ("race", "rally", "victory", "defeat", "contest", "rivalry"),
    ("politics", "science"): ("funding", "evidence", "proposal", "committee", "panel", "hearing"),
    ("politics", "business"): ("campaign", "tax", "budget", "regulation", "reform", "subsidy"),
    ("politics", "weather"): ("emergency", "relief", "evacuation", "warning", "crisis", "aid"),
    ("sports", "science"): ("training", "speed", "endurance", "trial", "injury", "fitness"),
    ("sports", "business"): ("contract", "transfer", "sponsor", "ticket", "franchise", "bonus"),
    ("sports", "weather"): ("season", "conditions", "outdoor", "pitch", "postponement", "course"),
    ("science", "business"): (
        "patent",
        "innovation",
        "technology",
        "prototype",
        "startup",
        "investment",
    ),
    ("science", "weather"): (
        "temperature",
        "climate",
        "satellite",
        "pressure",
        "atmosphere",
        "measurement",
    ),
    ("business", "weather"): ("forecast", "outlook", "freeze", "surge", "peak", "slump"),
}

_FUNCTION_WORDS = (
    "the a an and or but not no never barely although though however even while is was are "
    "were be been he she his her him it its they them their we our i my me you your of in on at "
    "to for from with by about after before when then than this that these those who which "
    "what where very so too also only still just as into over under near back up down out off "
    "all any some many more most other one two three"
)


def reserved_words() -> frozenset[str]:
    """Every lowercase English word above, plus common function words."""
    words: set[str] = set(_FUNCTION_WORDS.split())
    groups = [
        FIELDS,
        FIELD_EXTENSIONS,
        OCCUPATIONS,
        WEEKDAYS,
        POSITIVE,
        NEGATIVE,
        BARELY_POSITIVE,
        INTENSIFIERS,
        TOPICS,
        tuple(PRODUCT_ASPECTS),
    ]
    groups += list(PRODUCT_ASPECTS.values()) + list(PAIR_CUES.values())
    for group in groups:
        for phrase in group:
            words.update(phrase.lower().split())
    return frozenset(words)
