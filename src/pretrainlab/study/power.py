"""``pretrainlab power STUDY_DIR --effect 0.02``: for every paired comparison of a finished (or
partial) study, the minimum detectable effect at its observed spread and seed count, and the
pretraining seeds a paired t-test needs to detect the named effect (:mod:`.inference`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from pretrainlab.cli import user_errors
from pretrainlab.errors import PretrainlabError
from pretrainlab.study import inference as inf
from pretrainlab.study import stats as st
from pretrainlab.study.collect import load_study


def power_table(
    results: pd.DataFrame, effect: float, alpha: float = inf.ALPHA, power: float = inf.POWER
) -> pd.DataFrame:
    """One row per testable comparison: n, sd of the paired differences, the observed mean
    difference, the MDE at this n, and the seeds needed for ``effect`` (in the metric's unit)."""
    cmp = st.paired_comparisons(results)
    cmp = cmp[cmp["n_pairs"] >= 2] if not cmp.empty else cmp
    rows = []
    for _, r in cmp.iterrows():
        sd = float(r["std_diff"])
        rows.append(
            {
                "task": r["task"],
                "mode": r["mode"],
                "examples": r["train_examples"],
                "comparison": f"{r['objective_a']} - {r['objective_b']}",
                "n": int(r["n_pairs"]),
                "sd_diff": sd,
                "mean_diff": float(r["mean_diff"]),
                "mde": inf.mde(sd, int(r["n_pairs"]), alpha, power),
                "seeds_needed": inf.seeds_needed(effect, sd, alpha, power),
            }
        )
    return pd.DataFrame(rows)


def _check(study_dir: Path, effect: float, alpha: float, power: float) -> pd.DataFrame:
    if not math.isfinite(effect) or effect <= 0:
        raise PretrainlabError(
            f"--effect {effect!r} is not valid: expected the difference you want to detect, a "
            "positive number in the metric's unit (e.g. 0.02 for two accuracy points, 2 for two "
            "F1 points)."
        )
    for name, value in (("--alpha", alpha), ("--power", power)):
        if not 0 < value < 1:
            raise PretrainlabError(f"{name} {value!r} is not valid: expected a number in (0, 1).")
    results, _ = load_study(study_dir)
    if results.empty or not (results["status"] == "ok").any():
        raise PretrainlabError(f"{study_dir} has no finished probe runs yet: nothing to size.")
    if results.loc[results["status"] == "ok", "pretrain_seed"].nunique() < 2:
        raise PretrainlabError(
            f"{study_dir} has one pretraining seed: with no spread between seeds there is no "
            "variance to size a test on. Run at least two (study.pretrain_seeds=[0,1]) first."
        )
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pretrainlab power", description=__doc__)
    p.add_argument("study_dir", type=Path)
    p.add_argument("--effect", type=float, required=True, help="difference to detect")
    p.add_argument("--alpha", type=float, default=inf.ALPHA)
    p.add_argument("--power", type=float, default=inf.POWER)
    p.add_argument("--task", action="append", help="only this task (repeatable)")
    return p


@user_errors
def run(argv: list[str]) -> pd.DataFrame:
    args = parser().parse_args(argv)
    results = _check(args.study_dir, args.effect, args.alpha, args.power)
    if args.task:
        known = sorted(results["task"].dropna().astype(str).unique())
        if unknown := sorted(set(args.task) - set(known)):
            raise PretrainlabError(
                f"--task {', '.join(unknown)}: not a task of this study; its tasks are "
                f"{', '.join(known)}."
            )
        results = results[results["task"].isin(args.task)]
    table = power_table(results, args.effect, args.alpha, args.power)
    if table.empty:
        raise PretrainlabError(
            f"{args.study_dir} has no comparison to size: its family is empty (one arm and no "
            "scratch baseline, or no two arms probed on the same pretraining seeds)."
        )
    shown = table.assign(seeds_needed=table["seeds_needed"].map(_seeds_text))
    print(
        f"Paired t-tests of {args.study_dir} (two-sided, alpha {args.alpha:g}, power "
        f"{args.power:g}, before multiple-comparison correction): MDE at the study's seeds, and "
        f"pretraining seeds needed to detect a difference of {args.effect:g} (metric units)."
    )
    print(shown.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return table


def _seeds_text(n: int) -> str:
    return "no spread" if n < 0 else (f">= {n:.0e}" if n >= 10**6 else str(n))


def main() -> None:
    run(sys.argv[1:])
