"""The report's tables, built from the statistics of :mod:`pretrainlab.study.stats` and the
conclusions of :mod:`pretrainlab.study.verdict` as :class:`~pretrainlab.study.render.Table`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pretrainlab.study import stats as st
from pretrainlab.study.render import (
    Cell,
    Table,
    _decimals,
    _finite,
    _fmt_budget,
    _fmt_num,
    _fmt_p,
    _score_text,
)

_MAX_LISTED_FAILURES = 200


def _summary_tables(summary: pd.DataFrame, colors: dict[str, str]) -> list[tuple[str, Table]]:
    """One objective x task table per (mode, budget)."""
    out: list[tuple[str, Table]] = []
    if summary.empty:
        return out
    n_typical = int(summary["n"].mode().max())
    for mode in st.mode_order(summary["mode"]):
        sm = summary[summary["mode"] == mode]
        for budget in sorted(sm["train_examples"].unique()):
            sb = sm[sm["train_examples"] == budget]
            tasks = sorted(sb["task"].unique())
            objs = st.objective_order(sb["objective"])
            header = ["objective"]
            best: dict[str, float] = {}
            for task in tasks:
                tt = sb[sb["task"] == task]
                metric = "/".join(sorted(tt["metric"].astype(str).unique()))
                header.append(f"{task} ({metric})")
                means = tt["mean"].astype(float)
                best[task] = means.min() if st.lower_is_better(metric) else means.max()
            # decimals per task column: accuracies (0-1) and QA F1 (0-100) share a table
            dec = {t: _decimals(sb.loc[sb["task"] == t, "mean"]) for t in tasks}
            rows = []
            for obj in objs:
                row = [Cell(obj, color=colors.get(obj))]
                for task in tasks:
                    r = sb[(sb["task"] == task) & (sb["objective"] == obj)]
                    if r.empty:
                        row.append(Cell("–"))
                        continue
                    r = r.iloc[0]
                    text = _score_text(
                        r["mean"], r["ci_low"], r["ci_high"], int(r["n"]), dec[task], n_typical
                    )
                    row.append(Cell(text, bold=bool(r["mean"] == best[task]) and len(objs) > 1))
                rows.append(row)
            title = f"{mode} · {_fmt_budget(budget)} training examples"
            out.append((title, Table(header, rows, [False] + [True] * len(tasks))))
    return out


def _mean_ci_text(mean: float, lo: float, hi: float, dec: int) -> str:
    """ "mean ± half-width" (or just the mean when the interval is undefined); "–" for NaN."""
    return _score_text(mean, lo, hi, n=0, dec=dec, n_typical=0)


def _setting_cells(r: pd.Series) -> list[Cell]:
    """The task, mode and label budget a row is about: the first three cells of each table."""
    return [Cell(str(r["task"])), Cell(str(r["mode"])), Cell(_fmt_budget(r["train_examples"]))]


def _winners_table(win: pd.DataFrame, colors: dict[str, str]) -> Table:
    header = ["task", "mode", "examples", "metric", "best", "mean ± CI", "runner-up", "mean ± CI",
              "margin", "p (Holm)", "verdict"]  # fmt: skip
    numeric = [False, False, True, False, False, True, False, True, True, True, False]
    rows = []
    for _, r in win.iterrows():
        dec = _decimals([r["best_mean"]])  # per row: accuracies and QA F1 differ in scale
        ru = r["runner_up"] if isinstance(r["runner_up"], str) else None
        rows.append(
            [
                *_setting_cells(r),
                Cell(str(r["metric"])),
                Cell(str(r["best"]), color=colors.get(r["best"])),
                Cell(_mean_ci_text(r["best_mean"], r["best_ci_low"], r["best_ci_high"], dec)),
                Cell(ru or "–", color=colors.get(ru) if ru else None),
                Cell(
                    _mean_ci_text(
                        r["runner_up_mean"], r["runner_up_ci_low"], r["runner_up_ci_high"], dec
                    )
                ),
                Cell(_fmt_num(r["margin"], dec)),
                Cell(_fmt_p(r["p_holm"])),
                Cell(str(r["verdict"]), cls=str(r["verdict"])),
            ]
        )
    note = ("clear: the paired test of best against runner-up is significant after Holm "
            "correction over comparisons.csv; tied: it is not; unknown: the test is undefined "
            "(one pair, or identical differences); only: a single objective was run.")  # fmt: skip
    return Table(header, rows, numeric, note)


def _interval(lo: Any, hi: Any, dec: int) -> str:
    return f"[{lo:+.{dec}f}, {hi:+.{dec}f}]" if _finite(lo) and _finite(hi) else "–"


def _comparison_table(cmp: pd.DataFrame, colors: dict[str, str]) -> Table:
    header = ["task", "mode", "examples", "metric", "A − B", "pairs", "mean A", "mean B",
              "Δ mean", "95% t CI of Δ", "bootstrap CI", "MDE", "p (paired t)", "p (Holm)",
              "d_z"]  # fmt: skip
    numeric = [False, False, True, False, False] + [True] * 10
    rows = []
    for _, r in cmp.iterrows():
        dec = _decimals([r["mean_a"], r["mean_b"]])  # per row, as in the winners table
        rows.append(
            [
                *_setting_cells(r),
                Cell(str(r["metric"])),
                Cell(
                    f"{r['objective_a']} − {r['objective_b']}", color=colors.get(r["objective_a"])
                ),
                Cell(str(int(r["n_pairs"]))),
                Cell(_fmt_num(r["mean_a"], dec)),
                Cell(_fmt_num(r["mean_b"], dec)),
                Cell(f"{r['mean_diff']:+.{dec}f}" if _finite(r["mean_diff"]) else "–"),
                Cell(_interval(r["ci_low"], r["ci_high"], dec)),
                Cell(_interval(r["ci_bootstrap_lo"], r["ci_bootstrap_hi"], dec)),
                Cell(_fmt_num(r["mde"], dec)),
                Cell(_fmt_p(r["p_value"])),
                Cell(_fmt_p(r["p_holm"]), bold=bool(r["significant"])),
                Cell(f"{r['d_z']:+.2f}" if _finite(r["d_z"]) else "–"),
            ]
        )
    note = ("Pairs share a pretraining seed. Δ = A − B; positive means A scores higher. "
            "p (Holm): adjusted over every testable row of comparisons.csv; bold: significant "
            "after that correction (p < 0.05). MDE: the smallest Δ this test detects with 80% "
            "power at p < 0.05, from the observed sd of Δ. The bootstrap CI (BCa) has only 10 "
            "distinct resamples with 3 pairs: read it beside the t CI. d_z = mean(Δ) / sd(Δ). "
            "'–' where undefined (one pair, or identical differences).")  # fmt: skip
    return Table(header, rows, numeric, note)


def _variance_table(summary: pd.DataFrame, colors: dict[str, str]) -> Table:
    """Variance by source per cell: between pretraining seeds, between probe seeds within one."""
    header = ["task", "mode", "examples", "objective", "pretraining seeds", "probe runs / seed",
              "sd pretrain", "sd probe", "pretrain share"]  # fmt: skip
    rows = []
    for _, r in summary.iterrows():
        dec = _decimals([r["mean"]])
        vp, vq = float(r["var_pretrain"]), float(r["var_probe"])
        share = vp / (vp + vq) if _finite(vp) and _finite(vq) and vp + vq > 0 else float("nan")
        rows.append(
            [
                *_setting_cells(r),
                Cell(str(r["objective"]), color=colors.get(r["objective"])),
                Cell(str(int(r["n"]))),
                Cell(_fmt_num(r["n_probe"], 1)),
                Cell(_fmt_num(vp**0.5 if _finite(vp) else vp, dec + 1)),
                Cell(_fmt_num(vq**0.5 if _finite(vq) else vq, dec + 1)),
                Cell(f"{share:.0%}" if _finite(share) else "–"),
            ]
        )
    note = ("One-way random-effects ANOVA per cell: sd pretrain is the spread of an arm between "
            "pretraining runs, sd probe between probe seeds (label sample, head init) of one run.")  # fmt: skip
    return Table(header, rows, [False, False, True, False] + [True] * 5, note)


def _failures_table(bad: pd.DataFrame) -> Table:
    cols = [
        "objective",
        "pretrain_seed",
        "seed",
        "task",
        "mode",
        "train_examples",
        "status",
        "error",
    ]
    header = [
        "objective",
        "pretrain seed",
        "probe seed",
        "task",
        "mode",
        "examples",
        "status",
        "error",
    ]
    numeric = [False, True, True, False, False, True, False, False]
    rows = []
    for _, r in bad.head(_MAX_LISTED_FAILURES).iterrows():
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c == "train_examples":
                text = _fmt_budget(v)
            elif c == "error":
                text = " ".join(str(v if isinstance(v, str) else "").split()) or "(no message)"
                text = text if len(text) <= 300 else text[:297] + "..."
            else:
                text = "–" if st.is_missing(v) else str(v)
            cells.append(Cell(text, cls="err" if c == "error" else ""))
        rows.append(cells)
    note = ""
    if len(bad) > _MAX_LISTED_FAILURES:
        note = f"{len(bad) - _MAX_LISTED_FAILURES} more not shown; see results.csv."
    return Table(header, rows, numeric, note)
