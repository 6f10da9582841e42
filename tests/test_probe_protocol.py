"""The probe protocol gives every arm the same chance: dev-chosen fine-tuning learning rate and
linear weight decay from one grid with one budget, and pooling by what the objective trains."""

import itertools
import json
import shutil

import pytest

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.objectives.clm import CLMObjective
from pretrainlab.objectives.mlm import MLMObjective
from pretrainlab.objectives.mlm_nsp import MLMNSPObjective
from pretrainlab.objectives.nsp import NSPObjective
from pretrainlab.probes import run as probe_run
from pretrainlab.probes.run import probe
from pretrainlab.probes.tuning import tune
from tests.test_objectives_zoo_b import _objective

FT = ["probe.mode=finetune", "probe.train_examples=64", "probe.finetune.max_steps=6"]
FT += ["probe.finetune.eval_every=4", "probe.finetune.max_epochs=null"]  # 4 steps an epoch


def _argmax(tuning: dict) -> float:
    """The first grid value with the best dev score."""
    scores = tuning["dev_by_value"]
    (name,) = tuning["grid"]
    return next(v for v in tuning["grid"][name] if scores[str(v)] == max(scores.values()))


def test_finetune_grid_and_budget_are_the_same_for_every_arm(
    pretrained, probe_cfg, tmp_path, monkeypatch
):
    updates = []
    real = probe_run.fit_steps

    def counted(module, *args, **kwargs):
        out = real(module, *args, **kwargs)
        updates.append((module.lr, module.trainer.global_step))
        return out

    monkeypatch.setattr(probe_run, "fit_steps", counted)
    arms = {
        "scratch": probe_cfg("scratch", "sentiment", f"scratch_from={pretrained['mlm']}", *FT),
        "mlm": probe_cfg(pretrained["mlm"], "sentiment", *FT),
    }
    results = {arm: probe(cfg, tmp_path / arm) for arm, cfg in arms.items()}
    grid = [1e-4, 3e-4, 1e-3]  # conf/probe/settings.yaml
    assert updates == [(lr, 6) for lr in grid] * 2  # every lr of every arm: 6 updates
    for result in results.values():
        tuning = result["tuning"]
        assert tuning["grid"] == {"lr": grid} and tuning["train_steps"] == 6
        assert result["train_steps"] == 6 and set(tuning["dev_by_value"]) == {str(v) for v in grid}
        assert tuning["chosen"] == {"lr": _argmax(tuning)}
        # dev and test are the restored best weights of the chosen lr
        chosen = tuning["dev_by_value"][str(tuning["chosen"]["lr"])]
        assert result["dev"]["accuracy"] == pytest.approx(chosen)
    assert read_json(tmp_path / "mlm" / "result.json")["tuning"] == results["mlm"]["tuning"]


def test_chosen_lr_is_the_dev_argmax_and_one_value_runs_once(
    pretrained, probe_cfg, tmp_path, monkeypatch
):
    dev = {1e-4: 0.6, 3e-4: 0.8, 1e-3: 0.8, 5e-4: 0.7}  # a tie: the first in grid order wins
    calls = []

    def fake_fit(module, train, dev_loader, steps, eval_every, **kwargs):
        calls.append(module.lr)
        return dev[module.lr], module.state_dict()

    monkeypatch.setattr(probe_run, "fit_steps", fake_fit)
    result = probe(probe_cfg(pretrained["clm"], "sentiment", *FT), tmp_path / "grid")
    assert calls == [1e-4, 3e-4, 1e-3] and result["tuning"]["chosen"] == {"lr": 3e-4}
    assert result["tuning"]["dev_by_value"] == {"0.0001": 0.6, "0.0003": 0.8, "0.001": 0.8}
    for grid, lr in (("[1e-3]", 1e-3), ("null", 5e-4)):  # null: probe.finetune.lr alone
        calls.clear()
        cfg = probe_cfg(pretrained["clm"], "sentiment", *FT, f"probe.finetune.lr_grid={grid}")
        tuning = probe(cfg, tmp_path / grid)["tuning"]
        assert calls == [lr] and tuning["grid"] == {"lr": [lr]} and tuning["chosen"] == {"lr": lr}


def test_tune_keeps_the_first_best():
    fitted, record = tune("x", [1.0, 2.0, 3.0], lambda v: ({1.0: 0.5}.get(v, 0.7), v * 10))
    assert fitted == 20.0 and record["chosen"] == {"x": 2.0}
    assert record["dev_by_value"] == {"1.0": 0.5, "2.0": 0.7, "3.0": 0.7}


