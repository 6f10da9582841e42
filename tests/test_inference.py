"""Inference a reviewer would accept, checked on synthetic results with a known effect and known
noise: Holm against statsmodels, the MDE against a simulation, variance components against the
generating values, bootstrap coverage, the twin's false-positive rate, the answer paragraph."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from pretrainlab.study import inference as inf
from pretrainlab.study.stats import paired_comparisons, summarize
from pretrainlab.study.verdict import answer, false_positive_rate, twin_comparisons


def _results(effects: dict[str, float], seeds: int, sd: float, rng, probe_seeds: int = 1,
             sd_probe: float = 0.0, arm: str = "mlm") -> pd.DataFrame:  # fmt: skip
    """``arm`` and scratch on each task: scratch ~ 0.5 + seed noise, ``arm`` = scratch + effect +
    paired noise of sd ``sd``; each probe seed adds its own noise of sd ``sd_probe``."""
    rows = []
    for task, effect in effects.items():
        for s in range(seeds):
            base = 0.5 + rng.normal(0, 0.05)
            gap = effect + rng.normal(0, sd)
            for p in range(probe_seeds):
                for obj, value in (("scratch", base), (arm, base + gap)):
                    score = value + rng.normal(0, sd_probe)
                    rows.append({"objective": obj, "pretrain_seed": s, "seed": p, "task": task,
                                 "mode": "linear", "train_examples": 100, "metric": "accuracy",
                                 "test_score": score, "status": "ok", "pairs_with": s})  # fmt: skip
    return pd.DataFrame(rows)


def test_holm_matches_statsmodels_over_the_family_and_finds_the_known_effect():
    rng = np.random.default_rng(0)
    effects = {f"null{i}": 0.0 for i in range(8)} | {"real": 0.05}
    c = paired_comparisons(_results(effects, seeds=8, sd=0.01, rng=rng))
    ref_reject, ref_p = multipletests(c["p_value"], alpha=0.05, method="holm")[:2]
    assert np.allclose(c["p_holm"], ref_p) and (c["significant"] == ref_reject).all()
    assert (c["p_holm"] >= c["p_value"] - 1e-15).all()
    by_task = c.set_index("task")
    assert by_task.loc["real", "significant"]
    assert not by_task.drop(index="real")["significant"].any()
    # an untestable comparison (NaN p) is outside the family: it changes no other p_holm
    p = np.array([0.01, 0.02, math.nan])
    adjusted, significant = inf.holm(p)
    assert np.allclose(adjusted[:2], multipletests(p[:2], method="holm")[1])
    assert math.isnan(adjusted[2]) and not significant[2]


@pytest.mark.parametrize("n", [3, 6])
def test_mde_matches_a_simulated_power_curve_within_ten_percent(n):
    sd, draws = 0.02, 20000
    mde = inf.mde(sd, n)
    rng = np.random.default_rng(n)

    def power(effect: float) -> float:
        d = rng.normal(effect, sd, size=(draws, n))
        return float((sps.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05).mean())

    assert power(0.9 * mde) < 0.8 < power(1.1 * mde)
    assert inf.seeds_needed(mde, sd) == n  # the two answers agree
    assert inf.seeds_needed(mde * 1.5, sd) <= n < inf.seeds_needed(mde * 0.7, sd)
    assert math.isnan(inf.mde(sd, 1)) and math.isnan(inf.mde(0.0, 5))
    assert inf.seeds_needed(0.01, 0.0) == -1


def test_variance_components_recover_the_generating_values():
    rng = np.random.default_rng(3)
    sd_pre, sd_probe = 0.05, 0.02
    rows = []
    for s in range(400):
        seed_effect = rng.normal(0, sd_pre)
        for p in range(4):
            rows.append({"objective": "mlm", "pretrain_seed": s, "seed": p, "task": "t",
                         "mode": "linear", "train_examples": 100, "metric": "accuracy",
                         "test_score": 0.7 + seed_effect + rng.normal(0, sd_probe)})  # fmt: skip
    r = summarize(pd.DataFrame(rows)).iloc[0]
    assert r["n_probe"] == 4 and r["n"] == 400
    assert math.sqrt(r["var_pretrain"]) == pytest.approx(sd_pre, rel=0.1)
    assert math.sqrt(r["var_probe"]) == pytest.approx(sd_probe, rel=0.1)
    one = summarize(pd.DataFrame(rows).query("seed == 0")).iloc[0]  # one probe run per seed
    assert math.isnan(one["var_pretrain"]) and math.isnan(one["var_probe"])


def test_bootstrap_interval_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    hits = 0
    for i in range(300):
        lo, hi = inf.bootstrap_ci(rng.normal(0.3, 1.0, 25), seed=i)
        hits += lo <= 0.3 <= hi
    assert 0.90 <= hits / 300 <= 0.985
    assert all(map(math.isnan, inf.bootstrap_ci([0.1])))
    assert all(map(math.isnan, inf.bootstrap_ci([0.1, 0.1, 0.1])))  # no spread, no interval


def test_a_twin_is_outside_the_family_and_its_false_positive_rate_is_reported():
    rng = np.random.default_rng(7)
    effects = {f"t{i}": 0.0 for i in range(20)}
    real = _results(effects, seeds=5, sd=0.02, rng=rng)
    twin = _results(effects, seeds=5, sd=0.02, rng=rng, arm="mlm_twin")
    twin = twin[twin.objective == "mlm_twin"].assign(pretrain_seed=lambda d: d.pretrain_seed + 5)
    both = pd.concat([real, twin], ignore_index=True)
    family = paired_comparisons(both)
    assert "mlm_twin" not in set(family.objective_a) | set(family.objective_b)
    twins = twin_comparisons(both)
    assert len(twins) == 20 and set(twins.objective_b) == {"mlm_twin"}
    assert (twins.n_pairs == 5).all()  # paired through pairs_with, not the twin's own seeds
    assert not twins["significant"].any()
    text = false_positive_rate(twins)
    raw = int((twins.p_value < 0.05).sum())
    assert f"{raw} significant at p < 0.05 before correction" in text
    assert "0 after Holm correction" in text


def test_the_answer_names_the_effect_and_what_could_not_be_seen():
    rng = np.random.default_rng(11)
    res = _results({"lexical": 0.3, "topic": 0.0}, seeds=3, sd=0.02, rng=rng)
    paragraphs = answer("Does MLM beat scratch?", paired_comparisons(res))
    assert paragraphs[0].startswith("Question: Does MLM beat scratch? Answer")
    text = " ".join(paragraphs)
    assert re.search(r"mlm is better on lexical linear@100 by 0\.[23]\d\d \[", text)
    assert "No detectable difference on topic linear@100" in text and "MDE" in text
    one = answer("Q?", paired_comparisons(res[res.pretrain_seed == 0]))
    assert len(one) == 1 and "none can be given" in one[0] and "p-value" in one[0]
    empty = answer("Q?", paired_comparisons(res[res.objective == "mlm"]))
    assert len(empty) == 1 and "family of comparisons is empty" in empty[0]
