"""Token tagging and sentence similarity: the embedded tasks' construction (word_similarity,
similarity's positive control, included), the CoNLL and STS
readers (and their bad input), seqeval F1 and Spearman on hand-made cases, sub-word alignment,
and a linear probe of each task end to end on the tiny checkpoints."""

import random
from collections import Counter, defaultdict

import datasets
import pytest
import torch

from pretrainlab.data.tasks.conll import load_conll
from pretrainlab.data.tasks.sts import load_sts
from pretrainlab.data.tokenizer import TokenizerSpec, _build, wrap
from pretrainlab.embedded.corpus import build_lexicon
from pretrainlab.embedded.lexical import LexicalSpec
from pretrainlab.embedded.similarity import FACTS_PER_TEXT, SimilarityMaker
from pretrainlab.embedded.tagging import LABEL_NAMES, TaggingMaker
from pretrainlab.embedded.tasks import load_embedded_task
from pretrainlab.embedded.world import build_world
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.probes.run import probe
from pretrainlab.probes.similarity import correlations
from pretrainlab.probes.tagging import IGNORE, align, entity_scores
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def drawn() -> dict[str, list[dict]]:
    """Many rows of each subset straight from the maker (no dedup): what the task samples."""
    maker, rng = TaggingMaker(build_world(0)), random.Random(0)
    rows = [maker(rng, i % 2 == 0) for i in range(40000)]
    return {s: [r for r in rows if r["subset"] == s] for s in ("right_context", "left_context")}


def _target_tag(row: dict) -> str:
    return LABEL_NAMES[row["tags"][row["target"][0]]]


def _left_context_readers(rows: list[dict]) -> tuple[float, float]:
    """What the words up to and including the target say about its tag: the held-out accuracy
    of a lookup table from them to the majority tag (fitted on half the rows, scored on the
    other half's rows whose context it has seen), and the share of pairs of rows with the same
    such context that disagree on the tag."""
    table: dict[tuple, Counter] = defaultdict(Counter)
    half = len(rows) // 2
    for row in rows[:half]:
        table[tuple(row["tokens"][: row["target"][0] + 1])][_target_tag(row)] += 1
    hits = [
        table[key].most_common(1)[0][0] == _target_tag(row)
        for row in rows[half:]
        if (key := tuple(row["tokens"][: row["target"][0] + 1])) in table
    ]
    pairs = sum(n * (n - 1) / 2 for c in table.values() for n in [sum(c.values())])
    discordant = sum(c["B-LOC"] * c["B-ORG"] for c in table.values())
    assert len(hits) > 1000 and pairs > 1000  # contexts do repeat: the statistics mean something
    return sum(hits) / len(hits), discordant / pairs


def test_right_context_tags_are_undecidable_from_the_left(drawn):
    right_acc, right_disagree = _left_context_readers(drawn["right_context"])
    left_acc, left_disagree = _left_context_readers(drawn["left_context"])
    assert abs(right_acc - 0.5) < 0.05 and abs(right_disagree - 0.5) < 0.05
    assert left_acc == 1.0 and left_disagree == 0.0  # the type word before it decides
    for row in drawn["right_context"]:  # and the word after it decides the right ones
        after = row["tokens"][row["target"][0] + 1]
        assert (_target_tag(row) == "B-ORG") == after[0].isupper()


def test_tagging_task_is_balanced_and_deterministic():
    task = load_embedded_task("tagging", train_size=200, dev_size=60, test_size=60)
    again = load_embedded_task("tagging", train_size=200, dev_size=60, test_size=60)
    assert task.kind == "tagging" and task.primary_metric == "f1"
    assert task.splits["test"]["tokens"] == again.splits["test"]["tokens"]
    test = task.splits["test"]
    assert Counter(test["subset"]) == {"right_context": 30, "left_context": 30}
    types = Counter(
        LABEL_NAMES[tags[a]] for tags, (a, _) in zip(test["tags"], test["target"], strict=True)
    )
    assert set(types) == {"B-LOC", "B-ORG"} and min(types.values()) > 15
    seen = {tuple(t) for s in ("train", "dev") for t in task.splits[s]["tokens"]}
    assert not seen & {tuple(t) for t in test["tokens"]}  # no row repeats across splits


def test_seqeval_entity_f1_and_subsets_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "I-ORG", "O"]]
    # gold: PER, LOC, ORG; predicted: PER (right), ORG, LOC, ORG (I- starts one): 1 of 4, 1 of 3
    scores = entity_scores(gold, pred, ["a", "b"], [[0, 2], [0, 2]])
    assert scores["precision"] == pytest.approx(1 / 4) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 / 7)
    assert scores["accuracy"] == pytest.approx(5 / 7)
    assert scores["f1_a"] == 1.0 and scores["f1_b"] == 0.0  # targets alone: PER, then ORG


