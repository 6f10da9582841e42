"""Inference a reviewer would accept, over paired differences between arms (one difference per
pretraining seed, the unit of replication):

* **Holm-Bonferroni** adjusted p-values over a study's family of comparisons
  (:func:`holm`, statsmodels' ``multipletests``);
* a **paired bootstrap** interval beside the t interval (:func:`bootstrap_ci`,
  ``scipy.stats.bootstrap``, BCa, seeded so a report is reproducible);
* the **minimum detectable effect** at 80% power of the paired t-test and the pretraining seeds
  a named effect needs (:func:`mde`, :func:`seeds_needed`, from :func:`paired_power`);
* **variance components**: between pretraining seeds and between probe seeds within one
  (:func:`variance_components`, one-way random-effects ANOVA).

Conventions: ``ALPHA`` = 0.05 two-sided, ``POWER`` = 0.8. The MDE is at the nominal alpha
(before correction: after it the bar is higher), from the observed sd of the differences. A
comparison whose paired differences are all equal, or that has one pair, has no variance to test
against: its p-value, intervals and MDE are NaN and it is not counted in the family.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_RESAMPLES = 9999
_NODES = 400  # quadrature nodes of paired_power: agrees with statsmodels to 1e-6 where it works


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted p-values and the "significant after correction" flags. NaN p-values (an
    untestable comparison) stay NaN, are not significant, and do not count in the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted, significant = np.full(p.shape, math.nan), np.zeros(p.shape, dtype=bool)
    finite = np.isfinite(p)
    if finite.any():
        reject, p_adj, _, _ = multipletests(p[finite], alpha=alpha, method="holm")
        adjusted[finite], significant[finite] = p_adj, reject
    return adjusted, significant


def bootstrap_ci(
    diffs: Sequence[float], confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """BCa bootstrap interval of the mean paired difference (percentile where BCa is undefined,
    e.g. for three pairs). NaN with fewer than 2 pairs or no variance. With n = 3 only 10
    distinct resamples exist: read it beside the t interval, not instead of it."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2 or float(np.ptp(d)) == 0.0:
        return math.nan, math.nan
    for method in ("BCa", "percentile"):
        with np.errstate(all="ignore"):
            res = sps.bootstrap(
                (d,),
                np.mean,
                confidence_level=confidence,
                n_resamples=BOOTSTRAP_RESAMPLES,
                method=method,
                rng=np.random.default_rng(seed),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return math.nan, math.nan


@functools.lru_cache(maxsize=256)
def _chi_scale(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on (0, 1) as sqrt(chi2(df) quantile / df), and their weights."""
    u, w = np.polynomial.legendre.leggauss(_NODES)
    u, w = (u + 1) / 2, w / 2
    return np.sqrt(sps.chi2.ppf(u, df) / df), w


def paired_power(size: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test over ``n`` pairs at standardised effect ``size``
    (mean / sd of the differences). Written by hand as an integral over the chi-square quantiles
    of the variance estimate: statsmodels' ``TTestPower`` and scipy's noncentral t both return
    NaN at small n and large effects (n = 3, d = 4.9), where this is well defined."""
    df, nc = n - 1, abs(size) * math.sqrt(n)
    scale, weights = _chi_scale(df)
    s = float(sps.t.ppf(1 - alpha / 2, df)) * scale
    return float(np.dot(weights, sps.norm.sf(s - nc) + sps.norm.cdf(-s - nc)))


def mde(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest mean paired difference a two-sided paired t-test over ``n`` pairs detects
    with probability ``power`` when the differences have standard deviation ``sd``."""
    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return math.nan
    size = optimize.brentq(lambda d: paired_power(d, n, alpha) - power, 1e-9, 1e4, xtol=1e-10)
    return float(size) * sd


def seeds_needed(
    effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, most: int = 10**6
) -> int:
    """Pretraining seeds (pairs) a paired t-test needs to detect ``effect`` with ``power`` (at
    most ``most``); -1 when the differences have no spread. Power grows with n: a doubling
    search, then bisection."""
    if not (math.isfinite(sd) and sd > 0):
        return -1
    size = abs(effect) / sd

    def enough(n: int) -> bool:
        return paired_power(size, n, alpha) >= power

    lo, hi = 1, 2  # one pair has no test; find hi with enough(hi)
    while not enough(hi):
        if hi >= most:
            return most
        lo, hi = hi, min(most, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def variance_components(runs: pd.DataFrame, value: str = "value") -> tuple[float, float, float]:
    """(var between pretraining seeds, var between probe seeds within one, probe runs per
    pretraining seed) of one cell's runs (columns ``pretrain_seed`` and ``value``), by one-way
    random-effects ANOVA (method of moments, Searle's k0 for unbalanced groups). With one probe
    run per pretraining seed the two are confounded: both NaN."""
    groups = [g[value].to_numpy(float) for _, g in runs.groupby("pretrain_seed")]
    sizes = np.array([len(g) for g in groups], dtype=float)
    total, j = float(sizes.sum()), len(groups)
    k_mean = total / j if j else math.nan
    if j < 2 or total - j < 1:
        return math.nan, math.nan, k_mean
    grand = float(np.concatenate(groups).mean())
    msw = sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / (total - j)
    msb = sum(len(g) * (float(g.mean()) - grand) ** 2 for g in groups) / (j - 1)
    k0 = (total - float((sizes**2).sum()) / total) / (j - 1)
    return max(0.0, (msb - msw) / k0), msw, k_mean
