"""The zero-shot fact-recall probe (``probe=facts``): facts counted in the corpus, rows, the
objectives' scorers, and the probe end to end (MLM, CLM, scratch, NSP)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import torch

from pretrainlab.config import build
from pretrainlab.data.corpus import SyntheticCorpus
from pretrainlab.data.tasks.base import CLOZE_BLANK
from pretrainlab.data.tokenizer import load_tokenizer
from pretrainlab.embedded import build_world, generate_documents
from pretrainlab.embedded import fact_recall as fr
from pretrainlab.embedded.facts import TEMPLATES
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.objectives.scoring import causal_lm_scores, masked_lm_scores
from pretrainlab.probes.checkpoint import load_checkpoint
from pretrainlab.probes.cloze import zero_shot
from pretrainlab.probes.run import probe
from tests.conftest import compose_config

TINY_CORPUS = "probe.task.corpus.num_words=60000"  # the corpus of the `pretrained` runs
SMALL = [  # the tiny corpus states few facts in >= 2 phrasings: these two subsets instead
    TINY_CORPUS,
    "probe.task.dev_size=20",
    "probe.task.test_size=40",
    "probe.task.subsets=[single_phrasing,unseen]",
]


@pytest.fixture(scope="module")
def default_task():
    """The facts task over the default corpus (1M words), as conf/probe/facts.yaml builds it."""
    return build(compose_config("probe", ["checkpoint=x", "probe=facts"]).probe.task)


def test_counting_finds_each_biography_fact_once():
    world = build_world(0)
    for doc in generate_documents(60_000, 0, 0.3):
        found = fr.count_statements(world, [doc])
        if doc["genre"] != "biography":
            assert found == {}
            continue
        assert len({name for name, _ in found}) == 1  # the biography's person
        assert sorted(r for _, r in found) == sorted(fr.PROBED)
        assert all(len(templates) == 1 for templates in found.values())  # every fact once


def test_rows_hold_the_true_value_once_and_the_split_matches_the_corpus(default_task):
    world = build_world(0)
    text = " ".join(
        s for d in SyntheticCorpus(lexical_share=0.3).documents("train") for s in d["sentences"]
    )
    pairs = {}
    for split in ("dev", "test"):
        ds = default_task.splits[split]
        assert len(ds) == {"dev": 250, "test": 500}[split]
        for row in ds:
            person = world.person_by_name[row["person"]]
            value = person.value(row["relation"])
            assert (
                row["candidates"].count(value) == 1 == len(re.findall(CLOZE_BLANK, row["prompt"]))
            )
            assert row["candidates"][row["label"]] == value
            assert len(set(row["candidates"])) == 10 and all(
                " " not in c for c in row["candidates"]
            )
            assert row["phrasings"] >= (2 if row["subset"] == "paraphrased" else 1)
            assert row["subset"] != "single_phrasing" or row["phrasings"] == 1
            assert row["prompt"].replace(CLOZE_BLANK, value) not in text  # a held-out phrasing
            pairs.setdefault((row["person"], row["relation"]), []).append(split)
        counts = {s: ds["subset"].count(s) for s in ("paraphrased", "single_phrasing")}
        assert abs(counts["paraphrased"] - counts["single_phrasing"]) <= 1  # balanced
    assert all(len(splits) == 1 for splits in pairs.values())  # no fact in both splits
    corpus_templates = {t for ts in TEMPLATES.values() for t in ts}
    assert not corpus_templates & {t for ts in fr.HELDOUT_PROMPTS.values() for t in ts}


def test_distractors_are_values_of_people_stated_alike(default_task):
    """A row's distractors are values held by people of its own subset: the values of facts a
    corpus states often are kept whole by its tokenizer more often than others (a scorer that
    sums log-probabilities over pieces would pick them without knowing any fact)."""
    world = build_world(0)
    statements = fr.count_statements(world, SyntheticCorpus(lexical_share=0.3).documents("train"))
    held: dict[tuple[str, str], set[str]] = {}
    for person in world.people:
        for relation in fr.PROBED:
            subset = fr.subset_of(statements.get((person.name, relation), []))
            held.setdefault((subset, relation), set()).add(person.value(relation))
    for row in default_task.splits["test"]:
        assert set(row["candidates"]) <= held[(row["subset"], row["relation"])]


def test_biography_people_states_each_of_their_facts_more_often():
    """corpus.biography_people=N: biographies name only the world's first N people, so their
    facts are stated more often; null (the default) keeps the corpus's cache key."""
    world, few = build_world(0), 40
    docs = generate_documents(60_000, 0, 0.3, None, few)
    every = generate_documents(60_000, 0, 0.3)
    found, found_every = fr.count_statements(world, docs), fr.count_statements(world, every)
    first = {p.name for p in world.people[:few]}
    assert {name for name, _ in found} <= first
    per_fact = sum(map(len, found.values())) / len(found)
    assert per_fact > 3 * sum(map(len, found_every.values())) / len(found_every)  # ~4x here
    assert SyntheticCorpus().cache_key() == SyntheticCorpus(biography_people=None).cache_key()
    assert SyntheticCorpus().cache_key() != SyntheticCorpus(biography_people=few).cache_key()


