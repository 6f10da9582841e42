"""Probes: pooling, budgets, the feature cache, every embedded task end to end, bad input."""

import json

import pytest
import torch

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.models.encoder import pool
from pretrainlab.probes import features
from pretrainlab.probes.run import budget_indices, probe


def test_pooling():  # what `auto` picks: tests/test_probe_protocol.py
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert torch.equal(pool(hidden, mask, "cls"), hidden[:, 0])
    assert torch.equal(pool(hidden, mask, "last"), torch.stack([hidden[0, 2], hidden[1, 1]]))
    assert torch.allclose(pool(hidden, mask, "mean")[1], hidden[1, :2].mean(0))


def test_budgets_are_nested_and_seeded():
    small, large = budget_indices(1000, 100, 0), budget_indices(1000, 400, 0)
    assert set(small) <= set(large) and len(small) == 100
    assert budget_indices(1000, 100, 0) == small != budget_indices(1000, 100, 1)
    assert len(budget_indices(1000, 0.25, 0)) == 250
    with pytest.raises(PretrainlabError, match="larger than the training set"):
        budget_indices(1000, 5000, 0)


def test_linear_probe_on_cached_features_is_bit_identical(
    pretrained, probe_cfg, tmp_path, monkeypatch
):
    cfg = probe_cfg(pretrained["mlm"], "topic", "probe.train_examples=150")
    first = probe(cfg, tmp_path / "a")
    monkeypatch.setattr(features, "encode_split", lambda *a, **k: pytest.fail("not cached"))
    monkeypatch.setattr(
        "pretrainlab.probes.frozen.encode_split", lambda *a, **k: pytest.fail("not cached")
    )
    second = probe(cfg, tmp_path / "b")
    assert first["dev"] == second["dev"] and first["test"] == second["test"]


@pytest.mark.parametrize("task", ["sentiment", "topic", "pair", "qa"])
def test_each_embedded_task_end_to_end(pretrained, probe_cfg, tmp_path, task):
    result = probe(probe_cfg(pretrained["clm"], task, "probe.train_examples=100"), tmp_path)
    saved = read_json(tmp_path / "result.json")
    assert saved == json.loads(json.dumps(result))
    assert saved["objective"] == "clm" and saved["pooling"] == "last"
    assert saved["train_examples"] == 100 and saved["task"] == task
    metric = "f1" if task == "qa" else "accuracy"
    if task == "qa":  # split by answers whose extent only right context fixes
        assert {"f1_right_context", "f1_other"} <= set(saved["test"])
    assert saved["metric"] == metric and 0 <= saved["test"][metric] <= (100 if task == "qa" else 1)


@pytest.mark.parametrize("task", ["sentiment", "qa"])
def test_finetune_restores_best_and_monitors_forgetting(pretrained, probe_cfg, tmp_path, task):
    result = probe(
        probe_cfg(
            pretrained["mlm"],
            task,
            "probe.mode=finetune",
            "probe.finetune.max_epochs=2",
            "probe.train_examples=64",
        ),
        tmp_path,
    )
    assert result["mode"] == "finetune"
    assert set(result["forgetting"]) == {"start", "end"}
    assert result["forgetting"]["start"] > 0
    assert 0 < result["train_steps"] <= 2 * 4  # 2 epochs of 64 examples in batches of 16


def test_finetune_stops_at_max_steps(pretrained, probe_cfg, tmp_path):
    cfg = probe_cfg(
        pretrained["mlm"],
        "sentiment",
        "probe.mode=finetune",
        "probe.finetune.max_epochs=10",
        "probe.finetune.max_steps=3",
        "probe.train_examples=64",
    )
    # 4 steps an epoch: exactly max_steps updates, mid-epoch (no longer the whole epoch)
    assert probe(cfg, tmp_path)["train_steps"] == 3


def test_scratch_baseline_uses_the_runs_tokenizer(pretrained, probe_cfg, tmp_path):
    result = probe(probe_cfg("scratch", "sentiment", f"scratch_from={pretrained['mlm']}"), tmp_path)
    assert result["objective"] == "scratch" and result["checkpoint"] == "scratch"


def test_bad_checkpoints_fail_before_work(pretrained, probe_cfg, tmp_path):
    with pytest.raises(PretrainlabError, match="does not exist"):
        probe(probe_cfg(tmp_path / "nowhere", "sentiment"), tmp_path / "a")
    half = tmp_path / "half"
    half.mkdir()
    (half / "run.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(PretrainlabError, match="not a finished run"):
        probe(probe_cfg(half, "sentiment"), tmp_path / "b")
    with pytest.raises(PretrainlabError, match="scratch_from"):
        probe(probe_cfg("scratch", "sentiment"), tmp_path / "c")
    with pytest.raises(PretrainlabError, match="larger than the training set"):
        probe(
            probe_cfg(pretrained["mlm"], "sentiment", "probe.train_examples=100000"), tmp_path / "d"
        )
    with pytest.raises(PretrainlabError, match="probe.mode='frozen' is not valid"):
        probe(probe_cfg(pretrained["mlm"], "sentiment", "probe.mode=frozen"), tmp_path / "e")


def test_tokenizer_that_does_not_match_the_checkpoint(pretrained, probe_cfg, tmp_path):
    import shutil

    run = tmp_path / "mixed"
    shutil.copytree(pretrained["mlm"], run)
    config = json.loads((run / "hf" / "config.json").read_text())
    config["vocab_size"] += 7
    (run / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(PretrainlabError, match="do not belong together"):
        probe(probe_cfg(run, "sentiment"), tmp_path / "p")


def test_pairs_carry_segment_ids_only_for_segment_checkpoints(pretrained):
    from pretrainlab.data.tokenizer import load_tokenizer
    from pretrainlab.probes.features import tokenize

    tok = load_tokenizer(pretrained["mlm"] / "hf")
    rows = {"text": ["she was born here"], "text_pair": ["he works there"]}
    with_segments = tokenize(rows, tok, 32, segments=True)["token_type_ids"][0]
    assert with_segments[0] == 0 and with_segments.max() == 1  # B is segment 1
    assert tokenize(rows, tok, 32, segments=False)["token_type_ids"].max() == 0


def test_result_notes_a_legacy_cls_only_where_auto_picked_it(pretrained, probe_cfg, tmp_path):
    """A run from before objectives recorded ``probe_pooling`` gets the old attention-type rule
    ([CLS] if bidirectional) and a note naming probe.pooling=mean; a new run needs no note."""
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(pretrained["mlm"], legacy)
    info = read_json(legacy / "run.json")
    del info["probe_pooling"]
    (legacy / "run.json").write_text(json.dumps(info))

    def notes(checkpoint, *overrides):
        cfg = probe_cfg(checkpoint, "sentiment", "probe.train_examples=50", *overrides)
        result = probe(cfg, tmp_path / f"{checkpoint.name}_{'_'.join(overrides or ['auto'])}")
        return result["pooling"], [n for n in result["notes"] if n.startswith("pooling:")]

    pooling, legacy_notes = notes(legacy)
    assert pooling == "cls" and len(legacy_notes) == 1
    assert "has no probe_pooling" in legacy_notes[0] and "probe.pooling=mean" in legacy_notes[0]
    assert notes(legacy, "probe.pooling=cls") == ("cls", [])  # asked for: no advice
    assert notes(pretrained["mlm"]) == ("mean", [])  # declared by the objective
    assert notes(pretrained["clm"]) == ("last", [])