@pytest.mark.parametrize("task", ["topic", "qa"])
def test_linear_weight_decay_is_the_dev_argmax(pretrained, probe_cfg, tmp_path, task):
    result = probe(probe_cfg(pretrained["mlm"], task, "probe.train_examples=100"), tmp_path)
    tuning = result["tuning"]
    assert tuning["grid"] == {"weight_decay": [0.01, 0.1, 1.0, 10.0]}
    assert len(tuning["dev_by_value"]) == 4 and tuning["chosen"] == {
        "weight_decay": _argmax(tuning)
    }
    chosen = tuning["dev_by_value"][str(tuning["chosen"]["weight_decay"])]
    assert result["dev"][result["metric"]] == pytest.approx(chosen)  # the chosen head's dev
    assert result["train_steps"] is None  # no fine-tuning
    # updates per value: full batch (one an epoch), or 12 epochs of minibatches of windows
    assert tuning["train_steps"] == 300 if task == "topic" else tuning["train_steps"] % 12 == 0
    one = probe_cfg(pretrained["mlm"], task, "probe.train_examples=100")
    one.probe["linear_qa" if task == "qa" else "linear"].weight_decay_grid = None
    assert probe(one, tmp_path / "one")["tuning"]["grid"] == {"weight_decay": [0.01]}


@pytest.fixture(scope="module")
def nsp_run(pretrain_cfg, tmp_path_factory):
    from pretrainlab.pretrain import pretrain

    run = tmp_path_factory.mktemp("run_nsp")
    pretrain(pretrain_cfg("objective=nsp"), run)
    return run


def test_auto_pooling_follows_what_the_objective_trains(pretrained, nsp_run, probe_cfg, tmp_path):
    built = [_objective(o) for o in (MLMObjective, CLMObjective, NSPObjective)]
    declared = {o.name: o.probe_pooling() for o in built}
    assert declared == {"mlm": "mean", "clm": "last", "nsp": "cls"}
    assert _objective(MLMNSPObjective).probe_pooling() == "cls"

    def pooling(checkpoint, *overrides):
        cfg = probe_cfg(checkpoint, "sentiment", "probe.train_examples=50", *overrides)
        return probe(cfg, tmp_path / f"p{next(n)}")["pooling"]

    n = itertools.count()

    runs = {"mlm": pretrained["mlm"], "clm": pretrained["clm"], "nsp": nsp_run}
    assert {k: read_json(r / "run.json")["probe_pooling"] for k, r in runs.items()} == declared
    assert {k: pooling(r) for k, r in runs.items()} == declared
    # scratch, trained by nothing: mean if bidirectional, last token if causal
    assert pooling("scratch", f"scratch_from={nsp_run}") == "mean"
    assert pooling("scratch", f"scratch_from={pretrained['clm']}") == "last"
    assert pooling(pretrained["mlm"], "probe.pooling=last") == "last"  # overridable


def test_bad_declared_pooling(pretrained, probe_cfg, tmp_path):
    run = tmp_path / "odd"
    shutil.copytree(pretrained["mlm"], run)
    info = read_json(run / "run.json")
    (run / "run.json").write_text(json.dumps({**info, "probe_pooling": "max"}))
    with pytest.raises(PretrainlabError, match="probe_pooling='max'"):
        probe(probe_cfg(run, "sentiment"), tmp_path / "p")


BAD = [
    (["probe.finetune.lr_grid=[]"], r"probe.finetune.lr_grid=\[\] is not valid"),
    (["probe.finetune.lr_grid=[0.0,1e-3]"], "each in \\(0, 1\\)"),
    (["probe.finetune.lr_grid=[-1e-4]"], "lr_grid=\\[-0.0001\\]"),
    (["probe.finetune.lr_grid=[fast]"], "lr_grid=\\['fast'\\]"),
    (["probe.finetune.lr_grid=[true]"], "lr_grid=\\[True\\]"),
    (["probe.finetune.lr_grid=1e-3"], "lr_grid=0.001 is not valid"),
    (["probe.finetune.lr_grid=[1e-3,1e-3]"], "distinct"),
    (["probe.finetune.lr_grid=null", "probe.finetune.lr=0"], "probe.finetune.lr=0 is"),
    (["probe.linear.weight_decay_grid=[-0.1]"], "each >= 0"),
    (["probe.linear.weight_decay_grid=[none]"], "weight_decay_grid=\\['none'\\]"),
    (["probe.linear_qa.weight_decay_grid=[]"], "probe.linear_qa.weight_decay_grid"),
    (["probe.finetune.max_steps=0"], "probe.finetune.max_steps=0 is not valid"),
    (["probe.finetune.eval_every=2.5"], "probe.finetune.eval_every=2.5 is not valid"),
    (["probe.finetune.max_epochs=0"], "or null"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_grids_fail_before_any_work(probe_cfg, tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr(probe_run, "load_checkpoint", lambda *a: pytest.fail("did work"))
    cfg = probe_cfg("scratch", "sentiment", "probe.mode=finetune", *overrides)
    with pytest.raises(PretrainlabError, match=message):
        probe(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
