"""The human-readable report of a study: CSV tables, Markdown, self-contained HTML, PNG plots.

:func:`write_report` is the entry point. Every file is written atomically (temporary file in the
same folder, then :func:`os.replace`), plots first, so a report never references a missing
image. The plots are drawn by :mod:`pretrainlab.study.plots`; the tables, Markdown and HTML come
from :mod:`pretrainlab.study.render`.

Statistics come from :mod:`pretrainlab.study.stats`; see its docstring for what counts as a
usable run and how seeds are paired.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pretrainlab.io import atomic_write_bytes, atomic_write_text
from pretrainlab.study import controls as ctl
from pretrainlab.study import curve as cv
from pretrainlab.study import stats as st
from pretrainlab.study import verdict as vd
from pretrainlab.study.budgets import split_arm
from pretrainlab.study.plots import (
    _FIXED_COLORS,
    PLOT_FILES,
    _largest_budget,
    _study_colors,
    draw_plots,
    objective_colors,
)
from pretrainlab.study.render import (
    Cell,
    Doc,
    Table,
    _decimals,
    _fmt_budget,
    _fmt_duration,
    _fmt_meta_value,
    _score_text,
    render_html,
    render_markdown,
)
from pretrainlab.study.tables import (
    _comparison_table,
    _failures_table,
    _summary_tables,
    _variance_table,
    _winners_table,
)

# ============================================================================ the document


def _job_rows(results: pd.DataFrame) -> pd.DataFrame:
    """One row per probe job (a job's subset rows repeat its status and wall time)."""
    if "subset" not in results.columns:
        return results
    return results[results["subset"].fillna("").astype(str) == ""]


def _run_counts(results: pd.DataFrame) -> str:
    results = _job_rows(results)
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
    meta: dict,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    plots: dict[str, bytes],
    colors: dict[str, str],
    controls: pd.DataFrame | None = None,
    twins: pd.DataFrame | None = None,
) -> Doc:
    doc = Doc()
    doc.h(1, title)
    doc.h(2, "Answer")  # the question answered from the corrected tests, before any table
    for paragraph in vd.answer(meta.get("question"), comparisons, twins):
        doc.p(paragraph)
    if controls is not None and not controls.empty:  # the calibration verdict comes first
        doc.h(2, "Controls: did the benchmark behave as theory predicts?")
        for sentence in ctl.sentences(controls):
            doc.p(sentence)

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
        wall = pd.to_numeric(_job_rows(results)["wall_s"], errors="coerce").sum()
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
    win = vd.winners(summary, comparisons)
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
    between = (
        comparisons[comparisons["objective_b"] != baseline]
        if not comparisons.empty
        else comparisons
    )
    if not between.empty:  # the pretrained arms against each other (A before B in display order)
        doc.h(2, "Between objectives")
        doc.table(_comparison_table(between, colors))
    doc.p("All pairwise comparisons are in comparisons.csv.")
    _twin_section(doc, twins, colors)
    _variance_section(doc, summary, colors)
    _mdl_section(doc, results, colors)

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


def _twin_section(doc: Doc, twins: pd.DataFrame | None, colors: dict[str, str]) -> None:
    if twins is None or twins.empty:
        return
    doc.h(2, "Negative control: an arm against its twin")
    doc.p(vd.false_positive_rate(twins) or "No twin comparison could be tested.")
    doc.table(_comparison_table(twins, colors))


def _variance_section(doc: Doc, summary: pd.DataFrame, colors: dict[str, str]) -> None:
    doc.h(2, "Variance by source")
    separable = (
        summary[np.isfinite(summary["var_probe"].astype(float))] if not summary.empty else summary
    )
    if separable.empty:
        doc.p(
            "Not separable: each pretraining run was probed once, with its own seed, so the "
            "spread between seeds mixes pretraining and probe variance. Set study.probe_seeds "
            "(e.g. [0,1]) to probe every run several times and split the two."
        )
        return
    doc.table(_variance_table(separable, colors))


def _mdl_section(doc: Doc, results: pd.DataFrame, colors: dict[str, str]) -> None:
    """Online code length of the linear probes' training labels (probes/mdl.py)."""
    if "mdl_bits" not in results.columns:
        return
    rows = _job_rows(results)
    mdl = st.summarize(
        rows[np.isfinite(pd.to_numeric(rows["mdl_bits"], errors="coerce"))], score="mdl_bits"
    )
    if mdl.empty:
        return
    doc.h(2, "MDL: online code length of the probe's labels")
    doc.p(
        "Bits to transmit the training labels with a linear probe trained online on the "
        "frozen features (Voita & Titov 2020): lower means the features make the labels easier "
        "to learn from few examples, which accuracy alone does not show. Mean ± 95% CI over "
        "pretraining seeds."
    )
    doc.grid(_summary_tables(mdl, colors))


# ============================================================================ public API


def _base_colors(curve: pd.DataFrame, colors: dict[str, str]) -> dict[str, str]:
    """An objective's colour on the budget curve: that of its first budget's arm."""
    out = {}
    for name, color in colors.items():
        base = split_arm(name)[0]
        if base in set(curve["objective"]) and base not in out:
            out[base] = _FIXED_COLORS.get(base, color)
    return out


def write_report(
    study_dir: Path,
    results: pd.DataFrame,
    curves: pd.DataFrame,
    meta: dict,
    controls: pd.DataFrame | None = None,
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
    summary = st.summarize(results)
    comparisons = st.paired_comparisons(results)
    twins = vd.twin_comparisons(results) if "pairs_with" in results.columns else None
    colors = _study_colors(results, curves)
    plots = draw_plots(results, curves)

    title = str(meta.get("name") or meta.get("study") or study_dir.name or "study")
    title = f"Study report: {title}"
    doc = _build_doc(title, results, meta, summary, comparisons, plots, colors, controls, twins)
    paths: dict[str, Path] = {}
    curve = cv.budget_curve(results, comparisons)
    if not curve.empty:  # a budget axis: its section goes before the study's overview
        cross = cv.crossovers(curve)
        png = cv.plot_curve(curve, {**colors, **_base_colors(curve, colors)})
        at = next(i for i, b in enumerate(doc.blocks) if b.kind == "h2" and b.text == "Study")
        doc.blocks[at:at] = cv.section(curve, cross, png).blocks
        for key, frame in (("budget_curve", curve), ("crossovers", cross)):
            paths[key] = study_dir / f"{key}.csv"
            atomic_write_text(paths[key], frame.to_csv(index=False))
        if png is not None:
            paths["plot_budget_curve"] = study_dir / "plots" / "budget_curve.png"
            atomic_write_bytes(paths["plot_budget_curve"], png)
    plot_dir = study_dir / "plots"
    for key, fname in PLOT_FILES.items():
        path = plot_dir / fname
        if key in plots:
            atomic_write_bytes(path, plots[key])
            paths[key] = path
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if controls is not None:
        paths["controls"] = study_dir / "controls.csv"
        atomic_write_text(paths["controls"], controls.to_csv(index=False))
    paths["summary"] = study_dir / "summary.csv"
    atomic_write_text(paths["summary"], summary.to_csv(index=False))
    paths["comparisons"] = study_dir / "comparisons.csv"
    atomic_write_text(paths["comparisons"], comparisons.to_csv(index=False))
    if twins is not None and not twins.empty:
        paths["twin_comparisons"] = study_dir / "twin_comparisons.csv"
        atomic_write_text(paths["twin_comparisons"], twins.to_csv(index=False))
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

    # a pipe or a CI log has no width: rich would assume 80 columns and cut the task headers
    console = console or Console(width=None if sys.stdout.isatty() else 160)
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
