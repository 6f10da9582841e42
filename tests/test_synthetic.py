"""The embedded synthetic corpus and its probe tasks (pretrainlab.embedded)."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.embedded import (
    GENRES,
    build_world,
    generate_documents,
    generate_probe_task,
    generate_probe_tasks,
)
from pretrainlab.embedded.lexicon import (
    BARELY_POSITIVE,
    NEGATIVE,
    PAIR_CUES,
    POSITIVE,
    TOPICS,
)
from pretrainlab.embedded.tasks import load_embedded_task
from pretrainlab.errors import PretrainlabError

SEED = 0
WORDS = 50_000


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return generate_documents(WORDS, SEED)


@pytest.fixture(scope="module")
def tasks() -> dict[str, ProbeTask]:
    return generate_probe_tasks(SEED, train_size=300, dev_size=100, test_size=200)


def _words(documents: list[dict]) -> list[str]:
    return [w for d in documents for s in d["sentences"] for w in s.split()]


# Corpus ------------------------------------------------------------------------------------


def test_documents_are_deterministic_and_seed_dependent(docs):
    assert generate_documents(WORDS, SEED) == docs
    other = generate_documents(WORDS, SEED + 1)
    assert [d["sentences"] for d in other[:20]] != [d["sentences"] for d in docs[:20]]
    assert build_world(SEED + 1).people[0].name != build_world(SEED).people[0].name


@pytest.mark.parametrize("num_words", [1_000, 12_345, WORDS])
def test_word_count_is_within_five_percent(num_words):
    total = len(_words(generate_documents(num_words, SEED)))
    assert abs(total - num_words) <= 0.05 * num_words


def test_larger_corpus_keeps_world_and_leading_documents(docs):
    bigger = generate_documents(2 * WORDS, SEED)
    assert bigger[: len(docs) - 1] == docs[:-1]  # only the last (trimmed) document may differ


def test_document_shape_and_all_genres(docs):
    assert all(set(d) == {"doc_id", "genre", "sentences"} for d in docs)
    assert len({d["doc_id"] for d in docs}) == len(docs)
    assert Counter(d["genre"] for d in docs).keys() == set(GENRES) - {"lexical"}  # share 0
    assert {"biography", "review", "news", "narrative"} <= set(GENRES)
    assert sum(len(d["sentences"]) for d in docs[:-1]) / (len(docs) - 1) >= 4


def test_sentence_lengths(docs):
    lengths = [len(s.split()) for d in docs for s in d["sentences"]]
    assert min(lengths) >= 5 and max(lengths) <= 40


def test_vocabulary_is_large_and_zipf_like():
    words = _words(generate_documents(200_000, SEED))
    counts = Counter(re.sub(r"[^\w']", "", w.lower()) for w in words)
    assert len(counts) >= 5_000
    freqs = sorted(counts.values(), reverse=True)[:1000]
    xs = [math.log(r) for r in range(1, len(freqs) + 1)]
    ys = [math.log(f) for f in freqs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    assert -1.4 <= slope <= -0.7


_NAME = r"([A-Z]\w+ [A-Z]\w+)"  # people have a given and a family name
_PROPER = r"([A-Z]\w*(?: [A-Z]\w*)*)"  # a run of capitalised words: a city or company
_FACT_PATTERNS = {  # regex with groups (name, value) -> relation; "*": groups are (value, name)
    _NAME + r" was born in " + _PROPER + r"(?:[,.]| in \d)": "birth_city",
    _PROPER + r" is the birthplace of " + _NAME + r"\.": "birth_city*",
    _NAME + r", a native of " + _PROPER + ",": "birth_city",
    _NAME + r" was born in (\d{4})": "birth_year",
    _NAME + r",? who lives in " + _PROPER + r"[,.]": "home_city",
    _NAME + r" currently lives in " + _PROPER + r"\.": "home_city",
    _NAME + r" from " + _PROPER + r" reviewed": "home_city",
    _NAME + r" is employed by " + _PROPER + r"\.": "employer",
    _NAME + r", an? \w+ at " + _PROPER + r", said": "employer",
    _NAME + r" studied ([a-z][a-z ]*?) at [A-Z]": "field",
}


def test_facts_agree_with_the_world_wherever_mentioned(docs):
    world = build_world(SEED)
    checked: Counter[str] = Counter()
    for doc in docs:
        for sentence in doc["sentences"]:
            for pattern, relation in _FACT_PATTERNS.items():
                for match in re.finditer(pattern, sentence):
                    name, value = match.groups()
                    if relation.endswith("*"):
                        name, value, relation = value, name, relation[:-1]
                    person = world.person_by_name[name]
                    assert person.value(relation) == value, (sentence, relation, person)
                    checked[(relation, doc["genre"])] += 1
    assert {r for r, _ in checked} == {"birth_city", "birth_year", "home_city", "employer", "field"}
    assert {g for _, g in checked} >= {"biography", "news", "review"}  # facts recur across genres
    assert sum(checked.values()) > 300


def test_biography_pronouns_match_gender(docs):
    world = build_world(SEED)
    bios = [d for d in docs if d["genre"] == "biography"]
    for doc in bios:
        first = doc["sentences"][0]
        (person,) = [p for p in world.people if p.name in first]
        pronouns = {w.strip(",.").lower() for s in doc["sentences"] for w in s.split()} & {
            "he",
            "she",
        }
        assert pronouns <= {person.subj}, doc


def test_world_has_prefix_entities():
    world = build_world(SEED)
    assert len(world.people) >= 2000 and len(world.cities) >= 100
    assert all(world.city_country[c] in world.countries for c in world.cities)
    for names in (world.employers, world.cities, world.universities, world.fields):
        prefixes = [n for n in names if world.is_proper_prefix(n)]
        assert prefixes and all(any(m.startswith(n + " ") for m in names) for n in prefixes)


# Probe tasks -------------------------------------------------------------------------------


def test_probe_task_shapes_and_balance(tasks):
    assert set(tasks) == {
        *("sentiment", "topic", "pair", "qa", "lexical", "direction", "tagging", "similarity"),
        "word_similarity",
    }
    columns = {
        "classification": {"text", "label"},
        "pair": {"text", "text_pair", "label"},
        "qa": {"id", "question", "context", "answers", "needs_right_context"},
        "lexical": {"text", "label", "subset"},  # tests/test_lexical.py
        "direction": {"id", "question", "context", "answers", "subset", "candidates"},
        "tagging": {"tokens", "tags", "subset", "target"},  # test_probes_tagging_similarity
        "similarity": {"text", "text_pair", "label", "subset"},  # word_similarity too
    }
    for name, task in tasks.items():
        assert task.name == name
        assert list(task.splits) == ["train", "dev", "test"]
        assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [300, 100, 200]
        for split in task.splits.values():
            assert set(split.column_names) == columns.get(name, columns[task.kind])
            if task.kind in ("classification", "pair"):
                counts = Counter(split["label"])
                assert sorted(counts) == list(range(task.num_labels))
                assert max(counts.values()) - min(counts.values()) <= 1
    assert tasks["sentiment"].label_names == ["negative", "positive"]
    assert tasks["topic"].label_names == list(TOPICS) and len(TOPICS) == 5
    assert tasks["pair"].kind == "pair" and tasks["qa"].kind == "qa"


def test_probe_tasks_are_deterministic_and_splits_disjoint(tasks):
    again = generate_probe_task("sentiment", SEED, 300, 100, 200)
    assert again.splits["test"]["text"] == tasks["sentiment"].splits["test"]["text"]
    # test/dev do not depend on train_size; another seed gives other examples
    smaller = generate_probe_task("sentiment", SEED, 10, 100, 200)
    assert smaller.splits["test"]["text"] == tasks["sentiment"].splits["test"]["text"]
    assert (
        generate_probe_task("sentiment", SEED + 1, 10, 10, 10).splits["test"]["text"]
        != (tasks["sentiment"].splits["test"]["text"][:10])
    )
    for name, task in tasks.items():
        column = {"qa": "context", "tagging": "tokens"}.get(task.kind, "text")
        keys = [
            (str(row[column]), row.get("question"), row.get("text_pair"))
            for split in task.splits.values()
            for row in split
        ]
        assert len(set(keys)) == len(keys), name


def _reference_polarity(review: str) -> int:
    """Polarity of the judgement (last sentence): the main clause's opinion, negation-flipped."""
    sentence = re.split(r"(?<=\.) ", review)[-1].rstrip(".").lower()
    if ", but " in sentence or ", yet " in sentence:
        main = re.split(r", (?:but|yet) ", sentence)[1]
    elif sentence.startswith(("although ", "even though ", "while ")):
        main = sentence.split(", ", 1)[1]
    elif ", although " in sentence or ", even though " in sentence:
        main = re.split(r", (?:although|even though) ", sentence)[0]
    else:
        main = sentence
    words = set(main.replace(",", "").split())
    polarity = 1 if words & set(POSITIVE + BARELY_POSITIVE) else -1
    assert words & set(POSITIVE + NEGATIVE + BARELY_POSITIVE), sentence
    return -polarity if words & {"not", "never", "barely"} else polarity


