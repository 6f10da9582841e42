"""The study's terminal while its jobs run (the jobs' own output goes to their ``job.log``).

On a terminal: one view (rich ``Live``) redrawn in place every second from the study folder:
the phase, jobs done / running / failed / left, the running jobs with their step, elapsed and
estimated time left, and the probe means so far (:func:`pretrainlab.study.status.render`).
Elsewhere (CI, a pipe, ``| tee``) a view that redraws would print thousands of lines, so a
line is printed instead when a quarter of a phase's jobs have finished and when a job fails.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pretrainlab.study.status import (
    FINISHED,
    Phase,
    Snapshot,
    duration,
    phase_line,
    render,
    snapshot,
)

POLL_S = 2.0  # how often the line printer looks (the live view refreshes every second)


class _Lines:
    """The view as occasional lines: a phase's quarters and each job that fails."""

    def __init__(self, study_dir: Path, console: Any):
        self.study_dir, self.console = study_dir, console
        first = snapshot(study_dir, means=False)  # what was there before: not news
        self.quarters = {p.name: _quarter(p) for p in first.phases}
        self.failed = {what for what, _ in first.failed}

    def check(self) -> None:
        snap = snapshot(self.study_dir, means=False)  # lines show no means
        for phase in snap.phases:
            if (quarter := _quarter(phase)) > self.quarters[phase.name]:
                self.quarters[phase.name] = quarter
                self.console.print(
                    f"[study] {phase_line(phase)}{_left(snap, phase.name)}", markup=False
                )
        for what, where in snap.failed:
            if what not in self.failed:
                self.failed.add(what)
                self.console.print(
                    f"[study] {what} stopped without a result: {where}", markup=False
                )


def _quarter(phase: Phase) -> int:
    finished = sum(phase.counts[s] for s in FINISHED)
    return 4 * finished // phase.total if phase.total else 4


def _left(snap: Snapshot, name: str) -> str:
    phase = next(p for p in snap.phases if p.name == name)
    return f"; about {duration(phase.left_s)} left" if phase.left_s else ""


class _View:
    """The live view's renderable, drawn anew at each refresh; a snapshot that fails (a file
    replaced while read) keeps the last good one on screen."""

    def __init__(self, study_dir: Path):
        self.study_dir, self.cache, self.last = study_dir, {}, None

    def __call__(self) -> Any:
        try:
            self.last = render(snapshot(self.study_dir, self.cache))
        except (OSError, ValueError, KeyError):
            return self.last or "reading the study folder ..."
        return self.last


@contextlib.contextmanager
def watching(study_dir: Path, console: Any) -> Iterator[None]:
    """Show the study's progress while the body runs (its jobs), as described above."""
    if console.is_terminal:
        from rich.live import Live

        with Live(get_renderable=_View(study_dir), console=console, refresh_per_second=1):
            yield
        return
    lines, stop = _Lines(study_dir, console), threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_S):
            lines.check()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        lines.check()
