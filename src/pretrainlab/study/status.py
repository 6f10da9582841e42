"""``pretrainlab status STUDY_DIR``: where a study stands, read from its folder alone (plan.json,
the jobs' records, timings.json), so it works from another terminal, after the fact, after a
kill, and for any launcher. The study's live view (:mod:`pretrainlab.study.live`) draws the
same :func:`snapshot` every second."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pretrainlab.cli import user_errors
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.study.jobfiles import (
    JOB_FILE,
    LOG_FILE,
    PHASES,
    STATES,
    job_state,
    phase_times,
    read_record,
    read_study_record,
)
from pretrainlab.study.plan import Job

FINISHED = ("done", "failed", "missing")


@dataclass
class Phase:
    name: str
    counts: Counter
    total: int
    wall_s: float  # this phase's time over every invocation so far (the running one included)
    left_s: float | None = None  # estimated time left, while it runs


@dataclass
class Snapshot:
    name: str
    folder: Path
    state: str  # running | finished | stopped (its process is gone) | not started
    phase: str | None
    elapsed_s: float | None
    phases: list[Phase]
    running: list[tuple[str, str, float]] = field(default_factory=list)  # what, progress, secs
    failed: list[tuple[str, str]] = field(default_factory=list)  # what, where to read why
    means: Any = None  # DataFrame: (task, mode, labels) x arm -> "mean (n)"
    report: Path | None = None


def job_label(job: Job) -> str:
    crossed = job.probe_seed is not None and job.probe_seed != job.seed
    seed = f"s{job.seed}" + (f" probe s{job.probe_seed}" if crossed else "")
    if job.kind == "pretrain":
        return f"pretrain {job.arm} {seed}"
    return f"probe {job.task} {job.mode} {job.budget} · {job.arm} {seed}"


def load_plan(study_dir: Path) -> tuple[str, list[Job]]:
    plan = study_dir / "plan.json"
    if not plan.is_file():
        raise PretrainlabError(
            f"{study_dir} is not a study folder (it has no plan.json): give the folder a "
            "`pretrainlab study` run writes, its study.dir (default outputs/studies/NAME)."
        )
    data = read_json(plan)
    return data.get("study", study_dir.name), [Job(**j) for j in data["jobs"]]


def _step_fraction(job: Job, study_dir: Path) -> tuple[float, str]:
    """How far a running job is (0-1) and what to show: steps for pretraining."""
    progress = read_record(job.path(study_dir) / "progress.json")
    if job.kind == "pretrain" and progress and progress.get("max_steps", 0) > 0:
        step, total = progress["step"], progress["max_steps"]
        return step / total, f"step {step}/{total}"
    return 0.0, ""


def _phase(
    name: str,
    jobs: list[Job],
    states: dict[int, str],
    record: dict,
    now: float,
    study_dir: Path,
    past: dict,
    progress: dict[int, tuple[float, str]],
) -> Phase:
    """A phase's counts, its time over every invocation (``past``: the earlier ones' wall
    seconds and jobs) and, while it runs, the time left; ``progress``: running jobs' steps."""
    mine = [j for j in jobs if j.kind == name]
    counts = Counter(states[j.id] for j in mine)
    info = (record.get("phases") or {}).get(name) or {}
    started = info.get("started")
    ended = info.get("ended") or (now if record.get("running") else _last_sign(mine, study_dir))
    earlier = past.get(name, (0.0, 0))[0]
    wall = earlier + (max(0.0, (ended or 0.0) - started) if started else 0.0)
    phase = Phase(name, counts, len(mine), wall)
    if record.get("running") and record.get("phase") == name and started:
        todo = info.get("todo") or len(mine)
        done = sum(counts[s] for s in FINISHED) - (len(mine) - todo)
        steps = sum(progress[j.id][0] for j in mine if j.id in progress)
        fraction = (done + steps) / todo if todo else 1.0
        if fraction > 0.02:
            phase.left_s = (now - started) * (1 - fraction) / fraction
    return phase


def _last_sign(jobs: list[Job], study_dir: Path) -> float | None:
    """When a stopped study's phase last showed life: its jobs' latest record update."""
    times = [p.stat().st_mtime for j in jobs if (p := j.path(study_dir) / JOB_FILE).is_file()]
    return max(times, default=None)


def snapshot(study_dir: Path, means_cache: dict | None = None, means: bool = True) -> Snapshot:
    """Where the study in ``study_dir`` stands now (``means``: with the probe means so far)."""
    name, jobs = load_plan(study_dir)
    now = time.time()
    states = {j.id: job_state(j, study_dir, now) for j in jobs}
    record = read_study_record(study_dir) or {}
    state = "not started" if not record else "running" if record["running"] else "finished"
    if record and not record["running"] and record.get("state") == "running":
        state = "stopped"  # the study process is gone without having finished: killed
    past = phase_times(study_dir, skip=record.get("invocation"))[0]
    progress = {j.id: _step_fraction(j, study_dir) for j in jobs if states[j.id] == "running"}
    snap = Snapshot(
        name=name,
        folder=study_dir,
        state=state,
        phase=record.get("phase") if state == "running" else None,
        elapsed_s=now - record["started"] if state == "running" else None,
        phases=[_phase(p, jobs, states, record, now, study_dir, past, progress) for p in PHASES],
    )
    for job in jobs:
        run = job.path(study_dir)
        if states[job.id] == "running":
            started = (read_record(run / JOB_FILE) or {}).get("started", now)
            snap.running.append((job_label(job), progress[job.id][1], now - started))
        elif states[job.id] in ("failed", "incomplete"):
            log = run / LOG_FILE
            snap.failed.append((job_label(job), str(log if log.is_file() else run)))
    if means:
        snap.means = _means(jobs, states, study_dir, {} if means_cache is None else means_cache)
    report = study_dir / "report.html"
    snap.report = report if report.is_file() else None
    return snap


