"""The pretraining-budget axis (study/budgets.py, study/curve.py): a wsd run at a larger budget
branches from the one below and is the run that budget gives from step 0; a sweep reports the
gain over scratch against tokens, with each objective's crossover."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.optim import OptimSpec, decay_start, lr_schedule
from pretrainlab.study.plan import expand
from pretrainlab.study.run import study
from tests.conftest import TINY, compose_config
from tests.test_study import _study_cfg

STEP_TOKENS = 16 * 64  # TINY: batch 16 x seq_len 64


def _cfg(tmp: Path, cache: Path, steps: list[int], *extra: str, pre: tuple[str, ...] = ()):
    """A study of the tiny encoder over budgets of ``steps`` steps' worth of tokens (wsd)."""
    base = [o for o in TINY if not o.startswith(("logger", "trainer.max_steps"))]
    over = [*base, "logger=none", f"paths.cache_dir={cache}", "optim.schedule=wsd", *pre]
    probe = [  # one linear fit per probe: the sweep tests the axis, not the probe's tuning
        "logger=none", f"paths.cache_dir={cache}", "probe.task.train_size=200",
        "probe.task.dev_size=60", "probe.task.test_size=60", "probe.mdl=false",
        "probe.linear.weight_decay_grid=null", "probe.linear.epochs=100",
    ]  # fmt: skip
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    return _study_cfg(
        tmp,
        cache,
        "study.budget.tokens=[" + ",".join(str(n * STEP_TOKENS) for n in steps) + "]",
        f"study.pretrain_overrides={quoted(over)}",
        f"study.probe_overrides={quoted(probe)}",
        *extra,
    )


def test_wsd_holds_the_rate_then_decays_the_last_share_to_zero():
    spec = OptimSpec(lr=1e-3, warmup_steps=5, schedule="wsd", decay_fraction=0.2)
    factor = lr_schedule(spec, 100)
    assert decay_start(spec, 100) == 80
    assert [factor(s) for s in (0, 4)] == [0.2, 1.0]  # warmup
    assert all(factor(s) == 1.0 for s in range(5, 80))  # stable: the constant schedule's rate
    decay = [factor(s) for s in range(80, 100)]
    assert decay[0] == 1.0 and decay[-1] == pytest.approx(1 / 20)
    assert all(b < a for a, b in zip(decay, decay[1:], strict=False))  # linear, to 0 at 100
    for bad in (0, 1, 1.5):
        with pytest.raises(PretrainlabError, match="decay_fraction"):
            OptimSpec(schedule="wsd", decay_fraction=bad)


def test_a_branch_is_the_wsd_run_of_its_budget_from_step_0(tmp_path, cache_dir):
    """Budgets of 10 and 20 steps: the 20-step run starts from the 10-step run's decay start
    (step 8), covers exactly its declared tokens, and equals a 20-step wsd run from step 0."""
    from pretrainlab.pretrain import pretrain

    cfg = _cfg(tmp_path / "s", cache_dir, [10, 20], "study.objectives=[mlm]",
               "study.pretrain_seeds=[0]", "study.baseline=false")  # fmt: skip
    study(cfg, tmp_path / "s", [], {})
    small, big = [j for j in expand(cfg) if j.kind == "pretrain"]
    assert (big.arm, big.meta["branch_of"]) == (f"mlm@{20 * STEP_TOKENS:g}", small.run_dir)
    branch, ref = big.path(tmp_path / "s"), tmp_path / "direct"
    info = json.loads((branch / "run.json").read_text())
    assert info["branched_from"] == f"{small.run_dir}/checkpoints/decay_start.ckpt"
    assert info["resumed_from_step"] == 8  # 10 steps, the last 2 decaying
    assert info["compute"]["steps"] == 20 and info["compute"]["tokens"] == 20 * STEP_TOKENS
    assert (branch / "hf" / "model.safetensors").is_file()  # exported like any run
    threads = f"threads={info['machine']['torch_threads']}"  # CPU sums depend on it
    pretrain(compose_config("pretrain", [*big.overrides, threads]), ref)
    got, want = (json.loads((r / "metrics.json").read_text()) for r in (branch, ref))
    for key in ("val/loss", "val/mlm_acc", "val/ppl", "steps"):
        assert got[key] == want[key], key  # the same run, bit for bit
    rows = [pd.read_csv(r / "history.csv").sort_values(["step", "name"]) for r in (branch, ref)]
    rows = [r[~r["name"].isin(["train/tokens_per_s", "train/mfu"])] for r in rows]  # timings
    assert rows[0].values.tolist() == rows[1].values.tolist()  # lr, losses: every row
    lr = rows[0][rows[0]["name"] == "train/lr"].set_index("step")["value"]
    assert lr[10] == lr[15] > lr[20]  # stable to step 16, then decaying


