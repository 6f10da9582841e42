"""Text for the study report: number formatting and the document model (:class:`Doc` of
headings, paragraphs, tables and images) rendered as Markdown or self-contained HTML. The tables
built from the statistics are in :mod:`pretrainlab.study.tables`.
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