def test_first_sub_token_carries_the_word_tag():
    tok, trainer = _build(TokenizerSpec(vocab_size=64, min_frequency=1))
    tok.train_from_iterator(["abcd efgh abef cdgh"] * 3, trainer=trainer)
    tokenizer = wrap(tok, max_length=64)
    ds = datasets.Dataset.from_dict({"tokens": [["abcdefgh", "ab"]], "tags": [[1, 2]]})
    inputs, labels = align(ds, tokenizer, 64)
    assert tokenizer.tokenize("abcdefgh") == ["abcd", "##ef", "##gh"]  # one word, three pieces
    # [CLS] abcd ##ef ##gh ab [SEP]: the tag at each word's first piece only
    assert labels[0].tolist() == [IGNORE, 1, IGNORE, IGNORE, 2, IGNORE]
    assert inputs["input_ids"].shape == (1, 6) and not inputs["token_type_ids"].any()


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


CONLL = "-DOCSTART- -X- O O\n\nAna NNP B-PER\nBel NNP I-PER\nwent VBD O\nto TO O\n{loc}\n. . O\n\n"


def test_conll_reader_converts_schemes_to_iob2(tmp_path):
    org = "Brin NNP I-ORG\nLabs NNP I-ORG\n\n"
    iob1 = _write(tmp_path / "a.txt", CONLL.format(loc="Varno NNP I-LOC") * 5 + org)
    bioes = "Ana X S-PER\nVarno X B-ORG\nLabs X E-ORG\n\n" * 5
    task = load_conll(iob1, dev_file=_write(tmp_path / "b.txt", bioes), test_size=1)
    names = task.label_names
    assert task.kind == "tagging"
    assert names == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    first = next(r for r in task.splits["train"] if len(r["tokens"]) == 6)
    assert first["tokens"] == ["Ana", "Bel", "went", "to", "Varno", "."]
    assert [names[t] for t in first["tags"]] == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    dev = [names[t] for t in task.splits["dev"][0]["tags"]]
    assert dev == ["B-PER", "B-ORG", "I-ORG"] and len(task.splits["test"]) == 1
    assert any("iob1" in n and "bioes" in n for n in task.notes)


@pytest.mark.parametrize(
    "text, scheme, match",
    [
        ("Ana B-PER\nBel NNP I-PER\n", "auto", r"line 2 has 3 column\(s\).*expected 2"),
        ("Ana\n", "auto", r"line 1 has 1 column"),
        ("Ana NNP X-PER\n", "auto", r"line 1 has the tag 'X-PER'.*IOB1, IOB2.*BIOES"),
        ("Ana NNP b-per\n", "auto", r"tag 'b-per'"),
        ("Ana NNP S-PER\n", "iob2", r"tag 'S-PER', which tag_scheme=iob2"),
        ("Ana NNP O\nBel NNP I-PER\n", "iob2", r"line 2: the tag I-PER does not continue"),
    ],
)
def test_conll_bad_input_is_one_paragraph_naming_file_and_line(tmp_path, text, scheme, match):
    path = _write(tmp_path / "bad.txt", text)
    with pytest.raises(PretrainlabError, match=match) as err:
        load_conll(path, dev_file=path, test_file=path, tag_scheme=scheme)
    assert path in str(err.value) and "\n" not in str(err.value)


