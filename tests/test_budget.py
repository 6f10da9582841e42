"""Equal compute, declared: budget.tokens / budget.flops decide each run's steps; arms under
one budget spend the same tokens (or FLOPs) to within one step; bad budgets stop before work."""

from __future__ import annotations

import pytest

from pretrainlab.budget import ComputeBudget
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.recipe import Recipe
from pretrainlab.study.plan import expand
from tests.conftest import compose_config


@pytest.mark.parametrize(
    "kwargs",
    [{"tokens": -1}, {"tokens": 0}, {"flops": True}, {"tokens": "many"}, {"flops": float("inf")}],
)
def test_bad_budget_values_are_refused(kwargs):
    with pytest.raises(PretrainlabError, match="budget.* is not valid"):
        ComputeBudget(**kwargs)


def test_two_budgets_at_once_are_refused():
    with pytest.raises(PretrainlabError, match="both set"):
        ComputeBudget(tokens=1e6, flops=1e12)


def test_budget_smaller_than_one_step_stops_before_work(pretrain_cfg):
    cfg = pretrain_cfg("budget.tokens=100")  # one step is 16 x 64 = 1,024 tokens
    with pytest.raises(PretrainlabError, match="smaller than one training step.*1024 tokens"):
        Recipe.from_cfg(cfg)


def _spend(pretrain_cfg, objective: str, kind: str, value: float) -> tuple[int, float, int]:
    cfg = pretrain_cfg(f"objective={objective}", f"budget.{kind}={value}")
    parts = Recipe.from_cfg(cfg)
    steps = cfg.trainer.max_steps
    spent = steps * parts.tokens_per_step * (parts.flops_per_token if kind == "flops" else 1)
    per_step = spent / steps
    return steps, spent, per_step


@pytest.mark.parametrize("kind,value", [("tokens", 2e6), ("flops", 5e12)])
def test_arms_under_one_budget_spend_it_within_one_step(pretrain_cfg, kind, value):
    by_arm = {o: _spend(pretrain_cfg, o, kind, value) for o in ("mlm", "clm", "nsp", "mlm_nsp")}
    for _, spent, per_step in by_arm.values():
        assert abs(spent - value) <= per_step / 2 + 1e-6 * value
    if kind == "tokens":  # same batch and sequence: equal tokens means equal steps
        assert len({s for s, _, _ in by_arm.values()}) == 1
    else:  # the MLM head projects 15% of positions, CLM's all: MLM gets more steps
        assert by_arm["mlm"][0] > by_arm["clm"][0]
        assert by_arm["nsp"][0] > by_arm["mlm"][0]


def test_a_budgeted_run_takes_its_steps_and_records_them(pretrain_cfg, tmp_path):
    from pretrainlab.pretrain import pretrain

    cfg = pretrain_cfg("objective=clm", "budget.tokens=12288")  # 12 steps of 1,024 tokens
    pretrain(cfg, tmp_path)
    compute = read_json(tmp_path / "run.json")["compute"]
    assert compute["budget"] == "tokens" and compute["steps"] == 12
    assert compute["tokens"] == 12288 and compute["flops"] > 12288
    assert "max_steps: 12" in (tmp_path / "config.yaml").read_text()
    steps = [int(r.split(",")[0]) for r in (tmp_path / "history.csv").read_text().split()[1:]]
    assert max(steps) == 12


def test_study_budget_reaches_every_pretraining_job(tmp_path):
    cfg = compose_config("study", ["study.name=b", "study.budget.flops=1e13"])
    pre = [j for j in expand(cfg) if j.kind == "pretrain"]
    assert pre
    for job in pre:
        assert compose_config("pretrain", job.overrides).budget.flops == 1e13


def test_study_budget_and_explicit_max_steps_are_refused_together():
    cfg = compose_config(
        "study",
        [
            "study.name=b",
            "study.budget.flops=1e13",
            'study.pretrain_overrides=["trainer.max_steps=20"]',
        ],
    )
    with pytest.raises(
        PretrainlabError, match=r"trainer.max_steps=20 while study.budget.flops=1e\+13"
    ):
        expand(cfg)
