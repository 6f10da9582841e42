"""benchmarks/probe_diagnostics.py runs on a tiny checkpoint and prints every check it names
(structure and ranges only: the figures themselves are measurements, not assertions)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(
    r"^\s*(checkpoint|scratch)\s+(sentiment|topic)\s+(cls|last|mean): "
    r"pretrainlab ([\d.]+)\s+sklearn \(C=[\d.e-]+\) ([\d.]+)$"
)


def test_probe_diagnostics_prints_every_check(pretrained: dict[str, Path], tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "probe_diagnostics.py"),
        str(pretrained["mlm"]),
        "--tasks",
        "sentiment,topic",
        "--train-size",
        "60",
        "--dev-size",
        "30",
        "--test-size",
        "30",
        "--max-length",
        "48",
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=170, env={**os.environ}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [m.groups() for m in map(LINE.match, proc.stdout.splitlines()) if m]
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (who, task, pooling)
        for who in ("checkpoint", "scratch")
        for task in ("sentiment", "topic")
        for pooling in ("cls", "last", "mean")
    }
    assert all(
        0.0 <= float(ours) <= 1.0 and 0.0 <= float(theirs) <= 1.0 for *_, ours, theirs in rows
    )
    lexical = [line for line in proc.stdout.splitlines() if "lexical:" in line]
    assert len(lexical) == 2 and all("single-token label words" in line for line in lexical)
