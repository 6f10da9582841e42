"""The `lexical` corpus genre, its probe task with held-out words, their shared knobs, the
subset metrics and the classical check (benchmarks/lexical_check.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from pretrainlab.config import build
from pretrainlab.data.corpus import SyntheticCorpus
from pretrainlab.embedded import generate_documents, generate_probe_task
from pretrainlab.embedded.corpus import build_lexicon
from pretrainlab.embedded.lexical import SUBSETS, LexicalSpec
from pretrainlab.embedded.tasks import load_embedded_task
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.probes.metrics import classification_metrics
from pretrainlab.probes.run import probe
from pretrainlab.recipe import Recipe
from tests.conftest import compose_config

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "lexical_check.py"
SMALL = LexicalSpec(num_classes=4, members_per_class=6, context_words_per_class=5)
SMALL_OVERRIDES = [f"lexical.{k}={v}" for k, v in asdict(SMALL).items()]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(scope="module")
def lexicon():
    return build_lexicon(0, LexicalSpec())


@pytest.fixture(scope="module")
def task():
    return generate_probe_task("lexical", 0, 400, 160, 200)


# The lexicon and the genre ------------------------------------------------------------------


def test_lexicon_words_are_fresh_and_split(lexicon):
    spec = lexicon.spec
    members = [w for c in lexicon.classes for w in c.members]
    context = [w for c in lexicon.classes for w in c.context]
    assert len(lexicon.classes) == spec.num_classes
    assert len(set(members + context)) == len(members) + len(context)  # all distinct
    assert all(re.fullmatch(r"[a-z]{4,}", w) for w in members + context)
    for c in lexicon.classes:
        assert len(c.heldout) == spec.heldout_per_class == 10 and len(c.seen) == 10
    others = generate_documents(100_000, 0)  # the corpus without the genre
    vocabulary = {w for d in others for s in d["sentences"] for w in _words(s)}
    assert not vocabulary & set(members + context)
    assert build_lexicon(0, LexicalSpec()) == lexicon != build_lexicon(1, LexicalSpec())


def test_members_and_their_split_do_not_depend_on_context_words(lexicon):
    other = build_lexicon(0, LexicalSpec(context_words_per_class=3))
    assert [c.heldout for c in other.classes] == [c.heldout for c in lexicon.classes]


def test_genre_share_and_other_genres_unchanged():
    plain = generate_documents(40_000, 0)
    mixed = generate_documents(60_000, 0, lexical_share=0.3)
    words = Counter()
    for doc in mixed:
        words[doc["genre"]] += sum(len(s.split()) for s in doc["sentences"])
    assert abs(words["lexical"] / sum(words.values()) - 0.3) < 0.02
    rest = [d["sentences"] for d in mixed if d["genre"] != "lexical"]
    assert rest[: len(plain) - 1] == [d["sentences"] for d in plain[:-1]]
    assert generate_documents(60_000, 0, lexical_share=0.3) == mixed


def test_lexical_documents_keep_to_one_class(lexicon):
    docs = [d for d in generate_documents(30_000, 0, 0.3) if d["genre"] == "lexical"]
    class_of = {w: k for k, c in enumerate(lexicon.classes) for w in c.members + c.context}
    for doc in docs:
        found = {class_of[w] for s in doc["sentences"] for w in _words(s) if w in class_of}
        assert len(found) == 1, doc


def test_most_members_stand_next_to_a_context_word_of_their_class(lexicon):
    """The class shows in a member's neighbours (as an adjective shows its noun's kind): the
    templates put a context word right before or after most members."""
    docs = [d for d in generate_documents(30_000, 0, 0.3) if d["genre"] == "lexical"]
    class_of = {w: k for k, c in enumerate(lexicon.classes) for w in c.members}
    context_of = {w: k for k, c in enumerate(lexicon.classes) for w in c.context}
    beside = total = 0
    for doc in docs:
        for sentence in doc["sentences"]:
            words = re.findall(r"[a-z]+", sentence.lower())
            for i, w in enumerate(words):
                if w in class_of:
                    near = {context_of.get(words[j]) for j in (i - 1, i + 1) if 0 <= j < len(words)}
                    total += 1
                    beside += class_of[w] in near
    assert total > 1000 and 0.5 < beside / total < 0.9, beside / total


def test_heldout_members_appear_in_the_default_corpus(lexicon):
    docs = generate_documents(100_000, 0, lexical_share=0.3)
    counts = Counter(w for d in docs for s in d["sentences"] for w in _words(s))
    assert all(counts[w] >= 3 for c in lexicon.classes for w in c.heldout)


# The probe task -----------------------------------------------------------------------------


def test_task_shape_and_balance(task, lexicon):
    assert task.kind == "classification" and task.num_labels == 10
    for name, split in task.splits.items():
        assert set(split.column_names) == {"text", "label", "subset"}
        cells = Counter(zip(split["label"], split["subset"], strict=True))
        if name == "train":
            assert set(split["subset"]) == {"seen_words"}
        else:
            assert set(split["subset"]) == set(SUBSETS)
            assert max(cells.values()) - min(cells.values()) <= 1 and len(cells) == 20


def test_each_text_holds_one_member_of_its_class_and_no_context_word(task, lexicon):
    class_of = {w: k for k, c in enumerate(lexicon.classes) for w in c.members}
    heldout = {w for c in lexicon.classes for w in c.heldout}
    context = {w for c in lexicon.classes for w in c.context}
    for split in task.splits.values():
        for row in split:
            words = _words(row["text"])
            (member,) = words & set(class_of)
            assert class_of[member] == row["label"] and not words & context
            assert (member in heldout) == (row["subset"] == "heldout_words")


def test_heldout_words_never_in_the_train_text(task, lexicon):
    train_words = {w for text in task.splits["train"]["text"] for w in _words(text)}
    heldout = {w for c in lexicon.classes for w in c.heldout}
    assert not train_words & heldout
    assert {w for c in lexicon.classes for w in c.seen} <= train_words


def test_filler_carries_no_class_information(task, lexicon):
    """With the member word removed, a bag of words is at chance (0.1) on the test split."""
    members = {w for c in lexicon.classes for w in c.members}

    def strip(texts):
        return [
            " ".join(w for w in re.findall(r"\w+", t.lower()) if w not in members) for t in texts
        ]

    train = generate_probe_task("lexical", 0, 2000, 10, 1000).splits
    bow = CountVectorizer().fit(strip(train["train"]["text"]))
    model = LogisticRegression(max_iter=1000).fit(
        bow.transform(strip(train["train"]["text"])), train["train"]["label"]
    )
    accuracy = model.score(bow.transform(strip(train["test"]["text"])), train["test"]["label"])
    assert accuracy < 0.16


def test_task_is_deterministic_and_follows_its_knobs(task):
    again = load_embedded_task("lexical", 0, 400, 160, 200, lexical=asdict(LexicalSpec()))
    assert again.splits["test"]["text"] == task.splits["test"]["text"]
    small = load_embedded_task("lexical", 0, 40, 16, 16, lexical=asdict(SMALL))
    assert small.num_labels == 4 and set(small.splits["test"]["label"]) == set(range(4))


# Shared knobs and bad knobs ------------------------------------------------------------------


def test_corpus_and_probe_share_one_lexical_node():
    pretrain = compose_config("pretrain", [])
    probe_cfg = compose_config("probe", ["probe=lexical", "checkpoint=x"])
    defaults = asdict(LexicalSpec())
    assert OmegaConf.to_container(pretrain.corpus.lexical) == defaults
    assert OmegaConf.to_container(probe_cfg.probe.task.lexical) == defaults
    corpus = build(pretrain.corpus)
    assert corpus.lexical == LexicalSpec() and corpus.lexical_share == 0.3
    assert corpus.fingerprint()["lexical"] == defaults


def test_share_zero_keeps_the_cache_key_of_before():
    corpus = SyntheticCorpus(num_words=5000, seed=3, lexical_share=0, lexical=asdict(SMALL))
    assert set(corpus.fingerprint()) == {"kind", "num_words", "seed", "val_fraction"}


BAD_KNOBS = [
    ("num_classes", 1, "num_classes=1"),
    ("num_classes", 2.5, "num_classes=2.5"),
    ("num_classes", "ten", "num_classes='ten'"),
    ("num_classes", True, "num_classes=True"),
    ("members_per_class", 1, "members_per_class=1"),
    ("members_per_class", 40.0, "members_per_class=40.0"),
    ("context_words_per_class", 0, "context_words_per_class=0"),
    ("heldout_share", 0, "heldout_share=0"),
    ("heldout_share", 1, "heldout_share=1"),
    ("heldout_share", 0.01, "[0.025, 0.975)"),  # rounds to 0 of 20 held out
    ("heldout_share", 0.99, "[0.025, 0.975)"),  # rounds to 20 of 20 held out
    ("heldout_share", "half", "heldout_share='half'"),
    ("members", 3, "unknown key(s) members"),
]


@pytest.mark.parametrize(("key", "value", "fragment"), BAD_KNOBS)
def test_bad_lexical_knobs_fail_before_any_work(key, value, fragment, monkeypatch):
    monkeypatch.setattr(
        "pretrainlab.embedded.tasks.generate_probe_task", lambda *a: pytest.fail("work")
    )
    node = {**asdict(LexicalSpec()), key: value}
    for make in (
        lambda: SyntheticCorpus(lexical_share=0.3, lexical=node),
        lambda: load_embedded_task("lexical", lexical=node),
    ):
        with pytest.raises(PretrainlabError) as info:
            make()
        message = str(info.value)
        assert fragment in message and "\n" not in message, message
        assert "expected" in message or "accepted" in message, message


def test_too_many_generated_words():
    with pytest.raises(PretrainlabError, match="more than the 100000 accepted"):
        LexicalSpec(num_classes=1000, members_per_class=100)


@pytest.mark.parametrize("share", [-0.1, 1.5, "most", None])
def test_bad_lexical_share(share, pretrain_cfg):
    cfg = pretrain_cfg()
    OmegaConf.update(cfg, "corpus.lexical_share", share, merge=False)
    with pytest.raises(PretrainlabError, match=re.escape(f"corpus.lexical_share={share!r}")):
        Recipe.from_cfg(cfg)


def test_bad_lexical_knob_through_the_pretrain_config(pretrain_cfg):
    with pytest.raises(PretrainlabError, match="num_classes=1 is not valid"):
        Recipe.from_cfg(pretrain_cfg("corpus.lexical.num_classes=1"))


# Metrics and the probe ----------------------------------------------------------------------


def test_subset_accuracies():
    preds, target = torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 1])
    subsets = ["heldout_words", "seen_words", "heldout_words", "heldout_words"]
    out = classification_metrics(preds, target, 3, subsets)
    assert out["accuracy"] == 0.5 and out["accuracy_seen_words"] == 1.0
    assert out["accuracy_heldout_words"] == pytest.approx(1 / 3)
    assert "accuracy_seen_words" not in classification_metrics(preds, target, 3)


@pytest.fixture(scope="module")
def tiny_run(pretrain_cfg, tmp_path_factory):
    from pretrainlab.pretrain import pretrain

    run = tmp_path_factory.mktemp("lexical_run")
    pretrain(pretrain_cfg("trainer.max_steps=4", "trainer.val_check_interval=4"), run)
    return run


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_probe_reports_subset_accuracies(tiny_run, probe_cfg, tmp_path, mode):
    overrides = [f"probe.mode={mode}", "probe.finetune.max_steps=4", "probe.linear.epochs=20"]
    probe(probe_cfg(tiny_run, "lexical", *overrides), tmp_path)
    saved = read_json(tmp_path / "result.json")
    assert saved["task"] == "lexical" and saved["metric"] == "accuracy"
    for split in ("dev", "test"):
        assert {"accuracy", "accuracy_heldout_words", "accuracy_seen_words"} <= set(saved[split])


# The classical check ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lexical_check():
    spec = importlib.util.spec_from_file_location("lexical_check", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(module, monkeypatch, capsys, *overrides: str) -> tuple[int, str]:
    small = ["corpus.num_words=30000", "tokenizer.vocab_size=1000"]
    small += ["probe.task.train_size=240", "probe.task.test_size=240", *SMALL_OVERRIDES]
    monkeypatch.setattr(sys, "argv", [str(BENCHMARK), *small, *overrides])
    code = module.main()
    return code, capsys.readouterr().out


def test_lexical_check_passes_and_fails_without_the_genre(
    lexical_check, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("PRETRAINLAB_CACHE", str(tmp_path))
    code, out = _check(lexical_check, monkeypatch, capsys)
    assert code == 0 and "PPMI+SVD word vectors" in out and out.rstrip().endswith("PASS"), out
    code, out = _check(lexical_check, monkeypatch, capsys, "corpus.lexical_share=0")
    assert code == 1 and "FAIL: PPMI" in out, out  # held-out words: not in the corpus
