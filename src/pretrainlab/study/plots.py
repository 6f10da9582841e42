"""The study's plots as PNG bytes: pretraining curves, probe scores, label budgets, linear vs
fine-tuning.

:func:`draw_plots` is the entry point; :func:`objective_colors` gives every objective the same
colour in every plot and table. Plots use matplotlib's object API
(:class:`matplotlib.figure.Figure`, rendered by Agg) so importing this module never changes the
global pyplot backend.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pretrainlab.objectives import DISPLAY_ORDER
from pretrainlab.study import stats as st
from pretrainlab.study.render import _finite, _fmt_budget

DPI = 110
PLOT_FILES = {
    "plot_curves": "pretraining_curves.png",
    "plot_scores": "probe_scores.png",
    "plot_budgets": "label_budgets.png",
    "plot_linear_vs_finetune": "linear_vs_finetune.png",
}
# matplotlib's tab10 order: the built-in objectives keep one colour each in every plot
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
_FIXED_COLORS = {**dict(zip(DISPLAY_ORDER, _TAB10, strict=False)), "scratch": "#7f7f7f"}
_EXTRA_COLORS = [
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
]


# ============================================================================ public API


def objective_colors(objectives: Iterable[str]) -> dict[str, str]:
    """Colour per objective, identical in every plot: fixed for known names, scratch grey."""
    out: dict[str, str] = {}
    extra = iter(_EXTRA_COLORS * 10)
    for obj in st.objective_order(objectives):
        out[obj] = _FIXED_COLORS.get(obj) or next(extra)
    return out


def _study_colors(results: pd.DataFrame, curves: pd.DataFrame | None) -> dict[str, str]:
    """:func:`objective_colors` over every objective in ``results`` and ``curves``."""
    objs = list(results["objective"].dropna().astype(str))
    if curves is not None and "objective" in curves.columns:
        objs += list(curves["objective"].dropna().astype(str))
    return objective_colors(objs)


def draw_plots(results: pd.DataFrame, curves: pd.DataFrame | None) -> dict[str, bytes]:
    """PNG bytes of each plot that can be drawn, keyed like :data:`PLOT_FILES`, in that order.

    ``results`` and ``curves`` follow the study contract (see :mod:`pretrainlab.study.stats`);
    ``curves`` may be empty or None. A plot is left out when it cannot be drawn: no curves
    (``plot_curves``), no successful runs, one label budget (``plot_budgets``), or linear and
    fine-tune results not both present (``plot_linear_vs_finetune``).
    """
    summary = st.summarize(results)
    per_seed = st.per_seed_scores(results)
    colors = _study_colors(results, curves)
    plots: dict[str, bytes] = {}
    for key, png in (
        ("plot_curves", _plot_curves(curves, colors)),
        ("plot_scores", _plot_scores(summary, per_seed, colors, _references(results))),
        ("plot_budgets", _plot_budgets(summary, colors)),
        ("plot_linear_vs_finetune", _plot_linear_vs_finetune(summary, colors)),
    ):
        if png is not None:
            plots[key] = png
    return plots


# ============================================================================ figures


def _fig_grid(n: int, ncols: int, panel_w: float, panel_h: float) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    width = max(panel_w * ncols, 7.5)  # room for the title and legend above a single panel
    fig = Figure(figsize=(width, panel_h * nrows + 0.9), dpi=DPI, layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _task_grid(
    frame: pd.DataFrame, panel_w: float, panel_h: float
) -> tuple[Figure, list[tuple[Any, str, pd.DataFrame]]]:
    """A figure of one panel per task of ``frame``, three a row: each panel's axes, task and
    rows, tasks in sorted order."""
    tasks = sorted(frame["task"].unique())
    fig, axes = _fig_grid(len(tasks), 3, panel_w, panel_h)
    return fig, [
        (ax, task, frame[frame["task"] == task]) for ax, task in zip(axes, tasks, strict=True)
    ]


def _legend(fig: Figure, objs: Sequence[str], colors: dict[str, str], marker: bool = False) -> None:
    if marker:
        handles = [
            Line2D([], [], color=colors[o], marker="o", linestyle="-", label=o) for o in objs
        ]
    else:
        handles = [Patch(facecolor=colors[o], label=o) for o in objs]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(objs), 6),
        frameon=False,
        fontsize=10,
    )


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _style(ax) -> None:
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _plot_curves(curves: pd.DataFrame, colors: dict[str, str]) -> bytes | None:
    need = {"objective", "pretrain_seed", "step", "name", "value"}
    if curves is None or curves.empty or not need <= set(curves.columns):
        return None
    df = curves.copy()
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[np.isfinite(df["step"]) & np.isfinite(df["value"])]
    if df.empty:
        return None
    names = sorted(df["name"].astype(str).unique(), key=lambda s: (not s.startswith("train"), s))
    objs = st.objective_order(df["objective"])
    fig, axes = _fig_grid(len(names), 3, 5.2, 3.6)
    n_seeds_max = 0
    for ax, name in zip(axes, names, strict=True):
        sub = df[df["name"].astype(str) == name]
        for obj in objs:
            g = sub[sub["objective"] == obj]
            if g.empty:
                continue
            wide = g.pivot_table(
                index="step", columns="pretrain_seed", values="value", aggfunc="mean"
            )
            wide = wide.sort_index()
            if wide.isna().any().any() and len(wide) > 1:  # seeds logged at different steps
                wide = wide.interpolate(method="index", limit_area="inside")
            mean = wide.mean(axis=1)
            std = wide.std(axis=1, ddof=1)
            n_seeds_max = max(n_seeds_max, wide.shape[1])
            x = wide.index.to_numpy(float)
            style = {"marker": "o", "markersize": 3} if len(x) <= 12 else {}
            ax.plot(x, mean.to_numpy(), color=colors[obj], lw=1.6, label=obj, **style)
            if wide.shape[1] > 1:
                ax.fill_between(
                    x,
                    (mean - std).to_numpy(),
                    (mean + std).to_numpy(),
                    color=colors[obj],
                    alpha=0.18,
                    lw=0,
                )
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("pretraining step")
        ax.set_ylabel(name)
        _style(ax)
        ax.grid(axis="x", alpha=0.3)
    band = "band: ±1 s.d." if n_seeds_max > 1 else "single seed"
    fig.suptitle(f"Pretraining curves by objective (mean over seeds; {band})", fontsize=12)
    _legend(fig, objs, colors, marker=False)
    return _png(fig)


def _largest_budget(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary rows at the largest budget of each (task, mode)."""
    top = summary.groupby(["task", "mode"])["train_examples"].transform("max")
    return summary[summary["train_examples"] == top]


