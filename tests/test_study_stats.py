"""Statistics of a study: t intervals, summaries, paired comparisons, winners."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pretrainlab.errors import PretrainlabError
from pretrainlab.study.stats import (
    COMPARISON_COLUMNS,
    SUMMARY_COLUMNS,
    lower_is_better,
    mean_ci,
    objective_order,
    paired_comparisons,
    summarize,
    unusable_runs,
)
from pretrainlab.study.verdict import winners


def run(objective, seed, score, task="sst2", mode="linear", n=100, status="ok", metric="accuracy",
        **kw):  # fmt: skip
    return {
        "objective": objective,
        "pretrain_seed": seed,
        "seed": kw.pop("probe_seed", seed),
        "task": task,
        "mode": mode,
        "pooling": kw.pop("pooling", "mean"),
        "train_examples": n,
        "metric": metric,
        "dev_score": score,
        "test_score": score,
        "wall_s": 1.0,
        "status": status,
        "error": kw.pop("error", ""),
        "run_dir": "",
    }


# ----------------------------------------------------------------------------- mean_ci


def test_mean_ci_hand_computed():
    mean, std, n, lo, hi = mean_ci([0.70, 0.74, 0.78])
    half = 0.04 * 4.302653 / math.sqrt(3)  # t_{0.975, 2} = 4.302653
    assert n == 3
    assert mean == pytest.approx(0.74, abs=1e-9)
    assert std == pytest.approx(0.04, abs=1e-9)
    assert lo == pytest.approx(0.74 - half, abs=1e-6)
    assert hi == pytest.approx(0.74 + half, abs=1e-6)
    assert hi - lo == pytest.approx(2 * 0.0993659, abs=1e-6)


def test_mean_ci_other_confidence_is_narrower():
    _, _, _, lo90, hi90 = mean_ci([0.70, 0.74, 0.78], confidence=0.90)
    half = 0.04 * sps.t.ppf(0.95, 2) / math.sqrt(3)
    assert hi90 - lo90 == pytest.approx(2 * half, abs=1e-12)
    assert half < 0.04 * 4.302653 / math.sqrt(3)


def test_mean_ci_small_and_degenerate_samples():
    mean, std, n, lo, hi = mean_ci([0.5])
    assert (mean, n) == (0.5, 1) and math.isnan(std) and math.isnan(lo) and math.isnan(hi)
    mean, std, n, lo, hi = mean_ci([])
    assert n == 0 and all(math.isnan(v) for v in (mean, std, lo, hi))
    # non-finite values are dropped before counting
    assert mean_ci([0.70, float("nan"), 0.74, 0.78, float("inf")])[2] == 3
    # identical values: zero-width interval, not NaN
    mean, std, n, lo, hi = mean_ci([0.6, 0.6, 0.6])
    assert std == 0 and lo == pytest.approx(0.6) and hi == pytest.approx(0.6)
    with pytest.raises(PretrainlabError):
        mean_ci([1, 2], confidence=1.5)


# ----------------------------------------------------------------------------- summarize


def test_summarize_excludes_failed_and_missing_rows():
    rows = [run("mlm", s, v) for s, v in enumerate([0.70, 0.74, 0.78])]
    rows += [
        run("mlm", 3, 0.10, status="failed", error="OOM"),
        run("mlm", 4, float("nan"), status="missing"),
    ]
    rows += [run("mlm", 5, float("nan"))]  # "ok" but no score: excluded too
    s = summarize(pd.DataFrame(rows))
    assert list(s.columns) == SUMMARY_COLUMNS
    assert len(s) == 1
    r = s.iloc[0]
    assert r["n"] == 3 and r["n_runs"] == 3 and r["metric"] == "accuracy"
    assert r["mean"] == pytest.approx(0.74)
    assert r["ci_high"] - r["mean"] == pytest.approx(0.04 * 4.302653 / math.sqrt(3), abs=1e-6)
    bad = unusable_runs(pd.DataFrame(rows))
    assert sorted(bad["status"]) == ["failed", "missing", "ok"]
    assert "no finite test_score" in set(bad["error"])


def test_summarize_averages_probe_seeds_within_a_pretraining_seed():
    rows = [run("mlm", 0, 0.6, probe_seed=0), run("mlm", 0, 0.8, probe_seed=1), run("mlm", 1, 0.9)]
    r = summarize(pd.DataFrame(rows)).iloc[0]
    assert (r["n"], r["n_runs"]) == (2, 3)
    assert r["mean"] == pytest.approx((0.7 + 0.9) / 2)


def test_summarize_sort_order_and_n1_group():
    rows = [
        run("scratch", 0, 0.5, mode="finetune"),
        run("clm", 0, 0.6, mode="finetune"),
        run("mlm", 0, 0.7, mode="finetune"),
        run("zzz", 0, 0.7, mode="linear", n=1000),
        run("mlm", 0, 0.7, mode="linear", n=10),
        run("mlm", 1, 0.7, task="aaa"),
    ]
    s = summarize(pd.DataFrame(rows))
    got = list(zip(s["task"], s["mode"], s["train_examples"], s["objective"], strict=True))
    assert got == [
        ("aaa", "linear", 100, "mlm"),
        ("sst2", "linear", 10, "mlm"),
        ("sst2", "linear", 1000, "zzz"),
        ("sst2", "finetune", 100, "mlm"),
        ("sst2", "finetune", 100, "clm"),
        ("sst2", "finetune", 100, "scratch"),
    ]
    assert s["n"].eq(1).all() and s["std"].isna().all() and s["ci_low"].isna().all()


def test_summarize_empty_and_bad_input():
    s = summarize(pd.DataFrame([run("mlm", 0, 0.1, status="failed")]))
    assert s.empty and list(s.columns) == SUMMARY_COLUMNS
    with pytest.raises(PretrainlabError, match="test_score"):
        summarize(pd.DataFrame({"objective": ["mlm"]}))


def test_objective_order_and_metric_direction():
    assert objective_order(["scratch", "zeta", "clm", "mlm", "alpha"]) == [
        "mlm",
        "clm",
        "alpha",
        "zeta",
        "scratch",
    ]
    assert lower_is_better("val_loss") and lower_is_better("wer") and lower_is_better("perplexity")
    assert (
        not lower_is_better("accuracy") and not lower_is_better("f1") and not lower_is_better("mcc")
    )


# ----------------------------------------------------------------------------- paired tests


def test_paired_comparison_hand_case_and_scipy():
    a, b = [0.80, 0.82, 0.85], [0.75, 0.78, 0.79]  # differences 0.05, 0.04, 0.06
    rows = [run("mlm", s, v) for s, v in enumerate(a)] + [run("clm", s, v) for s, v in enumerate(b)]
    c = paired_comparisons(pd.DataFrame(rows))
    assert list(c.columns) == COMPARISON_COLUMNS
    assert len(c) == 1
    r = c.iloc[0]
    assert (r["objective_a"], r["objective_b"], r["n_pairs"]) == ("mlm", "clm", 3)
    assert r["mean_diff"] == pytest.approx(0.05)
    assert r["std_diff"] == pytest.approx(0.01)
    t_hand = 0.05 / (0.01 / math.sqrt(3))  # 8.660254
    assert r["t_stat"] == pytest.approx(t_hand, rel=1e-6)
    assert r["p_value"] == pytest.approx(2 * sps.t.sf(t_hand, 2), rel=1e-6)
    ref = sps.ttest_rel(a, b)
    assert r["t_stat"] == pytest.approx(ref.statistic) and r["p_value"] == pytest.approx(ref.pvalue)
    assert r["d_z"] == pytest.approx(5.0)
    half = 0.01 * 4.302653 / math.sqrt(3)
    assert (r["ci_low"], r["ci_high"]) == (
        pytest.approx(0.05 - half, abs=1e-6),
        pytest.approx(0.05 + half, abs=1e-6),
    )


def test_pairs_only_common_seeds_and_random_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.8, 0.02, 6), rng.normal(0.78, 0.02, 6)
    rows = [run("mlm", s, v) for s, v in enumerate(a)]
    rows += [run("scratch", s, v) for s, v in enumerate(b) if s != 2]  # seed 2 missing for scratch
    rows += [run("scratch", 9, 0.1)]  # seed only the baseline has
    c = paired_comparisons(pd.DataFrame(rows), baseline="scratch")
    keep = [0, 1, 3, 4, 5]
    ref = sps.ttest_rel(a[keep], b[keep])
    r = c.iloc[0]
    assert r["n_pairs"] == 5
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    d = a[keep] - b[keep]
    assert r["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert r["mean_a"] == pytest.approx(a[keep].mean())


def test_paired_edge_cases():
    rows = [run("mlm", 0, 0.8), run("clm", 0, 0.7)]  # one pair: row kept, untestable
    rows += [run("nsp", 5, 0.6)]  # no common seed with anyone: no row
    c = paired_comparisons(pd.DataFrame(rows))
    assert list(zip(c["objective_a"], c["objective_b"], strict=True)) == [("mlm", "clm")]
    r = c.iloc[0]
    assert r["n_pairs"] == 1 and r["mean_diff"] == pytest.approx(0.1)
    assert all(math.isnan(r[k]) for k in ("std_diff", "ci_low", "ci_high", "p_value", "d_z"))
    # constant differences: std 0, test undefined -> NaN, no warning-driven crash
    rows = [run("mlm", s, 0.5 + 0.1 * s) for s in range(3)] + [
        run("clm", s, 0.4 + 0.1 * s) for s in range(3)
    ]
    r = paired_comparisons(pd.DataFrame(rows)).iloc[0]
    assert r["std_diff"] == 0 and math.isnan(r["p_value"]) and math.isnan(r["d_z"])
    # no zero-width interval: three equal differences give no certainty, and no MDE or p_holm
    for k in ("ci_low", "ci_high", "ci_bootstrap_lo", "ci_bootstrap_hi", "mde", "p_holm"):
        assert math.isnan(r[k]), k
    assert not r["significant"]
    # baseline absent: no rows; baseline direction is objective - baseline
    assert paired_comparisons(pd.DataFrame(rows), baseline="scratch").empty
    r = paired_comparisons(pd.DataFrame(rows), baseline="mlm").iloc[0]
    assert (r["objective_a"], r["objective_b"]) == ("clm", "mlm") and r["mean_diff"] < 0


def test_paired_comparisons_are_per_cell():
    rows = []
    for task in ("a", "b"):
        for mode in ("linear", "finetune"):
            for s in range(3):
                rows += [run("mlm", s, 0.8 + 0.01 * s, task=task, mode=mode)]
                rows += [run("clm", s, 0.7 + 0.02 * s, task=task, mode=mode)]
                rows += [run("scratch", s, 0.5 + 0.01 * (s % 2), task=task, mode=mode)]
    c = paired_comparisons(pd.DataFrame(rows))
    assert len(c) == 2 * 2 * 3
    assert list(c["mode"][:3]) == ["linear"] * 3
    assert set(zip(c["objective_a"], c["objective_b"], strict=True)) == {
        ("mlm", "clm"), ("mlm", "scratch"), ("clm", "scratch")
    }  # fmt: skip
    assert len(paired_comparisons(pd.DataFrame(rows), baseline="scratch")) == 2 * 2 * 2


# ----------------------------------------------------------------------------- winners


def test_winners_clear_tied_only_unknown():
    rows = []
    for s in range(3):
        rows += [
            run("mlm", s, 0.90 + 0.001 * s, task="clear"),
            run("clm", s, 0.60 + 0.003 * s, task="clear"),
        ]
        rows += [
            run("mlm", s, 0.70 + 0.05 * s, task="tied"),
            run("clm", s, 0.72 + 0.04 * s + 0.03 * (s == 1), task="tied"),
        ]
        rows += [run("nsp", s, 0.5 + 0.01 * s, task="only")]
    rows += [run("mlm", 0, 0.9, task="single"), run("clm", 0, 0.8, task="single")]
    w = winners(summarize(pd.DataFrame(rows)), paired_comparisons(pd.DataFrame(rows)))
    w = w.set_index("task")
    assert w.loc["clear", "best"] == "mlm" and w.loc["clear", "verdict"] == "clear"
    assert w.loc["clear", "margin"] == pytest.approx(0.298)
    assert w.loc["tied", "best"] == "clm" and w.loc["tied", "runner_up"] == "mlm"
    assert w.loc["tied", "verdict"] == "tied"
    assert w.loc["only", "verdict"] == "only" and pd.isna(w.loc["only", "runner_up"])
    assert w.loc["single", "verdict"] == "unknown"


def test_winners_lower_is_better_metric():
    rows = []
    for s in range(3):
        rows += [
            run("mlm", s, 3.0 + 0.01 * s, metric="loss"),
            run("clm", s, 2.0 + 0.02 * s, metric="loss"),
        ]
    w = winners(summarize(pd.DataFrame(rows)), paired_comparisons(pd.DataFrame(rows)))
    assert w.iloc[0]["best"] == "clm" and w.iloc[0]["verdict"] == "clear"
