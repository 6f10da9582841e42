"""init_from: a run starts from another finished run's body (continued pretraining), records
what that run spent, and bad sources are refused before any work."""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import AutoModel

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.pretrain import pretrain
from pretrainlab.recipe import Recipe
from pretrainlab.warmstart import load_body, source_run


def _body(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.base_model.state_dict().items() if not k.startswith("pooler")}


def test_the_body_is_copied_and_the_heads_start_fresh(pretrain_cfg, pretrained):
    source = pretrained["mlm"]
    cfg = pretrain_cfg("objective=contrastive", f"init_from={source}")
    assert source_run(cfg) == source
    _, objective = Recipe.from_cfg(cfg).prepare()
    theirs = _body(AutoModel.from_pretrained(str(source / "hf")))
    before = _body(objective.model)
    assert any(not torch.equal(before[k], theirs[k]) for k in theirs)  # a fresh init differs
    load_body(objective.model, source)
    after = _body(objective.model)
    assert after.keys() == theirs.keys() and all(torch.equal(after[k], theirs[k]) for k in theirs)


def test_a_continued_run_records_its_source_and_what_it_spent(pretrain_cfg, pretrained, tmp_path):
    source = pretrained["mlm"]
    pattern = str(source.parent / f"{source.name[:-1]}?")  # a glob naming exactly this run
    pretrain(pretrain_cfg("objective=clm", "trainer.max_steps=2", f"init_from={pattern}"), tmp_path)
    info, theirs = read_json(tmp_path / "run.json"), read_json(source / "run.json")
    assert info["status"] == "completed" and info["init_from"] == str(source)
    assert info["compute"]["prior_flops"] == pytest.approx(theirs["compute"]["flops"])
    assert info["compute"]["prior_tokens"] == theirs["compute"]["tokens"]
    assert info["compute"]["steps"] == 2  # its own budget counts only its own steps


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", "names 0 directories"),
        ("unfinished", "not a finished pretraining run"),
        ("other_encoder", "another encoder"),
    ],
)
def test_a_bad_source_is_refused_before_work(pretrain_cfg, pretrained, tmp_path, case, match):
    source = pretrained["mlm"]
    overrides = [f"init_from={source}"]
    if case == "missing":
        overrides = [f"init_from={tmp_path / 'nowhere'}"]
    elif case == "unfinished":
        (tmp_path / "run.json").write_text('{"status": "running"}')
        overrides = [f"init_from={tmp_path}"]
    else:
        overrides.append("encoder.hidden=64")
    cfg = pretrain_cfg("objective=contrastive", *overrides)
    Recipe.from_cfg(cfg)  # the config alone is valid: the source is checked where it is read
    with pytest.raises(PretrainlabError, match=match):
        pretrain(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_reading_a_continued_run_does_not_need_its_source(pretrain_cfg, pretrained, tmp_path):
    """A probe's forgetting monitor rebuilds the run's recipe from its config: a source
    moved or deleted since must not stop it."""
    from pretrainlab.probes.forgetting import PretrainingLoss

    source = tmp_path / "source"
    shutil.copytree(pretrained["mlm"], source)
    run = tmp_path / "continued"
    pretrain(pretrain_cfg("objective=mlm", "trainer.max_steps=2", f"init_from={source}"), run)
    shutil.rmtree(source)
    loss = PretrainingLoss(run)(AutoModel.from_pretrained(str(run / "hf")))
    assert 0 < loss < 20  # the MLM loss of the continued encoder on held-out text


def test_a_study_runs_the_arms_that_start_from_others_last(tmp_path):
    from pretrainlab.study.budgets import waves
    from pretrainlab.study.plan import Job

    then = Job(0, "pretrain", "simcse", 0, ["init_from=pretrain/mlm-s${seed}-*", "seed=0"], "b")
    first = Job(1, "pretrain", "mlm", 0, ["objective=mlm", "seed=0"], "a")
    assert [[j.arm for j in wave] for wave in waves([then, first])] == [["mlm"], ["simcse"]]
    # the source is named inside the study: made absolute where the study is now
    assert then.command_overrides(tmp_path)[0] == f"init_from={tmp_path}/pretrain/mlm-s${{seed}}-*"