@pytest.mark.parametrize("people", [0, 3001, 2.5, True, "all"])
def test_bad_biography_people_is_one_paragraph(people):
    with pytest.raises(PretrainlabError, match=re.escape(f"corpus.biography_people={people!r}")):
        SyntheticCorpus(biography_people=people)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("probe.task.candidates=1", "probe.task.candidates=1 is not valid"),
        ("probe.task.candidates=20", "too many for relation 'field'"),
        ("probe.task.relations=[home_city]", "probe.task.relations"),
        ("probe.task.subsets=[often]", "probe.task.subsets"),
        ("probe.task.prompts=mine", "probe.task.prompts='mine'"),
        ("probe.task.dev_size=0", "probe.task.dev_size=0"),
        ("probe.task.test_size=5000", "does not state enough facts"),
    ],
)
def test_bad_knobs_are_one_paragraph(override, fragment):
    cfg = compose_config("probe", ["checkpoint=x", "probe=facts", TINY_CORPUS, override])
    with pytest.raises(PretrainlabError, match=re.escape(fragment)) as err:
        build(cfg.probe.task)
    assert "\n" not in str(err.value)


def test_a_subset_with_too_few_values_for_its_distractors_is_one_paragraph():
    few = [TINY_CORPUS, "probe.task.corpus.biography_people=4", "probe.task.dev_size=2"]
    few += ["probe.task.test_size=4", "probe.task.subsets=[paraphrased,unseen]"]
    few += ["probe.task.relations=[birth_year]"]
    cfg = compose_config("probe", ["checkpoint=x", "probe=facts", *few])
    with pytest.raises(PretrainlabError, match="too many for the paraphrased facts") as err:
        build(cfg.probe.task)
    assert "\n" not in str(err.value)


