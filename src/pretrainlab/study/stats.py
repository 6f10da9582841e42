"""Statistics over a study's probe results: means with t confidence intervals, paired tests.

Input is the ``results`` frame of a study (one row per probe run; see :data:`REQUIRED_COLUMNS`).
Conventions shared by every function here:

* Only *usable* rows enter the statistics: ``status == "ok"`` and a finite score. Everything else
  is returned by :func:`unusable_runs` so the report can list it.
* The unit of replication is the **pretraining seed** (``pretrain_seed``). When a cell
  (task, mode, train_examples, objective) holds several usable rows for one pretraining seed
  (several probe seeds, or several poolings), they are averaged first, so ``n`` counts distinct
  pretraining seeds and ``n_runs`` counts probe runs.
* Confidence intervals use Student's t with ``n - 1`` degrees of freedom. With ``n == 1`` the
  standard deviation and the interval are NaN (not an error); with ``n == 0`` everything but
  ``n`` is NaN.
* Higher scores are better unless the metric name looks like a loss or an error
  (see :func:`lower_is_better`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives import DISPLAY_ORDER
from pretrainlab.study import inference as inf
from pretrainlab.study.budgets import split_arm

REQUIRED_COLUMNS = (
    "objective",
    "pretrain_seed",
    "task",
    "mode",
    "train_examples",
    "metric",
    "test_score",
)
GROUP_KEYS = ["task", "mode", "train_examples"]
MODE_ORDER = ("linear", "finetune")
BASELINE = "scratch"

SUMMARY_COLUMNS = [
    *GROUP_KEYS,
    "objective",
    "metric",
    "n",
    "n_runs",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "n_probe",
    "var_pretrain",
    "var_probe",
]
COMPARISON_COLUMNS = [
    *GROUP_KEYS,
    "metric",
    "objective_a",
    "objective_b",
    "n_pairs",
    "mean_a",
    "mean_b",
    "mean_diff",
    "std_diff",
    "ci_low",
    "ci_high",
    "t_stat",
    "p_value",
    "d_z",
    "ci_bootstrap_lo",
    "ci_bootstrap_hi",
    "mde",
    "p_holm",
    "significant",
    "pretrain_budget",  # a budget axis's budget of the arms compared (study/budgets.py)
]

_LOWER_BETTER_HINTS = (
    "loss", "perplexity", "ppl", "error", "err", "wer", "cer", "mse", "mae", "mdl", "bits",
)  # fmt: skip


# ----------------------------------------------------------------------------- ordering helpers


def objective_order(objectives: Iterable[str]) -> list[str]:
    """Display order: the built-in objectives in ``objectives.DISPLAY_ORDER``, others A-Z,
    ``scratch`` last;
    an arm of a budget axis (``mlm@5e+13``) beside its objective, smallest budget first."""
    uniq = {str(o) for o in objectives if not is_missing(o)}
    bases = {split_arm(o)[0] for o in uniq}
    known = [o for o in DISPLAY_ORDER if o in bases]
    order = known + sorted(bases - set(DISPLAY_ORDER) - {BASELINE}) + [BASELINE]
    rank = {b: i for i, b in enumerate(order)}

    def key(name: str) -> tuple[int, float]:
        base, budget = split_arm(name)
        return rank[base], -1.0 if budget is None else budget

    return sorted(uniq, key=key)


def mode_order(modes: Iterable[str]) -> list[str]:
    """``linear`` before ``finetune``, anything else after, A-Z."""
    uniq = {str(m) for m in modes if not is_missing(m)}
    return [m for m in MODE_ORDER if m in uniq] + sorted(uniq - set(MODE_ORDER))


def lower_is_better(metric: str) -> bool:
    """True for metric names that look like losses or error rates (``val_loss``, ``wer`` ...)."""
    parts = str(metric).lower().replace("-", "_").replace("/", "_").split("_")
    return any(p in _LOWER_BETTER_HINTS for p in parts)


def is_missing(x: object) -> bool:
    """Whether one table cell holds no value (NaN, None, NaT); never raises."""
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def sort_frame(df: pd.DataFrame, obj_cols: Sequence[str] = ("objective",)) -> pd.DataFrame:
    """Sort by task A-Z, mode (linear first), train_examples ascending, then objective order."""
    if df.empty:
        return df.reset_index(drop=True)
    modes = mode_order(df["mode"])
    objs = objective_order(itertools.chain.from_iterable(df[c] for c in obj_cols))
    keys = {"mode": lambda s: s.map({m: i for i, m in enumerate(modes)})}
    for c in obj_cols:
        keys[c] = lambda s: s.map({o: i for i, o in enumerate(objs)})
    by = ["task", "mode", "train_examples", *obj_cols]
    return df.sort_values(
        by, key=lambda s: keys.get(s.name, lambda x: x)(s), kind="stable"
    ).reset_index(drop=True)


# ----------------------------------------------------------------------------- core maths


def mean_ci(
    values: Iterable[float], confidence: float = 0.95
) -> tuple[float, float, int, float, float]:
    """Mean, sample std (ddof=1), n, and the two-sided Student-t confidence interval.

    Non-finite values (NaN, inf) are dropped before counting. Returns
    ``(mean, std, n, low, high)``; with n == 1 ``std``, ``low`` and ``high`` are NaN, with
    n == 0 everything but ``n`` is NaN. A zero std gives a zero-width interval.
    """
    if not 0.0 < confidence < 1.0:
        raise PretrainlabError(f"confidence must be in (0, 1), got {confidence!r}.")
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return (math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(arr.mean())
    if n == 1:
        return (mean, math.nan, 1, math.nan, math.nan)
    std = float(arr.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2.0, n - 1)) * std / math.sqrt(n)
    return (mean, std, n, mean - half, mean + half)


def _check_columns(results: pd.DataFrame, score: str) -> None:
    if not isinstance(results, pd.DataFrame):
        raise PretrainlabError(f"results must be a pandas DataFrame, got {type(results).__name__}.")
    need = [c for c in REQUIRED_COLUMNS if c != "test_score"] + [score]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise PretrainlabError(
            f"results is missing column(s) {missing}; a study results frame needs "
            f"{need} (plus optional status, error, seed, pooling, wall_s, run_dir)."
        )


def usable_mask(results: pd.DataFrame, score: str = "test_score") -> pd.Series:
    """Rows that enter the statistics: status "ok" (or no status column) and a finite score."""
    ok = (
        results["status"].astype(str).str.strip().str.lower().eq("ok")
        if "status" in results.columns
        else pd.Series(True, index=results.index)
    )
    vals = pd.to_numeric(results[score], errors="coerce") if score in results.columns else np.nan
    return ok & np.isfinite(vals)


def usable_runs(results: pd.DataFrame, score: str = "test_score") -> pd.DataFrame:
    """The usable rows (see :func:`usable_mask`) with ``score`` as float."""
    _check_columns(results, score)
    out = results.loc[usable_mask(results, score)].copy()
    out[score] = out[score].astype(float)
    return out


def unusable_runs(results: pd.DataFrame, score: str = "test_score") -> pd.DataFrame:
    """Rows excluded from the statistics: status != "ok", or "ok" with no finite ``score``.

    ``status``/``error`` are filled in for the latter ("ok", "no finite <score>") so the report can
    list every excluded run with a reason.
    """
    _check_columns(results, score)
    out = results.loc[~usable_mask(results, score)].copy()
    if "status" not in out.columns:
        out["status"] = "ok"
    if "error" not in out.columns:
        out["error"] = ""
    out["error"] = out["error"].fillna("").astype(str)
    no_score = out["status"].astype(str).str.strip().str.lower().eq("ok")
    out.loc[no_score & out["error"].eq(""), "error"] = f"no finite {score}"
    return sort_frame(out) if not out.empty else out.reset_index(drop=True)


def per_seed_scores(results: pd.DataFrame, score: str = "test_score") -> pd.DataFrame:
    """Usable rows averaged per (task, mode, train_examples, objective, pretrain_seed).

    Columns: task, mode, train_examples, objective, pretrain_seed, metric, value, n_runs.
    """
    df = usable_runs(results, score)
    keys = [*GROUP_KEYS, "objective", "pretrain_seed"]
    if df.empty:
        return pd.DataFrame(columns=[*keys, "metric", "value", "n_runs"])
    metric = df["metric"].astype(str) if score == "test_score" else score.removeprefix("test_")
    df = df.assign(metric=metric)
    return (
        df.groupby(keys, sort=False, dropna=False)
        .agg(
            metric=("metric", lambda s: "/".join(sorted(set(s)))),
            value=(score, "mean"),
            n_runs=(score, "size"),
        )
        .reset_index()
    )


# ----------------------------------------------------------------------------- public API


def summarize(
    results: pd.DataFrame, confidence: float = 0.95, score: str = "test_score"
) -> pd.DataFrame:
    """Mean and t-interval of ``score`` per task, mode, train_examples and objective.

    Columns: :data:`SUMMARY_COLUMNS` = task, mode, train_examples, objective, metric, n (distinct
    pretraining seeds), n_runs (usable probe runs), mean, std, ci_low, ci_high, then the
    variance components (:func:`pretrainlab.study.inference.variance_components`): n_probe
    (probe runs per pretraining seed), var_pretrain, var_probe (NaN with one probe run per
    pretraining seed). ``metric`` is the primary metric name for ``test_score`` or the column
    name without ``test_`` for another score column. Sorted by task, mode (linear first), budget
    ascending, objective (:func:`objective_order`). Non-ok rows and non-finite scores are
    excluded.
    """
    per_seed = per_seed_scores(results, score)
    runs = _probe_runs(results, score)
    rows = []
    for key, g in per_seed.groupby([*GROUP_KEYS, "objective"], sort=False, dropna=False):
        mean, std, n, lo, hi = mean_ci(g["value"], confidence)
        metric = "/".join(sorted(set("/".join(g["metric"]).split("/"))))
        var_pretrain, var_probe, n_probe = inf.variance_components(runs.get(key, g))
        rows.append((*key, metric, n, int(g["n_runs"].sum()), mean, std, lo, hi, n_probe,
                     var_pretrain, var_probe))  # fmt: skip
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out = out.astype({"n": int, "n_runs": int}) if not out.empty else out
    return sort_frame(out)


def _probe_runs(results: pd.DataFrame, score: str) -> dict[tuple, pd.DataFrame]:
    """A cell's usable runs averaged per (pretraining seed, probe seed): several poolings of one
    probe seed are one probe run for the variance components."""
    df = usable_runs(results, score)
    keys = [*GROUP_KEYS, "objective", "pretrain_seed"]
    df = df.assign(value=df[score], _probe=df["seed"] if "seed" in df.columns else df.index)
    means = df.groupby([*keys, "_probe"], sort=False, dropna=False)["value"].mean().reset_index()
    return {k: g for k, g in means.groupby([*GROUP_KEYS, "objective"], sort=False, dropna=False)}


def _same_budget(a: str, b: str) -> bool:
    """Two arms a study compares: at the same budget of its axis, or one without (scratch)."""
    ba, bb = split_arm(a)[1], split_arm(b)[1]
    return ba is None or bb is None or ba == bb


def _paired_row(a: pd.Series, b: pd.Series, confidence: float) -> dict:
    """Statistics of a - b over the seeds present in both (index = pretrain_seed)."""
    common = a.index.intersection(b.index)
    x, y = a.loc[common].to_numpy(float), b.loc[common].to_numpy(float)
    d = x - y
    mean, std, n, lo, hi = mean_ci(d, confidence)
    t_stat = p = d_z = math.nan
    if n >= 2:
        scale = max(1.0, float(np.max(np.abs(np.concatenate([x, y])))))
        if std > 1e-12 * scale:  # std == 0: the t statistic is undefined, report NaN
            res = sps.ttest_rel(x, y)
            t_stat, p = float(res.statistic), float(res.pvalue)
            d_z = mean / std
        else:  # identical differences: no variance to test against, no interval either
            std, lo, hi = 0.0, math.nan, math.nan
    boot = inf.bootstrap_ci(d, confidence) if math.isfinite(p) else (math.nan, math.nan)
    return {
        "n_pairs": n,
        "mean_a": float(x.mean()) if n else math.nan,
        "mean_b": float(y.mean()) if n else math.nan,
        "mean_diff": mean,
        "std_diff": std,
        "ci_low": lo,
        "ci_high": hi,
        "t_stat": t_stat,
        "p_value": p,
        "d_z": d_z,
        "ci_bootstrap_lo": boot[0],
        "ci_bootstrap_hi": boot[1],
        "mde": inf.mde(std, n) if math.isfinite(p) else math.nan,
    }


def paired_comparisons(
    results: pd.DataFrame,
    baseline: str | None = None,
    confidence: float = 0.95,
    score: str = "test_score",
) -> pd.DataFrame:
    """Paired comparisons of objectives within each (task, mode, train_examples) cell.

    Runs are paired by ``pretrain_seed`` (seed index) present for both objectives; a seed's
    several probe runs are averaged first. With ``baseline`` (e.g. ``"scratch"``) every other
    objective A is compared with it as A - baseline; cells without the baseline give no rows.
    Without it, every pair of objectives is compared, A before B in :func:`objective_order`
    (so ``mlm - clm`` and ``X - scratch``).

    Columns: :data:`COMPARISON_COLUMNS`. ``mean_diff`` is mean(A - B) over the pairs, ``ci_low``
    /``ci_high`` its t-interval, ``p_value`` the two-sided paired t-test
    (:func:`scipy.stats.ttest_rel`), ``d_z = mean_diff / std_diff`` (Cohen's d for paired data),
    ``ci_bootstrap_lo``/``_hi`` the paired bootstrap interval, ``mde`` the minimum detectable
    effect (:mod:`pretrainlab.study.inference`). The rows returned are the family: ``p_holm`` is
    the Holm-adjusted p-value over all of them, ``significant`` whether it is below 0.05.

    Edge cases (decided): pairs with no common seed produce no row (so an arm's twin, on fresh
    seeds, is outside the family: :func:`pretrainlab.study.verdict.twin_comparisons`).
    ``n_pairs == 1`` keeps a row with the single difference as ``mean_diff`` and NaN std,
    interval, t, p and d_z, so the report shows the comparison exists but cannot be tested. When
    all differences are equal (``std_diff == 0``, within 1e-12 relative) there is no variance to
    test against: t, p, d_z, both intervals and the MDE are NaN (a zero-width interval would
    claim certainty three equal scores cannot give). Untestable rows are outside the family.
    """
    per_seed = per_seed_scores(results, score)
    rows = []
    for key, cell in per_seed.groupby(GROUP_KEYS, sort=False, dropna=False):
        series = {
            obj: g.set_index("pretrain_seed")["value"] for obj, g in cell.groupby("objective")
        }
        metric = "/".join(sorted(set("/".join(cell["metric"]).split("/"))))
        objs = objective_order(series)
        if baseline is None:  # arms of a budget axis meet only at their own budget
            pairs = [p for p in itertools.combinations(objs, 2) if _same_budget(*p)]
        elif baseline in series:
            pairs = [(o, baseline) for o in objs if o != baseline]
        else:
            pairs = []
        for a, b in pairs:
            row = _paired_row(series[a], series[b], confidence)
            if row["n_pairs"] == 0:
                continue
            rows.append(
                {
                    **dict(zip(GROUP_KEYS, key, strict=True)),
                    "metric": metric,
                    "objective_a": a,
                    "objective_b": b,
                    **row,
                    "pretrain_budget": split_arm(a)[1],
                }
            )
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    if not out.empty:
        out["p_holm"], out["significant"] = inf.holm(out["p_value"])
        out = out.astype({"n_pairs": int, "significant": bool})
    return sort_frame(out, obj_cols=("objective_a", "objective_b"))