def test_a_budget_sweep_reports_the_curve_and_the_crossover(tmp_path, cache_dir):
    """3 budgets x 2 objectives x 2 seeds: the comparisons carry the budget and pair arms only
    at their own budget; the report draws the curve and names a crossover per objective."""
    out = tmp_path / "sweep"
    study(_cfg(out, cache_dir, [10, 20, 40]), out, [], {})
    comparisons = pd.read_csv(out / "comparisons.csv")
    pairs = comparisons[["objective_a", "objective_b", "pretrain_budget"]].drop_duplicates()
    for a, b, budget in pairs.itertuples(index=False):
        assert b == "scratch" or a.split("@")[1] == b.split("@")[1]  # never across budgets
        assert float(a.split("@")[1]) == budget
    assert len(pairs) == 3 * 2 + 3  # each arm vs scratch, mlm vs clm at each budget
    curve = pd.read_csv(out / "budget_curve.csv")
    assert sorted(curve["objective"].unique()) == ["clm", "mlm"]
    assert curve.groupby("objective")["tokens"].apply(list).to_dict() == {
        o: [10.0 * STEP_TOKENS, 20.0 * STEP_TOKENS, 40.0 * STEP_TOKENS] for o in ("clm", "mlm")
    }
    cross = pd.read_csv(out / "crossovers.csv")
    assert len(cross) == 2 and cross["verdict"].str.match(r"(not reached by|at )").all()
    assert (out / "plots" / "budget_curve.png").stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert report.index("## Budget curve") < report.index("## Study")
    runs = json.loads((out / "plan.json").read_text())["jobs"]
    branched = [j for j in runs if j["kind"] == "pretrain" and j["meta"]["budget_index"] > 0]
    for job in branched:  # every larger budget started where the one below began to decay
        assert "branched_from" in json.loads((out / job["run_dir"] / "run.json").read_text())


def test_a_crossover_is_where_the_interval_leaves_zero_for_good():
    from pretrainlab.study.curve import crossovers

    def curve(lows: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {"task": "t", "mode": "linear", "train_examples": 100, "objective": "mlm",
             "budget": [1.0, 2.0, 4.0], "tokens": [1e6, 2e6, 4e6], "mean_diff": 0.1,
             "ci_low": lows, "ci_high": 0.5, "metric": "accuracy"}
        )  # fmt: skip

    (late,) = crossovers(curve([-0.2, -0.1, 0.1])).itertuples()
    assert late.crossover_tokens == 4e6
    assert late.estimate_tokens == pytest.approx(math.exp(math.log(2e6) + 0.5 * math.log(2)))
    (back,) = crossovers(curve([0.1, -0.1, 0.2])).itertuples()  # crossed, fell back: not yet
    assert back.crossover_tokens == 4e6
    (early,) = crossovers(curve([0.1, 0.1, 0.2])).itertuples()
    assert early.verdict.startswith("at or below 1") and math.isnan(early.estimate_tokens)
    (never,) = crossovers(curve([-0.1, -0.1, -0.2])).itertuples()
    assert never.verdict.startswith("not reached by 4") and math.isnan(never.crossover_tokens)


@pytest.mark.parametrize(
    ("steps", "extra", "fragment"),
    [
        ([20, 10], [], "is not strictly increasing"),
        ([10, 10], [], "is not strictly increasing"),
        ([0.0001, 10], [], "smaller than one training step"),
        ([10, 20], ["study.control_twin=true"], "does not combine with study.control_twin"),
        ([10, 10.3], [], "both give 10 training steps"),
        ([4, 20], [], "inside the warmup"),
    ],
)
def test_bad_budget_axes_are_one_paragraph_before_any_run(
    tmp_path, cache_dir, steps, extra, fragment
):
    cfg = _cfg(tmp_path, cache_dir, steps, *extra)
    with pytest.raises(PretrainlabError, match=fragment):
        study(cfg, tmp_path, [], {})
    assert not (tmp_path / "pretrain").exists()


def test_the_in_domain_experiment_plans_its_budget_axis():
    """``experiment=sentiment_indomain``: 2 objectives x 3 seeds x 4 budgets, steps doubling,
    every branch past the warmup (checked before any run, without the data)."""
    from pretrainlab.study.budgets import check_steps

    cfg = compose_config("study", ["experiment=sentiment_indomain", "study.name=si"])
    jobs = expand(cfg)
    assert sum(j.kind == "pretrain" for j in jobs) == 24
    steps = check_steps(jobs)
    assert [steps[f"mlm@{b:g}"] for b in (5e12, 1e13, 2e13, 4e13)] == [327, 654, 1309, 2617]
    assert [steps[f"clm@{b:g}"] for b in (5e12, 1e13, 2e13, 4e13)] == [133, 266, 533, 1066]


def test_more_than_one_pass_is_refused_without_allow_repeats(tmp_path, cache_dir):
    """A budget axis sets data.allow_repeats=false (unless study.allow_repeats=true): a run
    that would see its corpus twice stops before training, naming the passes."""
    from pretrainlab.pretrain import pretrain

    one = ("study.objectives=[mlm]", "study.pretrain_seeds=[0]")
    (job,) = [j for j in expand(_cfg(tmp_path, cache_dir, [2000], *one)) if j.kind == "pretrain"]
    assert "data.allow_repeats=false" in job.overrides
    with pytest.raises(PretrainlabError, match=r"pass over the corpus's [\d,]+ training tokens"):
        pretrain(compose_config("pretrain", job.overrides), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()
    allowed = _cfg(tmp_path, cache_dir, [2000], *one, "study.allow_repeats=true")
    (job,) = [j for j in expand(allowed) if j.kind == "pretrain"]
    assert "data.allow_repeats=true" in job.overrides
