"""Text for the study report: number formatting and the document model (:class:`Doc` of
headings, paragraphs, tables and images) rendered as Markdown or self-contained HTML. The tables
built from the statistics are in :mod:`pretrainlab.study.tables`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2

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


@functools.cache
def _templates() -> jinja2.Environment:
    """The report templates shipped in ``study/templates/`` (package data), autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pretrainlab.study", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals.update(zip=zip, b64=lambda data: base64.b64encode(data).decode("ascii"))
    return env


def render_html(doc: Doc, title: str) -> str:
    """``doc`` as one self-contained HTML page (styles inline, images as data URIs)."""
    return _templates().get_template("report.html.j2").render(title=title, blocks=doc.blocks)
