"""What a study concludes, from the corrected paired tests (:mod:`pretrainlab.study.stats`):

* :func:`winners`: the best arm per cell and whether it beats the runner-up after correction
  (not whether two intervals overlap: that test has the wrong error rate);
* :func:`twin_comparisons` / :func:`false_positive_rate`: the negative control of
  ``study.control_twin``, an arm pretrained again on fresh seeds and compared with itself;
* :func:`answer`: the paragraph that opens the report, the experiment's question answered in
  plain words with the numbers behind it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pretrainlab.study import stats as st
from pretrainlab.study.inference import ALPHA
from pretrainlab.study.plan import TWIN_SUFFIX

WINNER_COLUMNS = [
    *st.GROUP_KEYS,
    "metric",
    "best",
    "best_mean",
    "best_ci_low",
    "best_ci_high",
    "runner_up",
    "runner_up_mean",
    "runner_up_ci_low",
    "runner_up_ci_high",
    "margin",
    "p_holm",
    "verdict",
]


def winners(summary: pd.DataFrame, comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Best objective per (task, mode, train_examples) and whether it beats the runner-up.

    Best = highest mean (lowest for loss/error metrics); equal means are broken by the canonical
    objective order. ``verdict`` comes from the corrected paired test of best against runner-up
    in ``comparisons`` (:func:`pretrainlab.study.stats.paired_comparisons`; without it every
    verdict is ``"untested"``): ``"clear"`` when it is significant after Holm correction,
    ``"tied"`` when it is not, ``"unknown"`` when the test is undefined (one pair, identical
    differences) and ``"only"`` when the cell has one objective.
    ``margin`` = |best_mean - runner_up_mean|. Columns: :data:`WINNER_COLUMNS`.
    """
    rows = []
    if not summary.empty:
        objs = st.objective_order(summary["objective"])
        rank = {o: i for i, o in enumerate(objs)}
        for key, cell in summary.groupby(st.GROUP_KEYS, sort=False, dropna=False):
            cell = cell[np.isfinite(cell["mean"].astype(float))]
            if cell.empty:
                continue
            metric = str(cell["metric"].iloc[0])
            sign = 1.0 if st.lower_is_better(metric) else -1.0
            cell = cell.assign(_k=sign * cell["mean"], _r=cell["objective"].map(rank))
            cell = cell.sort_values(["_k", "_r"], kind="stable")
            row = _winner_row(dict(zip(st.GROUP_KEYS, key, strict=True)), metric, cell)
            if row["runner_up"] is not None:
                row["p_holm"], row["verdict"] = _corrected_verdict(comparisons, row)
            rows.append(row)
    out = pd.DataFrame(rows, columns=WINNER_COLUMNS)
    return st.sort_frame(out, obj_cols=()) if not out.empty else out


def _winner_row(keys: dict, metric: str, cell: pd.DataFrame) -> dict:
    best = cell.iloc[0]
    ru = cell.iloc[1] if len(cell) > 1 else None
    return {
        **keys,
        "metric": metric,
        "best": best["objective"],
        "best_mean": best["mean"],
        "best_ci_low": best["ci_low"],
        "best_ci_high": best["ci_high"],
        "runner_up": None if ru is None else ru["objective"],
        "runner_up_mean": math.nan if ru is None else ru["mean"],
        "runner_up_ci_low": math.nan if ru is None else ru["ci_low"],
        "runner_up_ci_high": math.nan if ru is None else ru["ci_high"],
        "margin": math.nan if ru is None else abs(best["mean"] - ru["mean"]),
        "p_holm": math.nan,
        "verdict": "only",
    }


def _corrected_verdict(comparisons: pd.DataFrame | None, row: dict) -> tuple[float, str]:
    if comparisons is None or comparisons.empty:
        return math.nan, "untested"
    pair = {row["best"], row["runner_up"]}
    same = np.ones(len(comparisons), dtype=bool)
    for k in st.GROUP_KEYS:
        same &= (comparisons[k] == row[k]).to_numpy()
    hit = comparisons[same & comparisons[["objective_a", "objective_b"]].apply(
        lambda r: set(r) == pair, axis=1).to_numpy()]  # fmt: skip
    if hit.empty or not np.isfinite(float(hit["p_holm"].iloc[0])):
        return math.nan, "unknown"
    p = float(hit["p_holm"].iloc[0])
    return p, "clear" if bool(hit["significant"].iloc[0]) else "tied"


# ----------------------------------------------------------------------------- negative control


def twin_comparisons(results: pd.DataFrame) -> pd.DataFrame:
    """Each ``ARM_twin`` against ``ARM`` (the twin's pretraining seeds paired with the seeds of
    the original they were planned beside, column ``pairs_with``), Holm-corrected among
    themselves: a separate family, since under the null every difference here is noise."""
    objs = {str(o) for o in results.get("objective", pd.Series(dtype=str)).dropna()}
    out = []
    for twin in sorted(o for o in objs if o.endswith(TWIN_SUFFIX)):
        arm = twin.removesuffix(TWIN_SUFFIX)
        rows = results[results["objective"].isin([arm, twin])].copy()
        is_twin = rows["objective"] == twin
        rows.loc[is_twin, "pretrain_seed"] = rows.loc[is_twin, "pairs_with"]
        out.append(st.paired_comparisons(rows))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=st.COMPARISON_COLUMNS)