def _axis_limits(
    core: Iterable[float], ci: Iterable[float], room_below: float = 0.0
) -> tuple[float, float]:
    """Axis range showing every ``core`` value (means, seed dots) and the intervals ``ci``.

    An interval may widen the range by at most one data span on either side (so one seed-starved
    n=2 interval cannot flatten the plot; its whisker is clipped), and never past 1 or below 0
    when the data lie inside those bounds (accuracy, F1, MCC).
    """
    core = [float(v) for v in core if _finite(v)]
    ci = [float(v) for v in ci if _finite(v)]
    if not core:
        return (0.0, 1.0)
    c_lo, c_hi = min(core), max(core)
    span = c_hi - c_lo if c_hi > c_lo else max(abs(c_hi), 1.0) * 0.05
    lo = max(min([c_lo, *ci]), c_lo - span)
    hi = min(max([c_hi, *ci]), c_hi + span)
    if c_hi <= 1.0:
        hi = min(hi, 1.0)
    if c_lo >= 0.0:
        lo = max(lo, 0.0)
    span = hi - lo if hi > lo else span
    return (lo - (0.05 + room_below) * span, hi + 0.05 * span)


# column: (label, line style, where the label sits: chance at the left, bag of words at the
# right, so two lines at the same height stay readable)
REFERENCES = {
    "chance_score": ("chance", ":", 0.0, "left"),
    "bow_score": ("bag of words", "--", 1.0, "right"),
}