def test_sentiment_label_is_a_function_of_the_text(tasks):
    rows = tasks["sentiment"].splits["train"]
    assert all(_reference_polarity(r["text"]) == (1 if r["label"] else -1) for r in rows)
    texts = " ".join(rows["text"]).lower().split()
    assert {"not", "although", "but", "barely", "very"} <= set(texts)


def test_topic_label_follows_the_counting_cues(tasks):
    topics_of = {cue: set(pair) for pair, cues in PAIR_CUES.items() for cue in cues}
    for row in tasks["topic"].splits["train"]:
        candidates = set(TOPICS)
        for sentence in re.split(r"(?<=\.) ", row["text"]):
            if re.search(r"last (?:week|month|year)", sentence):
                continue  # past-story cue: does not count
            for word in re.findall(r"\w+", sentence.lower()):
                candidates &= topics_of.get(word, candidates)
        assert candidates == {TOPICS[row["label"]]}, row


def test_pair_positives_restate_one_persons_fact(tasks):
    world = build_world(SEED)
    for row in tasks["pair"].splits["train"]:
        names_a = {p.name for p in world.people if p.name in row["text"]}
        names_b = {p.name for p in world.people if p.name in row["text_pair"]}
        assert len(names_a) == 1 and len(names_b) == 1
        if row["label"] == 1:
            assert names_a == names_b and row["text"] != row["text_pair"]


