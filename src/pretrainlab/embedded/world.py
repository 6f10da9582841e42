"""The entity world behind every genre: people, places, organisations, products.

Built from the seed alone (never from the corpus size), so documents and probe tasks of the same
seed state the same facts. Some multi-word names are proper prefixes of others ("Brennic Labs"
and "Brennic Labs International", "Tessaly" and "Tessaly Bay", "art" and "art history"); QA uses
them to need right context.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from pretrainlab.embedded.lexicon import (
    FIELD_EXTENSIONS,
    FIELDS,
    OCCUPATIONS,
    PRODUCT_ASPECTS,
    reserved_words,
)
from pretrainlab.embedded.vocab import FillerVocab, NameFactory, build_filler

# Relations a person has exactly one value for; QA and pair tasks ask about these.
RELATIONS: tuple[str, ...] = (
    "birth_city",
    "birth_year",
    "home_city",
    "university",
    "field",
    "employer",
)

NUM_PEOPLE = 3000
NUM_COUNTRIES = 30
NUM_CITY_BASES = 170
NUM_EMPLOYER_BASES = 110
NUM_UNIVERSITY_BASES = 45
NUM_PRODUCTS = 150


@dataclass(frozen=True)
class Person:
    name: str
    gender: str  # "female" | "male"
    birth_year: int
    birth_city: str
    home_city: str
    university: str
    field: str
    employer: str
    occupation: str
    join_year: int  # year they joined ``employer``

    @property
    def given(self) -> str:
        return self.name.split()[0]

    @property
    def subj(self) -> str:
        return "she" if self.gender == "female" else "he"

    @property
    def obj(self) -> str:
        return "her" if self.gender == "female" else "him"

    @property
    def poss(self) -> str:
        return "her" if self.gender == "female" else "his"

    def value(self, relation: str) -> str:
        """The person's value for one of :data:`RELATIONS`, as it appears in text."""
        return str(getattr(self, relation))


@dataclass(frozen=True)
class Product:
    name: str
    category: str  # a key of lexicon.PRODUCT_ASPECTS


@dataclass(frozen=True)
class World:
    seed: int
    countries: tuple[str, ...]
    city_country: dict[str, str]
    employers: tuple[str, ...]
    universities: tuple[str, ...]
    fields: tuple[str, ...]
    people: tuple[Person, ...]
    products: tuple[Product, ...]
    filler: FillerVocab = field(repr=False)

    @cached_property
    def cities(self) -> tuple[str, ...]:
        return tuple(self.city_country)

    @cached_property
    def person_by_name(self) -> dict[str, Person]:
        return {p.name: p for p in self.people}

    @cached_property
    def entity_names(self) -> frozenset[str]:
        """Every named entity of the world (people, places, organisations, fields, products)."""
        names = [
            *self.countries,
            *self.city_country,
            *self.employers,
            *self.universities,
            *self.fields,
            *(p.name for p in self.people),
            *(p.name for p in self.products),
        ]
        return frozenset(names)

    @cached_property
    def _proper_prefixes(self) -> frozenset[str]:
        prefixes = set()
        for name in self.entity_names:
            words = name.split()
            prefixes.update(" ".join(words[:k]) for k in range(1, len(words)))
        return frozenset(prefixes)

    def is_proper_prefix(self, text: str) -> bool:
        """True when some entity name continues ``text`` with more words."""
        return text in self._proper_prefixes

    @cached_property
    def people_by_value(self) -> dict[tuple[str, str], tuple[Person, ...]]:
        """(relation, value) -> the people holding that value."""
        index: dict[tuple[str, str], list[Person]] = {}
        for p in self.people:
            for relation in RELATIONS:
                index.setdefault((relation, p.value(relation)), []).append(p)
        return {k: tuple(v) for k, v in index.items()}


def _with_extensions(
    rng: random.Random, bases: list[str], extensions: tuple[str, ...], share: float
) -> list[str]:
    """``bases`` plus, for about ``share`` of them, a longer name that extends the base."""
    names = []
    for base in bases:
        names.append(base)
        if rng.random() < share:
            names.append(f"{base} {rng.choice(extensions)}")
    return names


