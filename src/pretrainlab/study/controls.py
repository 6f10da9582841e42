"""A study's calibration: the controls its experiment declares, each a prediction theory makes,
evaluated with paired differences over pretraining seeds and stated in plain words.

A control names two arms and a task (a subset task such as ``lexical:heldout_words`` counts):

- ``expect: greater`` (a positive control): ``better`` scores above ``than``; it came out when
  the 95% interval of the paired difference lies above 0.
- ``expect: none`` (a negative control): no difference; it came out when the interval holds 0.
- ``modes: [linear]``: the probe modes the prediction is made for (default: every mode).
- ``versus: TASK2``: the prediction is about a difference of differences, ``(better - than on
  task) - (better - than on versus)``, e.g. MLM's lead over CLM is larger where the answer
  needs right context than where it does not.
- ``retired: WHY``: a control found, with measurements, to test a prediction theory does not
  make (e.g. one written for a setting its source paper never trains). It is still evaluated
  and printed with its reason and its measured verdict, so the record stays in the report, but
  it leaves the calibration's family: no p, no part of the Holm adjustment.

Each control is evaluated in every (mode, label budget) cell of the results holding its task.
Each positive control also gets its paired t-test's p-value and a Holm-adjusted one over the
study's positive controls (the family a reader checks together: the study's calibration), so a
control that came out can be read after correction too; a negative control has neither (its
verdict asks whether the interval holds 0, not whether a difference is significant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats as sps

from pretrainlab.errors import PretrainlabError
from pretrainlab.study import stats as st
from pretrainlab.study.inference import holm

EXPECTATIONS = ("greater", "none")
COLUMNS = [
    "control", "kind", "claim", "task", "mode", "train_examples", "n_pairs", "mean_diff",
    "ci_low", "ci_high", "p", "p_holm", "came_out", "verdict",
]  # fmt: skip


@dataclass(frozen=True)
class Control:
    name: str
    task: str
    better: str
    than: str
    expect: str = "greater"
    versus: str | None = None
    modes: list[str] | None = None  # the probe modes it predicts for (None: every mode)
    retired: str | None = None  # why the prediction was withdrawn (None: a live control)

    def __post_init__(self) -> None:
        if self.expect not in EXPECTATIONS:
            raise PretrainlabError(
                f"study.controls: {self.name!r} has expect={self.expect!r}; expected one of "
                f"{', '.join(EXPECTATIONS)} (greater: a positive control, none: a negative one)."
            )
        if self.modes is not None and (
            isinstance(self.modes, str) or not self.modes or not all(self.modes)
        ):
            raise PretrainlabError(
                f"study.controls: {self.name!r} has modes={self.modes!r}; expected a non-empty "
                "list of probe modes (e.g. [linear]), or no modes key for every mode."
            )
        if self.retired is not None and not (
            isinstance(self.retired, str) and self.retired.strip()
        ):
            raise PretrainlabError(
                f"study.controls: {self.name!r} has retired={self.retired!r}; expected a sentence "
                "saying why the prediction was withdrawn, or no retired key for a live control."
            )

    @property
    def kind(self) -> str:
        if self.retired:
            return "retired"
        return "positive" if self.expect == "greater" else "negative"

    @property
    def claim(self) -> str:
        gap = f"{self.better} - {self.than} on {self.task}"
        if self.versus:
            gap = f"({gap}) - ({self.better} - {self.than} on {self.versus})"
        return f"{gap} {'> 0' if self.expect == 'greater' else '= 0'}"


def parse_controls(entries: list[dict] | None) -> list[Control]:
    """``study.controls`` (a list of mappings) -> controls, each checked before any work."""
    out = []
    for i, entry in enumerate(entries or []):
        try:
            out.append(Control(**dict(entry)))
        except TypeError as err:
            raise PretrainlabError(
                f"study.controls[{i}]={dict(entry)!r} is not valid ({err}): expected name, task, "
                "better, than, and optionally expect (greater | none), versus (a task), modes "
                "(the probe modes it predicts for) and retired (why it was withdrawn)."
            ) from None
    return out


def _gaps(per_seed: pd.DataFrame, c: Control, task: str, mode: str, budget: int) -> pd.Series:
    cell = per_seed[
        (per_seed.task == task) & (per_seed["mode"] == mode) & (per_seed.train_examples == budget)
    ]
    wide = cell.pivot_table(index="pretrain_seed", columns="objective", values="value")
    if c.better not in wide or c.than not in wide:
        return pd.Series(dtype=float)
    return (wide[c.better] - wide[c.than]).dropna()


def _verdict(c: Control, lo: float, hi: float) -> tuple[bool | None, str]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None, "undecided (fewer than 2 pretraining seeds)"
    if lo == hi:  # every seed gave the same difference: no spread to test against
        return None, "undecided (identical differences on every seed: no variance to test)"
    if c.expect == "greater":
        ok = lo > 0
        return ok, "came out as predicted" if ok else "did NOT come out"
    ok = lo <= 0 <= hi
    return ok, "came out as predicted (no difference)" if ok else "did NOT come out"


def evaluate(controls: list[Control], results: pd.DataFrame) -> pd.DataFrame:
    """One row per control x (mode, budget) cell: paired difference, 95% t interval, verdict."""
    per_seed = st.per_seed_scores(results)
    rows = []
    for c in controls:
        cells = per_seed[per_seed.task == c.task][["mode", "train_examples"]].drop_duplicates()
        if c.modes is not None:
            cells = cells[cells["mode"].isin(c.modes)]
        for mode, budget in cells.itertuples(index=False):
            d = _gaps(per_seed, c, c.task, mode, budget)
            if c.versus:
                d = (d - _gaps(per_seed, c, c.versus, mode, budget)).dropna()
            mean, _, n, lo, hi = st.mean_ci(d)
            came_out, verdict = _verdict(c, lo, hi)
            if c.retired:
                verdict = f"retired ({c.retired}); measured: {verdict}"
            p = _p_value(d) if c.kind == "positive" and came_out is not None else math.nan
            rows.append([c.name, c.kind, c.claim, c.task, mode, budget, n, mean, lo, hi, p,
                         math.nan, came_out, verdict])  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["p_holm"] = holm(table["p"].to_numpy(float))[0]  # NaN rows stay NaN, out of the family
    return table


def _p_value(d: pd.Series) -> float:
    """Two-sided p of the paired t-test (scipy) that the mean difference is 0."""
    return float(sps.ttest_1samp(d.to_numpy(float), 0.0).pvalue)


def sentences(table: pd.DataFrame) -> list[str]:
    """The controls in plain words, one sentence per evaluated cell."""
    out = []
    for r in table.itertuples(index=False):
        out.append(
            f"{r.control} ({r.kind} control; {r.claim}), {r.mode} @ {r.train_examples} labels: "
            f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] over {r.n_pairs} "
            f"pretraining seeds: {r.verdict}{_p_words(r.p, r.p_holm)}."
        )
    return out


def _p_words(p: float, p_holm: float) -> str:
    if not math.isfinite(p):
        return ""
    return f" (p {p:.2g}; Holm over the positive controls {p_holm:.2g})"
