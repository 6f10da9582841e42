"""The human-readable report of a study: CSV tables, Markdown, self-contained HTML, PNG plots.

:func:`write_report` is the entry point. Every file is written atomically (temporary file in the
same folder, then :func:`os.replace`), plots first, so a report never references a missing
image. Plots use matplotlib's object API (:class:`matplotlib.figure.Figure`, rendered by Agg)
so importing this module never changes the global pyplot backend.

Statistics come from :mod:`pretrainlab.study.stats`; see its docstring for what counts as a
usable run and how seeds are paired.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pretrainlab.io import atomic_write_bytes, atomic_write_text
from pretrainlab.study import stats as st

DPI = 110
PLOT_FILES = {
    "plot_curves": "pretraining_curves.png",
    "plot_scores": "probe_scores.png",
    "plot_budgets": "label_budgets.png",
    "plot_linear_vs_finetune": "linear_vs_finetune.png",
}
_FIXED_COLORS = {
    "mlm": "#1f77b4",
    "clm": "#ff7f0e",
    "nsp": "#2ca02c",
    "mlm_nsp": "#d62728",
    "scratch": "#7f7f7f",
}
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
_MAX_LISTED_FAILURES = 200


# ============================================================================ small helpers


def objective_colors(objectives: Iterable[str]) -> dict[str, str]:
    """Colour per objective, identical in every plot: fixed for known names, scratch grey."""
    out: dict[str, str] = {}
    extra = iter(_EXTRA_COLORS * 10)
    for obj in st.objective_order(objectives):
        out[obj] = _FIXED_COLORS.get(obj) or next(extra)
    return out


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _decimals(values: Iterable[float]) -> int:
    vals = [abs(float(v)) for v in values if _finite(v)]
    return 3 if not vals or max(vals) <= 10 else 1


def _fmt_num(x: Any, dec: int = 3) -> str:
    return f"{float(x):.{dec}f}" if _finite(x) else "–"


def _fmt_p(p: Any) -> str:
    if not _finite(p):
        return "–"
    p = float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_budget(n: Any) -> str:
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)


def _fmt_duration(seconds: float) -> str:
    s = int(round(float(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    text = f"{h}h {m:02d}m {sec:02d}s" if h else (f"{m}m {sec:02d}s" if m else f"{sec}s")
    return f"{text} ({float(seconds):,.0f} s)" if s >= 60 else text


def _fmt_meta_value(key: str, value: Any) -> str:
    k = key.lower()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value):
        if "wall" in k or k.endswith("_s") or k.endswith("seconds") or "duration" in k:
            return _fmt_duration(value)
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return (
            value.isoformat(sep=" ", timespec="seconds")
            if isinstance(value, _dt.datetime)
            else value.isoformat()
        )
    return str(value)


def _score_text(mean: float, lo: float, hi: float, n: int, dec: int, n_typical: int) -> str:
    if not _finite(mean):
        return "–"
    text = f"{mean:.{dec}f}"
    if _finite(lo) and _finite(hi):
        text += f" ± {(hi - lo) / 2:.{dec}f}"
    if n != n_typical or n == 1:
        text += f" (n={n})"
    return text


# ============================================================================ document model


@dataclass
class Cell:
    text: str
    bold: bool = False
    color: str | None = None  # objective colour swatch (HTML only)
    cls: str = ""  # extra CSS class (HTML only)


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    numeric: list[bool]
    note: str = ""


@dataclass
class Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "table" | "img" | "grid"
    text: str = ""
    table: Table | None = None
    image: tuple[str, bytes] | None = None  # (relative path, png bytes)
    items: list[tuple[str, Table]] = field(default_factory=list)  # "grid": (heading, table)


@dataclass
class Doc:
    blocks: list[Block] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(Block(f"h{level}", text))

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def table(self, t: Table) -> None:
        self.blocks.append(Block("table", table=t))

    def grid(self, items: list[tuple[str, Table]]) -> None:
        """Headed tables; sequential in Markdown, side by side (wrapping) in HTML."""
        self.blocks.append(Block("grid", items=items))

    def img(self, caption: str, rel: str, png: bytes) -> None:
        self.blocks.append(Block("img", caption, image=(rel, png)))


def _md_escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(doc: Doc) -> str:
    out: list[str] = []
    for b in doc.blocks:
        if b.kind.startswith("h"):
            out += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "img" and b.image:
            out += [f"![{_md_escape(b.text)}]({b.image[0]})", "", f"*{b.text}*", ""]
        elif b.kind == "table" and b.table:
            out += _md_table(b.table)
        elif b.kind == "grid":
            for heading, table in b.items:
                out += [f"### {heading}", "", *_md_table(table)]
    return "\n".join(out).rstrip() + "\n"


def _md_table(t: Table) -> list[str]:
    out = ["| " + " | ".join(_md_escape(h) for h in t.header) + " |"]
    out.append("|" + "|".join("---:" if num else ":---" for num in t.numeric) + "|")
    for row in t.rows:
        cells = [f"**{_md_escape(c.text)}**" if c.bold else _md_escape(c.text) for c in row]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if t.note:
        out += [f"*{t.note}*", ""]
    return out


_CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f4f5f7; color: #1f2328;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 40px 60px; background: #fff;
  box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { font-size: 28px; margin: 0 0 12px; border-bottom: 2px solid #e5e7eb; padding-bottom: 8px; }
h2 { font-size: 21px; margin: 36px 0 10px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; color: #32383f; }
p { margin: 6px 0 12px; }
.tablewrap { overflow-x: auto; margin: 6px 0 18px; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
th { background: #f0f3f6; text-align: left; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #eef6ee !important; }
td.err { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
  max-width: 560px; word-break: break-word; }
td.clear { color: #1a7f37; font-weight: 600; }
td.tied { color: #9a6700; }
td.sig { font-weight: 700; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; vertical-align: baseline; }
.tnote { color: #57606a; font-size: 12.5px; margin-top: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 4px 28px; align-items: flex-start; }
.gcell h3 { margin-top: 14px; }
figure { margin: 18px 0 28px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption { color: #57606a; font-size: 13px; margin-top: 4px; }
"""


