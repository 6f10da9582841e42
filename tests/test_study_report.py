"""The study report: files written, self-contained HTML, failures listed, edge cases."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pretrainlab.study.report import PLOT_FILES, print_summary, write_report
from pretrainlab.study.stats import summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OOM = "RuntimeError: CUDA out of memory | tried 2 GiB"


def make_results(objectives=("mlm", "clm", "scratch"), seeds=(0, 1, 2), tasks=("sst2", "conll"),
                 modes=("linear", "finetune"), budgets=(100, 1000)) -> pd.DataFrame:  # fmt: skip
    rng = np.random.default_rng(0)
    base = {"mlm": 0.80, "clm": 0.76, "scratch": 0.60}
    rows = []
    for obj in objectives:
        for s in seeds:
            for task in tasks:
                for mode in modes:
                    for n in budgets:
                        score = base.get(obj, 0.7) + 0.02 * np.log10(n) + rng.normal(0, 0.01)
                        rows.append(
                            {
                                "objective": obj, "pretrain_seed": s, "seed": s, "task": task,
                                "mode": mode, "pooling": "mean", "train_examples": n,
                                "metric": "f1" if task == "conll" else "accuracy",
                                "dev_score": score, "test_score": score, "test_mcc": 2 * score - 1,
                                "wall_s": 10.0, "status": "ok", "error": "", "run_dir": f"r/{obj}/{s}",
                            }
                        )  # fmt: skip
    return pd.DataFrame(rows)


def make_curves(objectives=("mlm", "clm"), seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for obj in objectives:
        for s in seeds:
            for step in range(0, 1001, 100):
                loss = 3 + 5 * np.exp(-step / 300) + 0.05 * s
                rows.append(
                    {
                        "objective": obj,
                        "pretrain_seed": s,
                        "step": step,
                        "name": "train/loss",
                        "value": loss,
                    }
                )
                rows.append(
                    {
                        "objective": obj,
                        "pretrain_seed": s,
                        "step": step,
                        "name": "val/loss",
                        "value": loss + 0.1,
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    results = make_results()
    results.loc[0, ["status", "error", "test_score"]] = ["failed", OOM, np.nan]
    results.loc[5, ["status", "error", "test_score"]] = ["missing", "", np.nan]
    study = tmp_path_factory.mktemp("study")
    meta = {"name": "unit-study", "git_commit": "abc1234", "seeds": [0, 1, 2], "wall_s": 3725.0}
    paths = write_report(study, results, make_curves(), meta)
    return study, results, paths


def test_report_writes_all_files(full_report):
    study, _, paths = full_report
    for key in ("summary", "comparisons", "report_md", "report_html", *PLOT_FILES):
        assert key in paths, key
        assert paths[key].exists() and paths[key].stat().st_size > 0
    for key, fname in PLOT_FILES.items():
        assert paths[key] == study / "plots" / fname
        assert paths[key].read_bytes()[:8] == PNG_MAGIC
    assert not [
        p for p in study.rglob("*") if p.name.endswith(".tmp")
    ]  # atomic writes left nothing


def test_csv_contents(full_report):
    study, results, _ = full_report
    s = pd.read_csv(study / "summary.csv")
    assert list(s.columns) == [
        "task", "mode", "train_examples", "objective", "metric", "n", "n_runs", "mean", "std",
        "ci_low", "ci_high", "n_probe", "var_pretrain", "var_probe",
    ]  # fmt: skip
    assert len(s) == 3 * 2 * 2 * 2
    # the failed (row 0) and missing (row 5) runs are excluded: their cells have n == 2
    for i in (0, 5):
        r = results.loc[i]
        cell = s[(s.task == r.task) & (s["mode"] == r["mode"]) & (s.train_examples == r.train_examples)
                 & (s.objective == r.objective)]  # fmt: skip
        assert cell["n"].item() == 2
    assert (s["n"] == 3).sum() == len(s) - 2
    c = pd.read_csv(study / "comparisons.csv")
    assert {
        "objective_a",
        "objective_b",
        "n_pairs",
        "mean_diff",
        "ci_low",
        "ci_high",
        "p_value",
        "d_z",
        "p_holm",
        "significant",
        "mde",
        "ci_bootstrap_lo",
        "ci_bootstrap_hi",
    } <= set(c.columns)
    assert len(c) == 2 * 2 * 2 * 3  # 3 pairs of 3 objectives per cell
    tested = c[c["p_value"].notna()]
    assert tested["p_holm"].notna().all() and tested["mde"].notna().all()
    assert (tested["p_holm"] >= tested["p_value"]).all()


def test_markdown_sections_failures_and_plot_links(full_report):
    study, _, _ = full_report
    md = (study / "report.md").read_text()
    for heading in ("# Study report: unit-study", "## Answer", "## Variance by source", "## Summary", "## Winners", "## Paired comparisons vs scratch",
                    "## Between objectives", "## Missing or failed runs", "## Plots"):  # fmt: skip
        assert heading in md, heading
    assert "abc1234" in md and "1h 02m 05s" in md
    assert "CUDA out of memory \\| tried 2 GiB" in md  # pipe escaped inside the table
    assert "| missing |" in md
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert not link.startswith(("/", "http")) and (study / link).exists(), link
    assert len(re.findall(r"!\[", md)) == 4
    assert "mlm − scratch" in md and "mlm − clm" in md


def test_html_is_self_contained(full_report):
    study, _, _ = full_report
    doc = (study / "report.html").read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", doc, flags=re.I)
    imgs = re.findall(r"<img\b", doc)
    assert len(imgs) == 4
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), refs[:3]
    assert (
        "<script" not in doc and "<link" not in doc and "@import" not in doc and "url(" not in doc
    )
    assert "CUDA out of memory | tried 2 GiB" in doc  # failure listed with its error
    assert 'class="num best"' in doc  # best value per column is bold
    assert "<style>" in doc and "text-align: right" in doc


def test_single_seed_single_budget_single_mode(tmp_path):
    """n == 1 everywhere: no crash, NaN intervals, budget and linear-vs-finetune plots skipped."""
    study = tmp_path / "s"
    stale = study / "plots" / PLOT_FILES["plot_budgets"]
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    results = make_results(seeds=(0,), tasks=("sst2",), modes=("linear",), budgets=(100,))
    paths = write_report(study, results, pd.DataFrame(), {})
    assert set(paths) == {"summary", "comparisons", "report_md", "report_html", "plot_scores"}
    assert not stale.exists()
    s = pd.read_csv(paths["summary"])
    assert s["n"].eq(1).all() and s["ci_low"].isna().all()
    md = paths["report_md"].read_text()
    assert "(n=1)" in md and "## Missing or failed runs\n\nnone" in md
    c = pd.read_csv(paths["comparisons"])
    assert c["n_pairs"].eq(1).all() and c["p_value"].isna().all()


def test_all_runs_failed_still_reports(tmp_path):
    results = make_results(
        objectives=("mlm",), seeds=(0,), tasks=("sst2",), modes=("linear",), budgets=(100,)
    )
    results["status"] = "failed"
    results["error"] = "boom"
    paths = write_report(tmp_path, results, make_curves(objectives=("mlm",)), {"name": "broken"})
    md = paths["report_md"].read_text()
    assert "No successful probe runs" in md and "boom" in md
    assert set(paths) >= {"summary", "comparisons", "report_md", "report_html", "plot_curves"}
    assert "plot_scores" not in paths


def test_print_summary_uses_rich_table():
    from rich.console import Console

    buf = io.StringIO()
    print_summary(
        summarize(make_results()), console=Console(file=buf, width=150, color_system=None)
    )
    out = buf.getvalue()
    assert "±" in out and "sst2 (accuracy)" in out and "conll (f1)" in out
    assert "linear · 100 training examples" in out
    lines = [ln for ln in out.splitlines() if "scratch" in ln]
    assert len(lines) == 4  # one row per (mode, budget) table
    buf = io.StringIO()
    print_summary(summarize(make_results().iloc[:0]), console=Console(file=buf))
    assert "No successful" in buf.getvalue()


def test_report_rejects_results_without_scores(tmp_path):
    from pretrainlab.errors import PretrainlabError

    with pytest.raises(PretrainlabError):
        write_report(
            tmp_path, pd.DataFrame({"objective": ["mlm"], "task": ["x"]}), pd.DataFrame(), {}
        )
    assert not (tmp_path / "report.html").exists()


def test_colours_are_consistent(full_report):
    from pretrainlab.study.report import objective_colors

    assert objective_colors(["scratch", "mlm"])["scratch"] == "#7f7f7f"
    assert objective_colors(["mlm"])["mlm"] == objective_colors(["clm", "mlm", "foo"])["mlm"]
    study, _, _ = full_report
    assert Path(study / "report.html").read_text().count("background:#7f7f7f") > 0


def test_a_study_whose_every_probe_failed_reports_the_failures(tmp_path):
    """Read back from run folders (not a hand-made frame): with no finished probe the results
    still carry the outcome columns, and the report lists the error."""
    from pretrainlab.io import atomic_write_json
    from pretrainlab.study.collect import load_study
    from pretrainlab.study.plan import Job

    jobs = [
        Job(0, "pretrain", "mlm", 0, [], "pretrain/mlm-s0-x"),
        Job(1, "probe", "mlm", 0, [], "probe/mlm-s0/facts-x", "facts", "zeroshot", 0,
            needs="pretrain/mlm-s0-x"),
    ]  # fmt: skip
    atomic_write_json(
        tmp_path / "plan.json", {"study": "broken", "jobs": [j.to_dict() for j in jobs]}
    )
    (tmp_path / "probe/mlm-s0/facts-x").mkdir(parents=True)
    atomic_write_json(tmp_path / "probe/mlm-s0/facts-x/error.json", {"error": "no hf/ here"})
    results, curves = load_study(tmp_path)
    assert list(results["status"]) == ["failed"] and results["test_score"].isna().all()
    md = write_report(tmp_path, results, curves, {"name": "broken"})["report_md"].read_text()
    assert "No successful probe runs" in md and "no hf/ here" in md
    assert summarize(results).empty