class Rigged(torch.nn.Module):
    """A stand-in LM: its head gives ``logits`` at every position, whatever the input; it keeps
    the input ids it was shown."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits, requires_grad=False)
        self.seen: list[torch.Tensor] = []
        self.cls = SimpleNamespace(predictions=lambda h: self.logits.expand(len(h), -1))

    def base_model(self, input_ids, attention_mask, use_cache):
        self.seen.append(input_ids)
        return SimpleNamespace(last_hidden_state=torch.zeros(*input_ids.shape, 1))


def test_scorers_mask_and_score_exactly_the_candidate(pretrained):
    tok = load_tokenizer(pretrained["mlm"] / "hf")
    prompt, options = "she was born in ___ .", ["born", "she was", "in"]
    prefix, suffix = (tok.tokenize(p) for p in prompt.split(CLOZE_BLANK))
    lengths = [len(tok.tokenize(o)) for o in options]
    uniform = Rigged(torch.zeros(len(tok)))
    mlm = masked_lm_scores(uniform, tok, [prompt], [options])[0]
    for ids, option, k in zip(uniform.seen[0], options, lengths, strict=True):
        tokens = tok.convert_ids_to_tokens([i for i in ids.tolist() if i != tok.pad_token_id])
        assert tokens == ["[CLS]", *prefix, *["[MASK]"] * k, *suffix, "[SEP]"], option
    assert torch.allclose(mlm, -torch.tensor(lengths) * math.log(len(tok)))
    clm = causal_lm_scores(uniform, tok, [prompt], [options])[0]  # the candidate, then the suffix
    assert torch.allclose(clm, -(torch.tensor(lengths) + len(suffix)) * math.log(len(tok)))
    favourite = torch.zeros(len(tok)).index_fill_(
        0, torch.tensor(tok.convert_tokens_to_ids("in")), 9.0
    )
    for scorer in (masked_lm_scores, causal_lm_scores):
        assert scorer(Rigged(favourite), tok, [prompt], [options]).argmax().item() == 2


def _zero_shot(probe_cfg, checkpoint, run_dir, *overrides):
    return probe(probe_cfg(checkpoint, "facts", *SMALL, *overrides), run_dir)


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_mlm_and_clm_rank_with_their_own_head(pretrained, probe_cfg, tmp_path, objective):
    result = _zero_shot(probe_cfg, pretrained[objective], tmp_path, "probe.mode=finetune")
    assert read_json(tmp_path / "result.json") == result
    summary = (result["mode"], result["train_examples"], result["tuning"], result["kind"])
    assert summary == ("zeroshot", 0, {}, "cloze")
    for split in ("dev", "test"):
        metrics = result[split]
        assert metrics["chance"] == pytest.approx(0.1)
        assert {"accuracy", "accuracy_single_phrasing", "accuracy_unseen"} <= set(metrics)
        assert all(0 <= v <= 1 for v in metrics.values())
    assert any("probe.mode=finetune" in n for n in result["notes"])  # the mode did not apply
    cfg = probe_cfg(pretrained[objective], "facts", *SMALL)
    task = build(cfg.probe.task)
    ranker = zero_shot(cfg, load_checkpoint(str(pretrained[objective])), task)
    assert (
        ranker.scorer.__name__ == {"mlm": "masked_lm_scores", "clm": "causal_lm_scores"}[objective]
    )
    test = task.splits["test"]
    scores = ranker.scorer(ranker.model, ranker.tokenizer, test["prompt"], test["candidates"])
    assert scores.shape == (40, 10) and torch.isfinite(scores).all() and (scores < 0).all()


def test_scratch_is_at_chance(pretrained, probe_cfg, tmp_path, default_task):
    """A random model with MLM's head on 750 facts of the default corpus: within 4 SE of 1/10."""
    cfg = probe_cfg(
        "scratch",
        "facts",
        f"scratch_from={pretrained['mlm']}",
        "probe.task.dev_size=250",
        "probe.task.test_size=500",
    )
    result = probe(cfg, tmp_path)
    hits = 250 * result["dev"]["accuracy"] + 500 * result["test"]["accuracy"]
    assert abs(hits / 750 - 0.1) < 4 * math.sqrt(0.1 * 0.9 / 750)
    assert result["objective"] == "scratch" and "randomly initialised" in " ".join(result["notes"])


def test_not_applicable_and_mismatches_fail_before_work(
    pretrain_cfg, pretrained, probe_cfg, tmp_path
):
    from pretrainlab.pretrain import pretrain

    nsp = tmp_path / "nsp"
    pretrain(pretrain_cfg("objective=nsp", "trainer.max_steps=10"), nsp)
    with pytest.raises(PretrainlabError, match="not applicable") as err:
        _zero_shot(probe_cfg, nsp, tmp_path / "a")
    assert "\n" not in str(err.value) and "NSPObjective" in str(err.value)
    with pytest.raises(PretrainlabError, match=r"probe\.task\.corpus\.num_words=60000"):
        probe(probe_cfg(pretrained["mlm"], "facts"), tmp_path / "b")  # counted in the 1M corpus
    with pytest.raises(PretrainlabError, match="probe.mode=zeroshot needs a cloze task"):
        probe(probe_cfg(pretrained["mlm"], "sentiment", "probe.mode=zeroshot"), tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")