def test_bad_conll_stops_the_probe_before_any_model_work(pretrained, cache_dir, tmp_path):
    path = _write(tmp_path / "bad.txt", "Ana NNP Q-PER\n")
    overrides = [f"checkpoint={pretrained['mlm']}", "probe=conll", "logger=none"]
    cfg = compose_config("probe", [*overrides, f"paths.cache_dir={cache_dir}"])
    cfg.probe.task.train_file = path
    with pytest.raises(PretrainlabError, match="Q-PER"):
        probe(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


STS = "index\tsentence1\tsentence2\tscore\n" + "".join(
    f"{i}\ta man plays {i}\ta man sings {i}\t{i % 6}.0\n" for i in range(30)
)


def test_sts_reader_and_score_range(tmp_path):
    path = _write(tmp_path / "train.tsv", STS)
    task = load_sts(path, dev_size=5, test_size=5)
    assert task.kind == "similarity" and task.primary_metric == "spearman"
    assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [20, 5, 5]
    row = task.splits["train"][0]
    assert row["text"].startswith("a man plays") and 0 <= row["label"] <= 5
    bad = _write(tmp_path / "bad.tsv", STS.replace("\t5.0\n", "\t5.5\n", 1))
    with pytest.raises(PretrainlabError, match=r"bad.tsv' line 7: score is '5.5', outside"):
        load_sts(bad)
    with pytest.raises(PretrainlabError, match=r"score_range=\[5, 0\]"):
        load_sts(path, score_range=[5, 0])
    with pytest.raises(PretrainlabError, match="no column 'label'"):
        load_sts(path, score_column="label")


def test_spearman_by_hand():
    out = correlations([0.1, 0.4, 0.2, 0.9], [1, 3, 2, 4])
    assert out["spearman"] == pytest.approx(1.0) and out["pearson"] < 1.0
    assert correlations([4, 3, 2, 1], [1, 2, 3, 5], "_cosine")["spearman_cosine"] == -1.0
    # one swap of adjacent ranks among 4: 1 - 6 * 2 / (4 * 15) = 0.8
    assert correlations([1, 3, 2, 4], [1, 2, 3, 4])["spearman"] == pytest.approx(0.8)


def test_similarity_grades_follow_the_sts_scale():
    world = build_world(0)
    maker, rng = SimilarityMaker(world), random.Random(0)
    names = [p.name for p in world.people]
    for shared in (None, *range(FACTS_PER_TEXT + 1)):
        row = maker(rng, shared)
        expected = 0.0 if shared is None else 1 + 4 * shared / FACTS_PER_TEXT
        assert row["label"] == pytest.approx(expected)
        assert row["subset"] == ("other_person" if shared is None else "same_person")
        sentences = [s for s in row["text"].split(". ") if s]
        assert len(sentences) == FACTS_PER_TEXT
        who = [next(n for n in names if n in t) for t in (row["text"], row["text_pair"])]
        assert (who[0] == who[1]) == (shared is not None)  # one person unless graded 0
    task = load_embedded_task("similarity", train_size=40, dev_size=20, test_size=25)
    assert set(Counter(task.splits["test"]["label"]).values()) == {5}  # 5 grades x 5


def test_word_similarity_pairs_differ_in_one_member_word():
    task = load_embedded_task("word_similarity", train_size=200, dev_size=80, test_size=80)
    lexicon = build_lexicon(0, LexicalSpec())
    class_of = {w: k for k, c in enumerate(lexicon.classes) for w in c.members}
    heldout = {w for c in lexicon.classes for w in c.heldout}
    for name, split in task.splits.items():
        assert Counter(split["label"]) == {0.0: len(split) // 2, 1.0: len(split) // 2}
        for row in split:
            a, b = row["text"].split(), row["text_pair"].split()
            diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
            diff = [d for d in diff if set(d) != {"a", "an"}]  # the member's own article
            assert len(diff) == 1, row  # one frame, one word apart
            first, second = (w.strip(".,").lower() for w in diff[0])
            assert first != second and {first, second} <= set(class_of)
            assert row["label"] == float(class_of[first] == class_of[second])
            both_heldout = {first, second} <= heldout
            assert both_heldout == (row["subset"] == "heldout_words")
            assert both_heldout or not {first, second} & heldout  # never a mixed pair
        subsets = Counter(split["subset"])
        assert subsets == ({"seen_words": len(split)} if name == "train" else
                           {"heldout_words": len(split) // 2, "seen_words": len(split) // 2})  # fmt: skip


def test_word_similarity_refuses_classes_too_small_to_pair():
    with pytest.raises(PretrainlabError, match=r"members_per_class=3 with heldout_share=0.5"):
        load_embedded_task(
            "word_similarity", lexical={"members_per_class": 3, "heldout_share": 0.5}
        )


@pytest.mark.parametrize("task", ["tagging", "similarity", "word_similarity"])
def test_linear_probe_end_to_end(pretrained, probe_cfg, tmp_path, task):
    cfg = probe_cfg(pretrained["mlm"], task, "probe.linear.epochs=20")
    result = probe(cfg, tmp_path)
    assert result == read_json(tmp_path / "result.json")
    assert result["kind"] == task.removeprefix("word_") and result["mode"] == "linear"
    test = result["test"]
    if task == "tagging":
        assert result["metric"] == "f1" and {"f1_right_context", "f1_left_context"} <= set(test)
        assert (
            result["tuning"]["chosen"]["weight_decay"] in result["tuning"]["grid"]["weight_decay"]
        )
    elif task == "word_similarity":  # no surface signal: the bag of words finds none
        words = {"spearman_cosine_heldout_words", "spearman_cosine_seen_words"}
        assert result["metric"] == "spearman" and words <= set(test)
        assert abs(result["reference"]["bow"]["spearman_cosine"]) < 0.2
    else:
        assert result["metric"] == "spearman" and {"spearman_cosine", "pearson"} <= set(test)
        within = {"spearman_same_person", "spearman_cosine_same_person"}
        assert within <= set(test) and not any("other_person" in k for k in test)  # one grade
        assert set(result["reference"]["bow"]) >= {"spearman", "spearman_cosine", *within}
        assert result["reference"]["bow"]["spearman"] > 0.3  # the classical check finds it
    assert all(-1 <= v <= 1 for v in test.values())


def test_similarity_refuses_finetuning_before_work(pretrained, probe_cfg, tmp_path):
    cfg = probe_cfg(pretrained["mlm"], "similarity", "probe.mode=finetune")
    with pytest.raises(PretrainlabError, match="probe.mode=finetune is not available"):
        probe(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_tagging_finetune_and_scratch(pretrained, probe_cfg, tmp_path):
    cfg = probe_cfg(
        "scratch",
        "tagging",
        f"scratch_from={pretrained['clm']}",
        "probe.mode=finetune",
        "probe.finetune.lr_grid=null",
        "probe.finetune.max_steps=4",
        "probe.finetune.eval_every=2",
    )
    result = probe(cfg, tmp_path)
    assert result["objective"] == "scratch" and result["train_steps"] == 4
    assert {"f1", "f1_right_context", "f1_left_context"} <= set(result["test"])
    assert torch.isfinite(torch.tensor(list(result["test"].values()))).all()
