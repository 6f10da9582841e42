"""How much pretraining before it pays: a budget axis's gain over scratch against pretraining
tokens, with the crossover of each objective (study/budgets.py makes the runs).

The curve is read from the study's corrected comparisons (each ``ARM@BUDGET - scratch`` row of
comparisons.csv), so its intervals and its ``significant`` flags are the report's. The
crossover of an objective in a cell (task x mode x label budget) is the smallest budget from
which on the 95% interval of the gain excludes 0 in the better direction (a budget that
crosses and falls back does not count); its estimate interpolates, in log tokens, where the
interval's near edge reaches 0 between that budget and the one below. A crossover at the
smallest budget is reported as "at or below" it, none as "not reached by" the largest.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pretrainlab.study import stats as st
from pretrainlab.study.budgets import split_arm
from pretrainlab.study.render import Cell, Doc, Table

CELL = ["task", "mode", "train_examples"]
CURVE_COLUMNS = [
    *CELL, "objective", "budget", "tokens", "mean_diff", "ci_low", "ci_high", "p_holm",
    "significant", "metric",
]  # fmt: skip
CROSSOVER_COLUMNS = [*CELL, "objective", "crossover_budget", "crossover_tokens",
                     "estimate_tokens", "verdict"]  # fmt: skip


def budget_curve(results: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """One row per cell x objective x budget: the gain over scratch with its interval."""
    rows = comparisons[
        (comparisons["objective_b"] == st.BASELINE) & comparisons["pretrain_budget"].notna()
    ]
    if rows.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    tokens = (
        st.usable_runs(results).groupby("objective")["pretrain_tokens"].mean()
        if "pretrain_tokens" in results.columns
        else pd.Series(dtype=float)
    )
    out = rows.assign(
        objective=rows["objective_a"].map(lambda a: split_arm(a)[0]),
        budget=rows["pretrain_budget"].astype(float),
        tokens=rows["objective_a"].map(lambda a: float(tokens.get(a, math.nan))),
    )
    return out[CURVE_COLUMNS].sort_values([*CELL, "objective", "budget"]).reset_index(drop=True)


def _crossed(r: pd.Series) -> bool:
    if st.lower_is_better(str(r["metric"])):
        return bool(r["ci_high"] < 0)
    return bool(r["ci_low"] > 0)


def _estimate(below: pd.Series, at: pd.Series) -> float:
    """Tokens where the interval's near edge reaches 0, log-linear between two budgets."""
    edge = "ci_high" if st.lower_is_better(str(at["metric"])) else "ci_low"
    y0, y1 = float(below[edge]), float(at[edge])
    x0, x1 = math.log(below["tokens"]), math.log(at["tokens"])
    if not all(map(math.isfinite, (y0, y1, x0, x1))) or y1 == y0:
        return math.nan
    return math.exp(x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0))


def crossovers(curve: pd.DataFrame) -> pd.DataFrame:
    """One row per cell x objective: where the gain over scratch starts to hold."""
    rows = []
    for key, g in curve.groupby([*CELL, "objective"], sort=False):
        g = g.sort_values("budget").reset_index(drop=True)
        crossed = g.apply(_crossed, axis=1).tolist()
        first = next((i for i in range(len(g)) if all(crossed[i:])), None)
        top = g.iloc[-1]
        if first is None:
            found = (math.nan, math.nan, math.nan)
            verdict = f"not reached by {top['budget']:g} ({top['tokens'] / 1e6:.3g}M tokens)"
        else:
            at = g.iloc[first]
            estimate = _estimate(g.iloc[first - 1], at) if first else math.nan
            found = (at["budget"], at["tokens"], estimate)
            verdict = (
                f"at or below {at['budget']:g} ({at['tokens'] / 1e6:.3g}M tokens)"
                if first == 0
                else f"at {at['budget']:g} ({at['tokens'] / 1e6:.3g}M tokens), "
                f"est. {estimate / 1e6:.3g}M tokens"
            )
        rows.append([*key, *found, verdict])
    return pd.DataFrame(rows, columns=CROSSOVER_COLUMNS)


def plot_curve(curve: pd.DataFrame, colors: dict[str, str]) -> bytes | None:
    """Gain over scratch (95% band) against pretraining tokens, one panel per cell."""
    if curve.empty or curve["tokens"].isna().all():
        return None
    cells = list(curve.groupby(CELL, sort=False))
    ncols = min(3, len(cells))
    nrows = math.ceil(len(cells) / ncols)
    size = (max(4.2 * ncols, 6.4), 3.2 * nrows + 0.6)
    fig = Figure(figsize=size, dpi=110, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, ((task, mode, labels), g) in zip(axes, cells, strict=False):
        for obj, h in g.groupby("objective", sort=False):
            h = h.sort_values("tokens")
            color = colors.get(obj)
            ax.plot(h["tokens"], h["mean_diff"], marker="o", color=color, label=obj)
            ax.fill_between(h["tokens"], h["ci_low"], h["ci_high"], color=color, alpha=0.2)
        ax.axhline(0.0, color="#7f7f7f", lw=1, ls="--")
        ax.set_xscale("log")
        ticks = sorted(g["tokens"].dropna().unique())
        ax.set_xticks(ticks, [f"{t / 1e6:.3g}M" for t in ticks], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_title(f"{task} · {mode} · {labels:g} labels", fontsize=9)
        ax.set_xlabel("pretraining tokens")
        ax.set_ylabel(f"gain over scratch ({g['metric'].iloc[0]})")
        ax.legend(fontsize=8)
    for ax in axes[len(cells) :]:
        ax.set_visible(False)
    fig.suptitle("Gain over scratch by pretraining budget (95% CI over pretraining seeds)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def section(curve: pd.DataFrame, cross: pd.DataFrame, png: bytes | None) -> Doc:
    """The report's budget-curve section: the crossover table, then the plot."""
    doc = Doc()
    doc.h(2, "Budget curve: how much pretraining before it pays")
    doc.p(
        "Gain over scratch (paired over pretraining seeds, 95% interval, Holm-corrected in the "
        "comparisons table) at each pretraining budget. The crossover is the smallest budget "
        "from which on the interval excludes 0; its estimate interpolates in log tokens."
    )
    header = [*CELL, "objective", "crossover"]
    body = [
        [Cell(str(r.task)), Cell(str(r.mode)), Cell(f"{r.train_examples:g}"),
         Cell(str(r.objective)), Cell(str(r.verdict))]
        for r in cross.itertuples(index=False)
    ]  # fmt: skip
    doc.table(Table(header, body, [False] * len(header)))
    if png is not None:
        doc.img("Gain over scratch against pretraining tokens", "plots/budget_curve.png", png)
    return doc