def _means(jobs: list[Job], states: dict[int, str], study_dir: Path, cache: dict) -> Any:
    """Mean test score and run count of the finished probes per (task, mode, labels) x arm;
    each result is read once (``cache``: job id -> rows)."""
    import pandas as pd

    from pretrainlab.study.collect import result_rows

    for job in jobs:
        if job.kind == "probe" and states[job.id] == "done" and job.id not in cache:
            cache[job.id] = [r for r in result_rows(job, study_dir) if r["status"] == "ok"]
    rows = [r for rows in cache.values() for r in rows]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["cell"] = (
        frame["task"] + " · " + frame["mode"] + " · " + frame["train_examples"].astype(str)
    )
    grouped = frame.groupby(["cell", "objective"], sort=False)["test_score"].agg(["mean", "count"])
    text = grouped.apply(lambda r: f"{r['mean']:.3f} ({int(r['count'])})", axis=1)
    return text.unstack("objective").fillna("")


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``: short enough for a table on an 80-column terminal."""
    if seconds is None or seconds < 0.5:
        return ""
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    if minutes == 0:
        return f"{secs}s"
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def headline(snap: Snapshot) -> str:
    """One line: the study, its state and phase, elapsed and estimated time left."""
    parts = [f"study {snap.name}: {snap.state}"]
    if snap.phase:
        parts.append(f"{snap.phase} phase")
        parts.append(f"{duration(snap.elapsed_s)} elapsed")
        left = next((p.left_s for p in snap.phases if p.name == snap.phase), None)
        if left is not None:
            parts.append(f"about {duration(left)} left in this phase")
    return " · ".join(parts)


def phase_line(phase: Phase) -> str:
    """``pretrain 2/6 done, 2 running, 0 failed, ...`` (the states that occur)."""
    done = phase.counts["done"]
    rest = [f"{phase.counts[s]} {s}" for s in STATES[1:] if phase.counts[s]]
    return f"{phase.name} {done}/{phase.total} done" + "".join(f", {r}" for r in rest)


def render(snap: Snapshot, max_rows: int | None = 12) -> Any:
    """The view as a rich renderable: headline, phases, running jobs, failures, means."""
    from rich.console import Group
    from rich.table import Table

    phases = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("phase", *STATES, "time", "left"):
        phases.add_column(col, justify="left" if col == "phase" else "right")
    for p in snap.phases:
        counts = [f"{p.counts[s]}" + (f"/{p.total}" if s == "done" else "") for s in STATES]
        phases.add_row(p.name, *counts, duration(p.wall_s), duration(p.left_s))
    parts: list[Any] = [f"[bold]{headline(snap)}[/bold]", phases]
    if snap.running:
        parts.append(
            _listing("running", [(w, f"{p}  {duration(s)}") for w, p, s in snap.running], max_rows)
        )
    if snap.failed:
        parts.append(_listing("failed or incomplete (see the log)", snap.failed, max_rows))
    if snap.means is not None:
        title = "test score, mean (runs)" + (" so far" if snap.state == "running" else "")
        means = Table(
            title=title, title_justify="left", box=None, header_style="bold", pad_edge=False
        )
        means.add_column("task · mode · labels")
        for arm in snap.means.columns:
            means.add_column(str(arm), justify="right")
        shown = snap.means if max_rows is None else snap.means.head(max_rows)
        for cell, row in shown.iterrows():
            means.add_row(str(cell), *row.tolist())
        parts.append(means)
    if snap.report is not None:
        parts.append(f"report: {snap.report}")
    return Group(*parts)


def _listing(title: str, rows: list[tuple[str, str]], max_rows: int | None) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, show_header=False, pad_edge=False)
    table.add_column()
    table.add_column(justify="right")
    shown = rows if max_rows is None else rows[:max_rows]
    for what, detail in shown:
        table.add_row(what, detail)
    if len(rows) > len(shown):
        table.add_row(f"... and {len(rows) - len(shown)} more", "")
    return table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pretrainlab status",
        description="Where a study stands: jobs done / running / failed / missing / "
        "incomplete / pending, time per phase, running jobs, the means so far, the report.",
    )
    p.add_argument("study_dir", type=Path, help="the study's folder (its study.dir)")
    return p


@user_errors
def run(argv: list[str]) -> Snapshot:
    from rich.console import Console

    snap = snapshot(parser().parse_args(argv).study_dir)
    Console().print(render(snap, max_rows=None))
    return snap


def main() -> None:
    run(sys.argv[1:])