def render_html(doc: Doc, title: str) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body><main>",
    ]
    for b in doc.blocks:
        if b.kind.startswith("h"):
            parts.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "img" and b.image:
            data = base64.b64encode(b.image[1]).decode("ascii")
            parts.append(
                f'<figure><img alt="{e(b.text)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(b.text)}</figcaption></figure>"
            )
        elif b.kind == "table" and b.table:
            parts.append(_html_table(b.table))
        elif b.kind == "grid":
            cells = "".join(
                f'<div class="gcell"><h3>{e(h)}</h3>{_html_table(t)}</div>' for h, t in b.items
            )
            parts.append(f'<div class="grid">{cells}</div>')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _html_table(t: Table) -> str:
    e = html.escape
    head = "".join(
        f'<th class="num">{e(h)}</th>' if num else f"<th>{e(h)}</th>"
        for h, num in zip(t.header, t.numeric, strict=True)
    )
    body = []
    for row in t.rows:
        tds = []
        for c, num in zip(row, t.numeric, strict=True):
            classes = " ".join(
                x for x in ("num" if num else "", "best" if c.bold else "", c.cls) if x
            )
            attr = f' class="{classes}"' if classes else ""
            sw = f'<span class="sw" style="background:{e(c.color)}"></span>' if c.color else ""
            tds.append(f"<td{attr}>{sw}{e(c.text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    note = f'<div class="tnote">{e(t.note)}</div>' if t.note else ""
    return (
        f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{note}</div>"
    )


# ============================================================================ plots


def _fig_grid(n: int, ncols: int, panel_w: float, panel_h: float) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    width = max(panel_w * ncols, 7.5)  # room for the title and legend above a single panel
    fig = Figure(figsize=(width, panel_h * nrows + 0.9), dpi=DPI, layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


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


def _plot_scores(
    summary: pd.DataFrame, per_seed: pd.DataFrame, colors: dict[str, str]
) -> bytes | None:
    if summary.empty:
        return None
    top = _largest_budget(summary)
    tasks = sorted(top["task"].unique())
    modes = st.mode_order(top["mode"])
    objs = st.objective_order(top["objective"])
    n_obj = len(objs)
    width = 0.8 / n_obj
    panel_w = max(3.6, 0.34 * n_obj * len(modes) + 1.4)
    fig, axes = _fig_grid(len(tasks), 3, panel_w, 3.8)
    for ax, task in zip(axes, tasks, strict=True):
        t = top[top["task"] == task]
        core: list[float] = []
        cis: list[float] = []
        ticks: list[str] = []
        for mi, mode in enumerate(modes):
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
        ax.set_xticks(range(len(modes)), ticks)
        metric = "/".join(sorted(t["metric"].astype(str).unique()))
        ax.set_ylabel(f"test {metric}")
        ax.set_title(task, fontsize=11)
        ax.set_ylim(*_axis_limits(core, cis, room_below=0.2))
        _style(ax)
    fig.suptitle(
        "Probe test scores at the largest label budget\n"
        "bars: mean over pretraining seeds, whiskers: 95% CI, dots: seeds (y-axis zoomed)",
        fontsize=11.5,
    )
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
    tasks = sorted(both["task"].unique())
    objs = st.objective_order(both["objective"])
    fig, axes = _fig_grid(len(tasks), 3, 4.3, 4.1)
    for ax, task in zip(axes, tasks, strict=True):
        g = both[both["task"] == task]
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


# ============================================================================ report sections


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
            dec = _decimals(sb["mean"])
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
                        r["mean"], r["ci_low"], r["ci_high"], int(r["n"]), dec, n_typical
                    )
                    row.append(Cell(text, bold=bool(r["mean"] == best[task]) and len(objs) > 1))
                rows.append(row)
            title = f"{mode} · {_fmt_budget(budget)} training examples"
            out.append((title, Table(header, rows, [False] + [True] * len(tasks))))
    return out


def _mean_ci_text(mean: float, lo: float, hi: float, dec: int) -> str:
    """ "mean ± half-width" (or just the mean when the interval is undefined); "–" for NaN."""
    return _score_text(mean, lo, hi, n=0, dec=dec, n_typical=0)


def _winners_table(win: pd.DataFrame, colors: dict[str, str]) -> Table:
    header = ["task", "mode", "examples", "metric", "best", "mean ± CI", "runner-up", "mean ± CI",
              "margin", "verdict"]  # fmt: skip
    numeric = [False, False, True, False, False, True, False, True, True, False]
    rows = []
    dec = _decimals(win["best_mean"]) if not win.empty else 3
    for _, r in win.iterrows():
        ru = r["runner_up"] if isinstance(r["runner_up"], str) else None
        rows.append(
            [
                Cell(str(r["task"])),
                Cell(str(r["mode"])),
                Cell(_fmt_budget(r["train_examples"])),
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
                Cell(str(r["verdict"]), cls=str(r["verdict"])),
            ]
        )
    note = ("clear: the 95% CIs of best and runner-up do not overlap; tied: they overlap; "
            "unknown: a CI is undefined (n=1); only: a single objective was run.")  # fmt: skip
    return Table(header, rows, numeric, note)


def _comparison_table(cmp: pd.DataFrame, colors: dict[str, str]) -> Table:
    header = ["task", "mode", "examples", "metric", "A − B", "pairs", "mean A", "mean B",
              "Δ mean", "95% CI of Δ", "p (paired t)", "d_z"]  # fmt: skip
    numeric = [False, False, True, False, False, True, True, True, True, True, True, True]
    dec = _decimals(pd.concat([cmp["mean_a"], cmp["mean_b"]])) if not cmp.empty else 3
    rows = []
    for _, r in cmp.iterrows():
        ci = (
            f"[{r['ci_low']:+.{dec}f}, {r['ci_high']:+.{dec}f}]"
            if _finite(r["ci_low"]) and _finite(r["ci_high"])
            else "–"
        )
        sig = _finite(r["p_value"]) and r["p_value"] < 0.05
        rows.append(
            [
                Cell(str(r["task"])),
                Cell(str(r["mode"])),
                Cell(_fmt_budget(r["train_examples"])),
                Cell(str(r["metric"])),
                Cell(
                    f"{r['objective_a']} − {r['objective_b']}", color=colors.get(r["objective_a"])
                ),
                Cell(str(int(r["n_pairs"]))),
                Cell(_fmt_num(r["mean_a"], dec)),
                Cell(_fmt_num(r["mean_b"], dec)),
                Cell(f"{r['mean_diff']:+.{dec}f}" if _finite(r["mean_diff"]) else "–"),
                Cell(ci),
                Cell(_fmt_p(r["p_value"]), bold=sig),
                Cell(f"{r['d_z']:+.2f}" if _finite(r["d_z"]) else "–"),
            ]
        )
    note = ("Pairs share a pretraining seed. Δ = A − B; positive means A scores higher. "
            "Bold: p < 0.05, two-sided, uncorrected for multiple comparisons. "
            "d_z = mean(Δ) / sd(Δ); '–' where undefined (one pair, or identical differences).")  # fmt: skip
    return Table(header, rows, numeric, note)


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
                text = "–" if _isna(v) else str(v)
            cells.append(Cell(text, cls="err" if c == "error" else ""))
        rows.append(cells)
    note = ""
    if len(bad) > _MAX_LISTED_FAILURES:
        note = f"{len(bad) - _MAX_LISTED_FAILURES} more not shown; see results.csv."
    return Table(header, rows, numeric, note)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _run_counts(results: pd.DataFrame) -> str:
    status = (
        results["status"].fillna("?").astype(str).str.strip().str.lower()
        if "status" in results.columns
        else pd.Series("ok", index=results.index)
    )
    counts = status.value_counts()
    parts = [f"{counts.get('ok', 0)} ok"] + [f"{v} {k}" for k, v in counts.items() if k != "ok"]
    return f"{len(results)} probe runs: " + ", ".join(parts)


def _extra_metric_columns(results: pd.DataFrame) -> list[str]:
    return sorted(
        c
        for c in results.columns
        if c.startswith("test_")
        and c != "test_score"
        and np.isfinite(pd.to_numeric(results[c], errors="coerce")).any()
    )


def _build_doc(
    title: str,
    results: pd.DataFrame,
    curves: pd.DataFrame,
    meta: dict,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    plots: dict[str, bytes],
    colors: dict[str, str],
) -> Doc:
    doc = Doc()
    doc.h(1, title)

    # --- overview ---------------------------------------------------------------------------
    doc.h(2, "Study")
    meta_rows = [[Cell(str(k)), Cell(_fmt_meta_value(str(k), v))] for k, v in meta.items()]
    usable = st.usable_runs(results)
    extra = [
        ("runs", _run_counts(results)),
        ("objectives", ", ".join(st.objective_order(results["objective"]))),
        ("tasks", ", ".join(sorted(results["task"].astype(str).unique()))),
        ("pretraining seeds", ", ".join(str(s) for s in sorted(results["pretrain_seed"].dropna().unique()))),
        ("label budgets", ", ".join(_fmt_budget(b) for b in sorted(results["train_examples"].dropna().unique()))),
    ]  # fmt: skip
    if "wall_s" in results.columns:
        wall = pd.to_numeric(results["wall_s"], errors="coerce").sum()
        extra.append(("probe wall time (sum)", _fmt_duration(wall)))
    keys = {str(k).lower() for k in meta}
    if not keys & {"date", "created", "timestamp", "generated"}:
        extra.append(("report generated", _dt.datetime.now().strftime("%Y-%m-%d %H:%M")))
    meta_rows += [[Cell(k), Cell(v)] for k, v in extra if v]
    doc.table(Table(["key", "value"], meta_rows, [False, False]))
    if usable.empty:
        doc.p("No successful probe runs: there is nothing to summarise yet.")

    # --- summary ----------------------------------------------------------------------------
    doc.h(2, "Summary")
    doc.p(
        "Test score per objective and task: mean over pretraining seeds ± half-width of the "
        "95% Student-t confidence interval (n = number of pretraining seeds, shown when it "
        "differs from the usual count). Bold: best mean in the column."
    )
    doc.grid(_summary_tables(summary, colors))
    notes = []
    if not usable.empty and "pooling" in usable.columns:
        pools = usable.groupby([*st.GROUP_KEYS, "objective"])["pooling"].nunique()
        if (pools > 1).any():
            notes.append(
                f"{int((pools > 1).sum())} cell(s) mix several poolings; their runs are averaged "
                "per pretraining seed."
            )
    if not summary.empty and (summary["n_runs"] > summary["n"]).any():
        notes.append("Several probe runs per pretraining seed were averaged before the statistics.")
    for note in notes:
        doc.p("Note: " + note)

    # --- winners ----------------------------------------------------------------------------
    doc.h(2, "Winners")
    win = st.winners(summary)
    if win.empty:
        doc.p("No results.")
    else:
        doc.table(_winners_table(win, colors))

    # --- comparisons ------------------------------------------------------------------------
    baseline = str(meta.get("baseline", st.BASELINE))
    doc.h(2, f"Paired comparisons vs {baseline}")
    vs = (
        comparisons[comparisons["objective_b"] == baseline]
        if not comparisons.empty
        else comparisons
    )
    if vs.empty:
        doc.p(f"No '{baseline}' runs paired with another objective.")
    else:
        doc.table(_comparison_table(vs, colors))
    objs = (
        set(comparisons["objective_a"]) | set(comparisons["objective_b"])
        if not comparisons.empty
        else set()
    )
    if {"mlm", "clm"} <= objs:
        doc.h(2, "MLM vs CLM")
        mc = comparisons[
            (comparisons["objective_a"] == "mlm") & (comparisons["objective_b"] == "clm")
        ]
        doc.table(_comparison_table(mc, colors))
    doc.p("All pairwise comparisons are in comparisons.csv.")

    # --- other metrics ----------------------------------------------------------------------
    extra_cols = _extra_metric_columns(results)
    if extra_cols:
        doc.h(2, "Other test metrics")
        doc.p("Largest label budget per task and mode; mean ± 95% CI half-width.")
        for col in extra_cols:
            s = st.summarize(results, score=col)
            if s.empty:
                continue
            s = _largest_budget(s)
            n_typical = int(s["n"].mode().max())
            dec = _decimals(s["mean"])
            cols = [(t, m) for t in sorted(s["task"].unique()) for m in st.mode_order(s["mode"])
                    if ((s["task"] == t) & (s["mode"] == m)).any()]  # fmt: skip
            rows = []
            for obj in st.objective_order(s["objective"]):
                row = [Cell(obj, color=colors.get(obj))]
                for t, m in cols:
                    r = s[(s["task"] == t) & (s["mode"] == m) & (s["objective"] == obj)]
                    row.append(
                        Cell(
                            _score_text(
                                r["mean"].iloc[0],
                                r["ci_low"].iloc[0],
                                r["ci_high"].iloc[0],
                                int(r["n"].iloc[0]),
                                dec,
                                n_typical,
                            )
                        )  # fmt: skip
                        if not r.empty
                        else Cell("–")
                    )
                rows.append(row)
            doc.h(3, col.removeprefix("test_"))
            doc.table(Table(["objective"] + [f"{t} · {m}" for t, m in cols], rows,
                            [False] + [True] * len(cols)))  # fmt: skip

    # --- failures ---------------------------------------------------------------------------
    doc.h(2, "Missing or failed runs")
    bad = st.unusable_runs(results)
    if bad.empty:
        doc.p("none")
    else:
        doc.p(f"{len(bad)} run(s) excluded from the statistics:")
        doc.table(_failures_table(bad))

    # --- plots ------------------------------------------------------------------------------
    doc.h(2, "Plots")
    captions = {
        "plot_curves": "Pretraining loss curves by objective (mean over seeds, band ±1 s.d.).",
        "plot_scores": "Probe test scores at the largest label budget with 95% CIs and per-seed dots.",
        "plot_budgets": "Test score vs number of labelled training examples (band: 95% CI).",
        "plot_linear_vs_finetune": "Linear probe vs fine-tuning score per objective at the largest budget.",
    }
    if not plots:
        doc.p("No plots: no successful runs and no pretraining curves.")
    for key, png in plots.items():
        doc.img(captions[key], f"plots/{PLOT_FILES[key]}", png)
    skipped = [k for k in captions if k not in plots]
    reasons = {
        "plot_curves": "no pretraining curves",
        "plot_budgets": "only one label budget",
        "plot_linear_vs_finetune": "linear and fine-tune results are not both present",
        "plot_scores": "no successful runs",
    }
    if skipped and plots:
        doc.p("Not drawn: " + "; ".join(f"{PLOT_FILES[k]} ({reasons[k]})" for k in skipped) + ".")
    return doc


# ============================================================================ public API


def write_report(
    study_dir: Path, results: pd.DataFrame, curves: pd.DataFrame, meta: dict
) -> dict[str, Path]:
    """Write summary.csv, comparisons.csv, report.md, report.html and plots/*.png into study_dir.

    ``results`` and ``curves`` follow the study contract (see :mod:`pretrainlab.study.stats`);
    ``curves`` may be empty or None. ``meta`` is shown as a key/value table; the keys ``name``
    (or ``study``) give the title and ``baseline`` the comparison baseline (default
    ``"scratch"``). comparisons.csv holds all objective pairs (A − B, A before B in the
    canonical order, so ``X − scratch`` and ``mlm − clm``).

    Returns the written paths keyed ``summary``, ``comparisons``, ``report_md``, ``report_html``
    and, for each plot drawn, ``plot_curves``, ``plot_scores``, ``plot_budgets``,
    ``plot_linear_vs_finetune``. Plots that cannot be drawn (no curves, one budget, one mode) are
    skipped and a stale file of the same name from an earlier report is removed.
    """
    study_dir = Path(study_dir)
    meta = dict(meta or {})
    if curves is None:
        curves = pd.DataFrame(columns=["objective", "pretrain_seed", "step", "name", "value"])
    summary = st.summarize(results)
    comparisons = st.paired_comparisons(results)
    per_seed = st.per_seed_scores(results)
    all_objs = list(results["objective"].dropna().astype(str))
    if "objective" in curves.columns:
        all_objs += list(curves["objective"].dropna().astype(str))
    colors = objective_colors(all_objs)

    plots: dict[str, bytes] = {}
    for key, png in (
        ("plot_curves", _plot_curves(curves, colors)),
        ("plot_scores", _plot_scores(summary, per_seed, colors)),
        ("plot_budgets", _plot_budgets(summary, colors)),
        ("plot_linear_vs_finetune", _plot_linear_vs_finetune(summary, colors)),
    ):
        if png is not None:
            plots[key] = png

    title = str(meta.get("name") or meta.get("study") or study_dir.name or "study")
    title = f"Study report: {title}"
    doc = _build_doc(title, results, curves, meta, summary, comparisons, plots, colors)

    paths: dict[str, Path] = {}
    plot_dir = study_dir / "plots"
    for key, fname in PLOT_FILES.items():
        path = plot_dir / fname
        if key in plots:
            atomic_write_bytes(path, plots[key])
            paths[key] = path
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    paths["summary"] = study_dir / "summary.csv"
    atomic_write_text(paths["summary"], summary.to_csv(index=False))
    paths["comparisons"] = study_dir / "comparisons.csv"
    atomic_write_text(paths["comparisons"], comparisons.to_csv(index=False))
    paths["report_md"] = study_dir / "report.md"
    atomic_write_text(paths["report_md"], render_markdown(doc))
    paths["report_html"] = study_dir / "report.html"
    atomic_write_text(paths["report_html"], render_html(doc, title))
    return paths


def print_summary(summary: pd.DataFrame, console: Any = None) -> None:
    """Print the summary with rich: one table per (mode, budget), objectives x tasks, "mean ± ci".

    ``console`` is an optional :class:`rich.console.Console` (a new one writing to stdout by
    default). The best mean per task column is bold.
    """
    from rich.console import Console
    from rich.table import Table as RichTable

    console = console or Console()
    if summary is None or summary.empty:
        console.print("[bold]No successful probe runs to summarise.[/bold]")
        return
    for heading, table in _summary_tables(summary, objective_colors(summary["objective"])):
        rt = RichTable(title=heading, title_justify="left", header_style="bold")
        for h, num in zip(table.header, table.numeric, strict=True):
            rt.add_column(h, justify="right" if num else "left")
        for row in table.rows:
            rt.add_row(
                *[
                    f"[bold]{_rich_escape(c.text)}[/bold]" if c.bold else _rich_escape(c.text)
                    for c in row
                ]
            )
        console.print(rt)


def _rich_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