def false_positive_rate(twins: pd.DataFrame) -> str | None:
    """The twin comparisons' rate of significant differences, before and after correction."""
    tested = twins[np.isfinite(twins["p_value"].astype(float))] if not twins.empty else twins
    if tested.empty:
        return None
    raw = int((tested["p_value"] < ALPHA).sum())
    holm = int(tested["significant"].sum())
    return (
        f"Negative control (an arm pretrained again on fresh seeds, compared with itself over "
        f"{len(tested)} cells): {raw} significant at p < {ALPHA:g} before correction "
        f"({raw / len(tested):.0%}; a calibrated study shows about 5%), {holm} after Holm "
        f"correction (expected: none)."
    )


# ----------------------------------------------------------------------------- the answer


def _dec(r: pd.Series) -> int:
    """Decimals of a row: accuracies (0-1) three, QA F1 (0-100) one."""
    return 1 if max(abs(float(r["mean_a"])), abs(float(r["mean_b"]))) > 1.5 else 3


def _where(r: pd.Series) -> str:
    return f"{r['task']} {r['mode']}@{r['train_examples']}"


def _lead(r: pd.Series, sign: float) -> str:
    """A winner's lead and its t interval, as positive numbers."""
    dec, lo, hi = _dec(r), sign * float(r["ci_low"]), sign * float(r["ci_high"])
    lead = sign * float(r["mean_diff"])
    return f"{_where(r)} by {lead:.{dec}f} [{min(lo, hi):.{dec}f}, {max(lo, hi):.{dec}f}]"


def _diff(r: pd.Series) -> str:
    dec = _dec(r)
    lo, hi = float(r["ci_low"]), float(r["ci_high"])
    ci = f" [{lo:+.{dec}f}, {hi:+.{dec}f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{float(r['mean_diff']):+.{dec}f}{ci}"


def _pair_sentence(a: str, b: str, rows: pd.DataFrame) -> str:
    """Where ``a`` or ``b`` is better after correction, where only before it, where neither."""
    better_a = (rows["mean_diff"] > 0) ^ rows["metric"].map(st.lower_is_better)
    sig, raw = rows["significant"].astype(bool), rows["p_value"] < ALPHA
    parts = []
    for who, mask, sign in ((a, sig & better_a, 1.0), (b, sig & ~better_a, -1.0)):
        if mask.any():
            items = [
                f"{_lead(r, sign)} (p_holm {r['p_holm']:.2g})" for _, r in rows[mask].iterrows()
            ]
            parts.append(f"{who} is better on " + "; ".join(items))
    if (raw & ~sig).any():
        items = [f"{_where(r)} ({_diff(r)}, p {r['p_value']:.2g}, p_holm {r['p_holm']:.2g})"
                 for _, r in rows[raw & ~sig].iterrows()]  # fmt: skip
        parts.append("significant before correction only on " + "; ".join(items))
    if (~raw).any():
        items = [f"{_where(r)} ({_diff(r)}, MDE {float(r['mde']):.{_dec(r)}f})"
                 for _, r in rows[~raw].iterrows()]  # fmt: skip
        parts.append("no detectable difference on " + "; ".join(items))
    return (
        f"{a} vs {b}: "
        + "; ".join(parts[:1])
        + "".join(f". {p[0].upper()}{p[1:]}" for p in parts[1:])
        + "."
    )


def answer(
    question: str | None, comparisons: pd.DataFrame, twins: pd.DataFrame | None = None
) -> list[str]:
    """The report's opening paragraphs: the question, then one sentence per pair of arms (pairs
    of pretrained arms first, then each against the baseline) naming where one is better after
    Holm correction and where no difference was detected, with its MDE, then the twin's rate."""
    asked = f"Question: {question.strip()} " if question else ""
    tested = (
        comparisons[np.isfinite(comparisons["p_value"].astype(float))]
        if not comparisons.empty
        else comparisons
    )
    if comparisons.empty:
        return [
            asked + "Answer: none can be given. The family of comparisons is empty: the results "
            "hold one arm and no scratch baseline on the same pretraining seeds, so there is "
            "nothing to compare. Add an arm (study.objectives) or the baseline (study.baseline)."
        ]
    if tested.empty:
        return [
            asked + "Answer: none can be given. No comparison has two or more pretraining seeds "
            "with varying differences, so there is no variance to test against and no p-value is "
            "computed: run more pretraining seeds (study.pretrain_seeds), then read the tables."
        ]
    n = sorted({int(v) for v in tested["n_pairs"]})
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    out = [
        asked + f"Answer, from paired t-tests over {seeds} pretraining seeds, Holm-corrected over "
        f"the {len(tested)} testable comparisons of comparisons.csv (MDE: the smallest difference "
        "each test detects with 80% power at p < 0.05, before correction):"
    ]
    pairs = list(dict.fromkeys(zip(tested["objective_a"], tested["objective_b"], strict=True)))
    pairs.sort(key=lambda p: p[1] == st.BASELINE)  # arm vs arm first, then each vs scratch
    for a, b in pairs:
        rows = tested[(tested["objective_a"] == a) & (tested["objective_b"] == b)]
        out.append(_pair_sentence(a, b, rows))
    rate = false_positive_rate(twins) if twins is not None else None
    return out + ([rate] if rate else [])
