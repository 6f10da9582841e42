"""Controls: a declared prediction is evaluated with paired differences over pretraining seeds
and reported in plain words; bad declarations stop before any work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pretrainlab.errors import PretrainlabError
from pretrainlab.study.collect import subset_rows
from pretrainlab.study.controls import Control, evaluate, parse_controls, sentences


def _results(scores: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [
        {"objective": arm, "pretrain_seed": seed, "task": task, "mode": "linear",
         "train_examples": 100, "metric": "accuracy", "test_score": v, "status": "ok"}
        for (arm, task), values in scores.items()
        for seed, v in enumerate(values)
    ]  # fmt: skip
    return pd.DataFrame(rows)


RESULTS = _results(
    {
        ("mlm", "lex:heldout"): [0.90, 0.92, 0.95],
        ("scratch", "lex:heldout"): [0.10, 0.12, 0.09],
        ("mlm", "lex:seen"): [0.95, 0.96, 0.97],
        ("scratch", "lex:seen"): [0.94, 0.97, 0.95],
        ("clm", "lex:heldout"): [0.11, 0.10, 0.12],
    }
)


def test_positive_negative_and_difference_of_differences():
    controls = [
        Control("transfer", "lex:heldout", "mlm", "scratch"),
        Control("clm transfer", "lex:heldout", "clm", "scratch"),
        Control("seen", "lex:seen", "mlm", "scratch", expect="none"),
        Control("gap", "lex:heldout", "mlm", "scratch", versus="lex:seen"),
    ]
    table = evaluate(controls, RESULTS).set_index("control")
    assert table.loc["transfer", "came_out"] and table.loc["transfer", "n_pairs"] == 3
    assert table.loc["transfer", "mean_diff"] == pytest.approx(0.82, abs=1e-9)
    assert not table.loc["clm transfer", "came_out"]  # CI of ~0 holds 0: not above it
    assert table.loc["seen", "came_out"]
    assert table.loc["gap", "came_out"] and table.loc["gap", "mean_diff"] > 0.8
    words = sentences(evaluate(controls, RESULTS))
    assert any("clm transfer" in w and "did NOT come out" in w for w in words)
    assert any("transfer (positive control" in w and "came out as predicted" in w for w in words)


def test_positive_controls_get_p_values_holm_corrected_as_one_family():
    controls = [
        Control("transfer", "lex:heldout", "mlm", "scratch"),
        Control("clm transfer", "lex:heldout", "clm", "scratch"),
        Control("seen", "lex:seen", "mlm", "scratch", expect="none"),
    ]
    table = evaluate(controls, RESULTS).set_index("control")
    by_hand = {  # paired t by hand: t = mean / (sd / sqrt(n)), df = n - 1, two-sided
        name: 2 * stats.t.sf(abs(d.mean() / (d.std(ddof=1) / np.sqrt(3))), 2)
        for name, d in {
            "transfer": np.array([0.80, 0.80, 0.86]),
            "clm transfer": np.array([0.01, -0.02, 0.03]),
        }.items()
    }
    for name, p in by_hand.items():
        assert table.loc[name, "p"] == pytest.approx(p, rel=1e-6)
    low, high = sorted(by_hand.values())  # Holm over the two positive controls
    holm = {
        min(by_hand, key=by_hand.get): 2 * low,
        max(by_hand, key=by_hand.get): max(2 * low, high),
    }
    for name, p in holm.items():
        assert table.loc[name, "p_holm"] == pytest.approx(min(p, 1.0), rel=1e-6)
    assert np.isnan(table.loc["seen", "p"]) and np.isnan(table.loc["seen", "p_holm"])
    words = sentences(evaluate(controls, RESULTS))
    assert any(w.startswith("transfer (") and "Holm over the positive controls" in w for w in words)
    assert not any(w.startswith("seen (") and "Holm" in w for w in words)


def test_a_retired_control_is_reported_with_its_reason_but_leaves_the_family():
    live = [Control("transfer", "lex:heldout", "mlm", "scratch")]
    retired = Control("clm transfer", "lex:heldout", "clm", "scratch", retired="no theory says so")
    alone = evaluate(live, RESULTS).set_index("control")
    table = evaluate([*live, retired], RESULTS).set_index("control")
    row = table.loc["clm transfer"]
    assert row["kind"] == "retired" and np.isnan(row["p"]) and np.isnan(row["p_holm"])
    assert row["verdict"].startswith("retired (no theory says so); measured: did NOT come out")
    assert row["mean_diff"] == pytest.approx(np.mean([0.01, -0.02, 0.03]))  # still measured
    # the live control's Holm family is itself alone, as if the retired one were not declared
    assert table.loc["transfer", "p_holm"] == pytest.approx(alone.loc["transfer", "p_holm"])
    words = sentences(evaluate([*live, retired], RESULTS))
    assert any(w.startswith("clm transfer (retired control;") and "Holm" not in w for w in words)


def test_one_seed_is_undecided():
    table = evaluate(
        [Control("t", "lex:heldout", "mlm", "scratch")], RESULTS[RESULTS.pretrain_seed == 0]
    )
    assert table.came_out.isna().all() and "undecided" in table.verdict.iloc[0]


def test_a_control_holds_in_the_modes_it_names_only():
    both = pd.concat([RESULTS, RESULTS.assign(mode="finetune")], ignore_index=True)
    every, linear = parse_controls(
        [
            {"name": "every", "task": "lex:heldout", "better": "mlm", "than": "scratch"},
            {"name": "linear", "task": "lex:heldout", "better": "mlm", "than": "scratch",
             "modes": ["linear"]},
        ]
    )  # fmt: skip
    assert sorted(evaluate([every], both)["mode"]) == ["finetune", "linear"]
    assert list(evaluate([linear], both)["mode"]) == ["linear"]


@pytest.mark.parametrize(
    "entry", [{"name": "x", "task": "t", "better": "a"}, {"name": "x", "task": "t", "better": "a",
              "than": "b", "expect": "bigger"}, {"name": "x", "task": "t", "better": "a", "than": "b",
              "typo": 1}, {"name": "x", "task": "t", "better": "a", "than": "b", "modes": "linear"},
              {"name": "x", "task": "t", "better": "a", "than": "b", "modes": []},
              {"name": "x", "task": "t", "better": "a", "than": "b", "retired": " "}],
)  # fmt: skip
def test_bad_control_declarations(entry):
    with pytest.raises(PretrainlabError, match="study.controls"):
        parse_controls([entry])


def test_subset_rows_follow_the_primary_metric():
    row = {"task": "lexical", "dev_score": 0.5, "test_score": 0.6, "subset": ""}
    result = {
        "metric": "accuracy",
        "dev": {"accuracy": 0.5, "accuracy_heldout_words": 0.3},
        "test": {"accuracy": 0.6, "macro_f1": 0.6, "accuracy_heldout_words": 0.2,
                 "accuracy_seen_words": 0.9},
    }  # fmt: skip
    rows = {r["task"]: r for r in subset_rows(row, result)}
    assert set(rows) == {"lexical:heldout_words", "lexical:seen_words"}
    assert rows["lexical:heldout_words"]["test_score"] == 0.2
    assert rows["lexical:heldout_words"]["dev_score"] == 0.3
    assert rows["lexical:seen_words"]["subset"] == "seen_words"


def test_the_report_opens_with_the_controls(tmp_path):
    from pretrainlab.study.report import write_report

    controls = [Control("transfer", "lex:heldout", "mlm", "scratch")]
    paths = write_report(tmp_path, RESULTS, None, {"name": "c"}, evaluate(controls, RESULTS))
    md = paths["report_md"].read_text()
    assert md.index("Controls: did the benchmark behave") < md.index("## Summary")
    assert "transfer (positive control; mlm - scratch on lex:heldout > 0)" in md
    assert "came out as predicted" in md
    assert (tmp_path / "controls.csv").read_text().count("transfer") == 1