def _references(results: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per task, the mean reference scores (probes/reference.py) at its largest label budget."""
    cols = [c for c in REFERENCES if c in results.columns]
    if not cols or results.empty:
        return {}
    out: dict[str, dict[str, float]] = {}
    for task, t in results.groupby("task"):
        t = t[t["train_examples"] == t["train_examples"].max()]
        means = {c: float(pd.to_numeric(t[c], errors="coerce").mean()) for c in cols}
        out[str(task)] = {c: v for c, v in means.items() if np.isfinite(v)}
    return out


def _reference_lines(ax, refs: dict[str, float], core: list[float]) -> None:
    for col, value in refs.items():
        label, style, x, ha = REFERENCES[col]
        ax.axhline(value, color="#555", ls=style, lw=1.1, zorder=1)
        ax.annotate(f"{label} {value:.3g}", (x, value), xycoords=("axes fraction", "data"),
                    ha=ha, va="bottom", fontsize=8, color="#444", zorder=6)  # fmt: skip
        core.append(value)


def _plot_scores(
    summary: pd.DataFrame,
    per_seed: pd.DataFrame,
    colors: dict[str, str],
    refs: dict[str, dict[str, float]] | None = None,
) -> bytes | None:
    if summary.empty:
        return None
    top = _largest_budget(summary)
    modes = st.mode_order(top["mode"])
    objs = st.objective_order(top["objective"])
    n_obj = len(objs)
    width = 0.8 / n_obj
    panel_w = max(3.6, 0.34 * n_obj * len(modes) + 1.4)
    fig, panels = _task_grid(top, panel_w, 3.8)
    for ax, task, t in panels:
        core: list[float] = []
        cis: list[float] = []
        ticks: list[str] = []
        task_modes = [m for m in modes if m in set(t["mode"])]  # a task probed in fewer modes
        for mi, mode in enumerate(task_modes):
            tm = t[t["mode"] == mode]
            budget = tm["train_examples"].max() if not tm.empty else None
            ticks.append(f"{mode}\n{_fmt_budget(budget)} ex." if budget is not None else mode)
            for oi, obj in enumerate(objs):
                r = tm[tm["objective"] == obj]
                if r.empty:
                    continue
                r = r.iloc[0]
                x = mi + (oi - (n_obj - 1) / 2) * width
                has_ci = _finite(r["ci_low"])
                ax.bar(x, r["mean"], width * 0.92, color=colors[obj], alpha=0.85, zorder=2)
                if has_ci:
                    ax.errorbar(
                        x,
                        r["mean"],
                        yerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]],
                        color="#222",
                        capsize=3,
                        lw=1.1,
                        zorder=4,
                    )
                pts = per_seed[
                    (per_seed["task"] == task)
                    & (per_seed["mode"] == mode)
                    & (per_seed["train_examples"] == budget)
                    & (per_seed["objective"] == obj)
                ]["value"].to_numpy(float)
                if len(pts):
                    jitter = np.linspace(-0.18, 0.18, len(pts)) * width if len(pts) > 1 else [0.0]
                    ax.scatter(
                        x + np.asarray(jitter),
                        pts,
                        s=12,
                        color="white",
                        edgecolor="#222",
                        linewidth=0.7,
                        zorder=5,
                    )
                    core += list(pts)
                core.append(r["mean"])
                cis += [r["ci_low"], r["ci_high"]]
        _reference_lines(ax, (refs or {}).get(task, {}), core)
        ax.set_xticks(range(len(task_modes)), ticks)
        metric = "/".join(sorted(t["metric"].astype(str).unique()))
        ax.set_ylabel(f"test {metric}")
        ax.set_title(task, fontsize=11)
        ax.set_ylim(*_axis_limits(core, cis, room_below=0.2))
        _style(ax)
    key = (
        "bars: mean over pretraining seeds, whiskers: 95% CI, dots: seeds, lines: chance and "
        "bag of words on the same labels (y-axis zoomed)"
    )  # wrapped to the figure: a figure of one or two panels is narrower than the key
    fill = textwrap.fill(key, width=max(40, int(fig.get_figwidth() * 10)))
    fig.suptitle(f"Probe test scores at the largest label budget\n{fill}", fontsize=11.5)
    _legend(fig, objs, colors)
    return _png(fig)


def _plot_budgets(summary: pd.DataFrame, colors: dict[str, str]) -> bytes | None:
    if summary.empty:
        return None
    counts = summary.groupby(["task", "mode"])["train_examples"].nunique()
    panels = [k for k, v in counts.items() if v > 1]
    if not panels:
        return None
    modes = st.mode_order(summary["mode"])
    panels.sort(key=lambda k: (k[0], modes.index(k[1])))
    n_modes = len({m for _, m in panels})
    ncols = n_modes if n_modes >= 2 else 3
    objs = st.objective_order(summary["objective"])
    fig, axes = _fig_grid(len(panels), ncols, 4.8, 3.6)
    for ax, (task, mode) in zip(axes, panels, strict=True):
        sub = summary[(summary["task"] == task) & (summary["mode"] == mode)]
        budgets = sorted(sub["train_examples"].unique())
        for obj in objs:
            g = sub[sub["objective"] == obj].sort_values("train_examples")
            if g.empty:
                continue
            x = g["train_examples"].to_numpy(float)
            ax.plot(x, g["mean"], marker="o", ms=4, lw=1.6, color=colors[obj], label=obj)
            ax.fill_between(
                x,
                g["ci_low"].to_numpy(float),
                g["ci_high"].to_numpy(float),
                color=colors[obj],
                alpha=0.15,
                lw=0,
            )
        ax.set_ylim(*_axis_limits(sub["mean"], pd.concat([sub["ci_low"], sub["ci_high"]])))
        if min(budgets) > 0 and max(budgets) / min(budgets) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(budgets, [_fmt_budget(b) for b in budgets])
        ax.minorticks_off()
        metric = "/".join(sorted(sub["metric"].astype(str).unique()))
        ax.set_xlabel("labelled training examples")
        ax.set_ylabel(f"test {metric}")
        ax.set_title(f"{task} · {mode}", fontsize=11)
        _style(ax)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Label-budget curves (mean over pretraining seeds, band: 95% CI)", fontsize=12)
    _legend(fig, objs, colors, marker=True)
    return _png(fig)


def _plot_linear_vs_finetune(summary: pd.DataFrame, colors: dict[str, str]) -> bytes | None:
    if summary.empty or not {"linear", "finetune"} <= set(summary["mode"]):
        return None
    lin = summary[summary["mode"] == "linear"]
    ft = summary[summary["mode"] == "finetune"]
    both = lin.merge(ft, on=["task", "train_examples", "objective"], suffixes=("_lin", "_ft"))
    if both.empty:
        return None
    top = both.groupby("task")["train_examples"].transform("max")
    both = both[both["train_examples"] == top]
    objs = st.objective_order(both["objective"])
    fig, panels = _task_grid(both, 4.3, 4.1)
    for ax, task, g in panels:
        core: list[float] = []
        cis: list[float] = []
        for _, r in g.iterrows():
            xerr = [[r["mean_lin"] - r["ci_low_lin"]], [r["ci_high_lin"] - r["mean_lin"]]]
            yerr = [[r["mean_ft"] - r["ci_low_ft"]], [r["ci_high_ft"] - r["mean_ft"]]]
            xerr = xerr if _finite(r["ci_low_lin"]) else None
            yerr = yerr if _finite(r["ci_low_ft"]) else None
            ax.errorbar(
                r["mean_lin"],
                r["mean_ft"],
                xerr=xerr,
                yerr=yerr,
                fmt="o",
                ms=7,
                color=colors[r["objective"]],
                ecolor=colors[r["objective"]],
                elinewidth=1.2,
                capsize=3,
                zorder=3,
            )
            cis += [r[c] for c in ("ci_low_lin", "ci_high_lin", "ci_low_ft", "ci_high_ft")]
            core += [r["mean_lin"], r["mean_ft"]]
        lim = _axis_limits(core, cis)
        ax.plot(lim, lim, ls="--", color="#999", lw=1, zorder=1)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_aspect("equal", adjustable="box")
        metric = "/".join(sorted(g["metric_lin"].astype(str).unique()))
        budget = _fmt_budget(g["train_examples"].iloc[0])
        ax.set_xlabel(f"linear probe: test {metric}")
        ax.set_ylabel(f"fine-tune: test {metric}")
        ax.set_title(f"{task} ({budget} examples)", fontsize=11)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(
        "Linear probe vs fine-tuning (mean ± 95% CI; above the dashed line: fine-tuning helps)",
        fontsize=11.5,
    )
    _legend(fig, objs, colors, marker=False)
    return _png(fig)