def test_qa_spans_and_right_context(tasks):
    world = build_world(SEED)
    for split in tasks["qa"].splits.values():
        for row in split:
            (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
            assert row["context"][start : start + len(text)] == text
            extended = any(name.startswith(text + " ") for name in world.entity_names)
            assert row["needs_right_context"] == extended
        share = sum(split["needs_right_context"]) / len(split)
        assert 0.3 <= share <= 0.5


def test_qa_answers_are_true_facts(tasks):
    world = build_world(SEED)
    relation_of = {
        "born": ("birth_city", "birth_year"),
        "birthplace": ("birth_city",),
        "live": ("home_city",),
        "work": ("employer",),
        "employs": ("employer",),
        "stud": ("university", "field"),
        "attend": ("university",),
        "graduate": ("university",),
        "degree": ("field",),
    }
    for row in tasks["qa"].splits["train"]:
        person = next(p for p in world.people if p.name in row["question"])
        relations = {r for key, rs in relation_of.items() if key in row["question"] for r in rs}
        assert row["answers"]["text"][0] in {person.value(r) for r in relations}, row


def test_probes_are_held_out_from_the_corpus(docs, tasks):
    sentences = {s for d in docs for s in d["sentences"]}
    documents = {" ".join(d["sentences"]) for d in docs}
    contexts = [c for split in tasks["qa"].splits.values() for c in split["context"]]
    assert not set(contexts) & (documents | sentences)
    context_sentences = [s for c in contexts for s in re.split(r"(?<=\.) ", c)]
    assert sum(s in sentences for s in context_sentences) < 0.05 * len(context_sentences)
    for name in ("sentiment", "topic"):
        texts = tasks[name].splits["train"]["text"]
        assert sum(t in sentences for t in texts) < 0.02 * len(texts), name


# load_embedded_task ------------------------------------------------------------------------


def test_load_embedded_task_matches_generator(tasks):
    task = load_embedded_task("qa", seed=SEED, train_size=300, dev_size=100, test_size=200)
    assert task.splits["dev"]["context"] == tasks["qa"].splits["dev"]["context"]


def test_load_embedded_task_rejects_unknown_name():
    with pytest.raises(PretrainlabError) as info:
        load_embedded_task("sentimnet")
    message = str(info.value)
    assert "sentimnet" in message
    assert all(name in message for name in ("sentiment", "topic", "pair", "qa"))


def test_bad_sizes_are_rejected():
    with pytest.raises(PretrainlabError, match="train_size"):
        load_embedded_task("topic", train_size=0)
    with pytest.raises(PretrainlabError):
        generate_documents(0, SEED)
