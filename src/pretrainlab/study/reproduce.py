"""``pretrainlab reproduce RUN_DIR``: re-run a pretraining or probe run from its saved config
and report each metric beside the original; exit 1 when any differs beyond the tolerance.
The re-run uses the thread count the original recorded unless its config sets one. Where the
re-run's environment (package versions, CPU kernel set, threads, GPU) differs from
the one the original recorded, it says so: a run is bit-identical only on the same kind of
machine, and a difference beyond the tolerance may come from there, not from the config."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pretrainlab.cli import user_errors
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import atomic_write_json, read_json


def _flat(run: Path) -> tuple[str, dict[str, float]]:
    if (run / "metrics.json").is_file():
        m = read_json(run / "metrics.json")
        return "pretrain", {k: v for k, v in m.items() if k.startswith("val/")}
    if (run / "result.json").is_file():
        r = read_json(run / "result.json")
        return "probe", {f"{s}/{k}": v for s in ("dev", "test") for k, v in r[s].items()}
    raise PretrainlabError(
        f"{run} holds neither metrics.json (a pretraining run) nor result.json (a probe run): "
        "point reproduce at a finished run directory."
    )


def compare(
    original: dict[str, float], again: dict[str, float], rtol: float, atol: float
) -> list[dict]:
    rows = []
    for key, a in sorted(original.items()):
        b = again.get(key, math.nan)
        ok = math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
        rows.append({"metric": key, "original": a, "reproduced": b, "diff": b - a, "ok": ok})
    return rows


def _environment(run: Path) -> dict[str, Any]:
    """The environment a run recorded (:func:`pretrainlab.run.environment`): in run.json for
    pretraining, in result.json for a probe; empty for a run older than the record."""
    data = read_json(run / ("run.json" if (run / "metrics.json").is_file() else "result.json"))
    return {group: data.get(group) or {} for group in ("versions", "machine")}


def environment_changes(original: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """``group.key: before -> after`` for each recorded field whose value differs."""
    changes = []
    for group in ("versions", "machine"):
        a, b = original.get(group) or {}, again.get(group) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                before, after = a.get(key, "not recorded"), b.get(key, "not recorded")
                changes.append(f"{group}.{key}: {before} -> {after}")
    return changes


def _study_checkpoint(cfg: DictConfig, run: Path) -> None:
    """A probe run of a study that was copied or moved names its checkpoint by the old path:
    read the study-relative one from the plan of the study folder that holds ``run``."""
    from pretrainlab.study.plan import STUDY_PATH_KEYS, Job

    if Path(str(cfg.checkpoint)).exists() or Path(str(cfg.get("scratch_from"))).exists():
        return
    root = next((p for p in run.resolve().parents if (p / "plan.json").is_file()), None)
    if root is None:
        return
    for job in (Job(**j) for j in read_json(root / "plan.json")["jobs"]):
        if job.path(root).resolve() == run.resolve():
            for o in job.command_overrides(root):
                key, _, value = o.partition("=")
                if key in STUDY_PATH_KEYS:
                    cfg[key] = value
            return


def reproduce(run: Path, rtol: float, atol: float) -> tuple[list[dict], list[str]]:
    """The metric rows (original, reproduced, within tolerance) and the environment changes
    between the original run and the re-run (:func:`environment_changes`)."""
    kind, original = _flat(run)
    if not (run / "config.yaml").is_file():
        raise PretrainlabError(f"{run} has no config.yaml: it cannot be re-run.")
    cfg = OmegaConf.load(run / "config.yaml")
    if kind == "probe":
        _study_checkpoint(cfg, run)
    cfg.logger = {}  # the re-run is a check, not a new logged run
    before = _environment(run)
    recorded = before["machine"].get("torch_threads")
    if not cfg.get("threads") and recorded:  # CPU sums depend on the thread count: the same
        cfg.threads = recorded
    out = run / "reproduce" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    if kind == "pretrain":
        from pretrainlab.pretrain import pretrain

        pretrain(cfg, out)
    else:
        from pretrainlab.probes.run import probe

        probe(cfg, out)
    rows = compare(original, _flat(out)[1], rtol, atol)
    changes = environment_changes(before, _environment(out))
    record = {"rtol": rtol, "atol": atol, "rows": rows, "environment_changes": changes}
    atomic_write_json(out / "reproduce.json", record)
    return rows, changes


@user_errors
def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pretrainlab reproduce", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rtol", type=float, default=0.01, help="relative tolerance (0.01)")
    parser.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (1e-4)")
    args = parser.parse_args(argv)
    rows, changes = reproduce(args.run_dir, args.rtol, args.atol)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"reproduce {args.run_dir} (rtol {args.rtol}, atol {args.atol})")
    for col in ("metric", "original", "reproduced", "diff", "within"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for r in rows:
        table.add_row(
            r["metric"],
            f"{r['original']:.6g}",
            f"{r['reproduced']:.6g}",
            f"{r['diff']:+.2e}",
            "yes" if r["ok"] else "[red]NO[/red]",
        )
    Console().print(table)
    if changes:
        print(
            "pretrainlab: reproduce: this machine differs from the original run's: "
            + "; ".join(changes)
            + ". Runs are bit-identical only in the same environment; a difference beyond "
            "the tolerance may come from it rather than from the config.",
            file=sys.stderr,
        )
    bad = [r["metric"] for r in rows if not r["ok"]]
    if bad:
        print(
            f"pretrainlab: reproduce: {len(bad)} metric(s) differ beyond tolerance: "
            f"{', '.join(bad)}",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> None:
    raise SystemExit(_main(sys.argv[1:]))
