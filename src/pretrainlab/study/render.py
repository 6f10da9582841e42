"""Text for the study report: number formatting, the document model (:class:`Doc` of headings,
paragraphs, tables and images) rendered as Markdown or self-contained HTML, and the tables built
from the statistics of :mod:`pretrainlab.study.stats`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pretrainlab.study import stats as st

_MAX_LISTED_FAILURES = 200


# ============================================================================ number formatting


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


# ============================================================================ stats tables


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


def _winners_table(win: pd.DataFrame, colors: dict[str, str]) -> Table:
    header = ["task", "mode", "examples", "metric", "best", "mean ± CI", "runner-up", "mean ± CI",
              "margin", "verdict"]  # fmt: skip
    numeric = [False, False, True, False, False, True, False, True, True, False]
    rows = []
    for _, r in win.iterrows():
        dec = _decimals([r["best_mean"]])  # per row: accuracies and QA F1 differ in scale
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
    rows = []
    for _, r in cmp.iterrows():
        dec = _decimals([r["mean_a"], r["mean_b"]])  # per row, as in the winners table
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