@lru_cache(maxsize=4)
def build_world(seed: int) -> World:
    """The world for ``seed`` (cached; treat it as read-only)."""
    rng = random.Random(f"pretrainlab-world-{seed}")
    factory = NameFactory(rng, reserved_words())
    countries = tuple(
        factory.name((1, 2), rng.choice(("ia", "a", "land", "or", "ea")))
        for _ in range(NUM_COUNTRIES)
    )
    city_bases = [factory.name((1, 3)) for _ in range(NUM_CITY_BASES)]
    city_bases += [f"{rng.choice(('Port', 'New', 'Old'))} {factory.name()}" for _ in range(20)]
    cities = _with_extensions(
        rng, city_bases, ("Bay", "Falls", "Springs", "Harbor", "Heights", "Crossing"), 0.35
    )
    city_country = {c: rng.choice(countries) for c in cities}

    employer_forms = (
        "{}",
        "{} Labs",
        "{} Systems",
        "{} Motors",
        "{} Foods",
        "{} Media",
        "{} Energy",
        "{} Logistics",
        "{} Textiles",
        "{} Pharmaceuticals",
    )
    employer_bases = [
        rng.choice(employer_forms).format(factory.name()) for _ in range(NUM_EMPLOYER_BASES)
    ]
    employers = _with_extensions(
        rng, employer_bases, ("International", "Group", "Holdings", "Partners", "Solutions"), 0.55
    )

    uni_forms = {  # form -> names that extend it
        "{} University": ("Medical School", "Business School", "College"),
        "{} Institute": ("of Technology", "of Arts"),
        "{} College": ("of Arts", "of Music"),
        "University of {}": ("Medical School", "Business School"),
    }
    universities: list[str] = []
    for _ in range(NUM_UNIVERSITY_BASES):
        form = rng.choice(sorted(uni_forms))
        base = form.format(
            rng.choice(city_bases) if form.startswith("University") else factory.name()
        )
        if base not in universities:
            universities += _with_extensions(rng, [base], uni_forms[form], 0.5)

    fields = FIELDS + FIELD_EXTENSIONS
    categories = sorted(PRODUCT_ASPECTS)
    brands = [factory.name((1, 2)) for _ in range(40)]
    product_names: dict[str, Product] = {}
    while len(product_names) < NUM_PRODUCTS:
        model = rng.choice((str(rng.randint(2, 12)), factory.name((1, 2))))
        name = f"{rng.choice(brands)} {model}"
        product_names[name] = Product(name, rng.choice(categories))

    givens = {
        g: [factory.name((1, 2), rng.choice(s)) for _ in range(220)]
        for g, s in (
            ("female", ("a", "ia", "elle", "ine", "e")),
            ("male", ("o", "an", "en", "us", "")),
        )
    }
    families = [factory.name((2, 3)) for _ in range(1400)]
    people: dict[str, Person] = {}
    while len(people) < NUM_PEOPLE:
        gender = rng.choice(("female", "male"))
        name = f"{rng.choice(givens[gender])} {rng.choice(families)}"
        if name in people:
            continue
        birth_city = rng.choice(cities)
        birth_year = rng.randint(1945, 2000)
        people[name] = Person(
            name=name,
            gender=gender,
            birth_year=birth_year,
            birth_city=birth_city,
            home_city=birth_city if rng.random() < 0.3 else rng.choice(cities),
            university=rng.choice(universities),
            field=rng.choice(fields),
            employer=rng.choice(employers),
            occupation=rng.choice(OCCUPATIONS),
            join_year=min(birth_year + rng.randint(22, 32), 2024),
        )
    return World(
        seed=seed,
        countries=countries,
        city_country=city_country,
        employers=tuple(employers),
        universities=tuple(universities),
        fields=fields,
        people=tuple(people.values()),
        products=tuple(product_names.values()),
        filler=build_filler(factory),
    )
