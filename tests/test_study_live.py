"""A study's terminal and `pretrainlab status` (issue 19): a study piped to a file prints a few
lines (no Lightning, W&B or warning chatter: that goes to each job's job.log), `status` follows
it while it runs and after it ends, job records tell running from killed jobs, `-v` streams,
and a step-bounded run's progress bar counts steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pretrainlab.io import atomic_write_json
from pretrainlab.study.jobfiles import JOB_FILE, STALE_S, job_state
from pretrainlab.study.plan import Job
from pretrainlab.study.status import run as status_run
from pretrainlab.study.status import snapshot
from tests.conftest import REPO, TINY

# What a study's terminal must not show (it stays in the jobs' logs).
CHATTER = ("GPU available", "TPU available", "Tip:", "wandb:", "Deprecat", "deprecated",
           "Writing model shards", "Loading weights", "HYDRA", "UserWarning")  # fmt: skip
MAX_LINES = 60


def _study_argv(study_dir: Path, cache: Path) -> list[str]:
    pre = [o for o in TINY if not o.startswith(("logger", "trainer.enable_progress_bar"))]
    pre += [f"paths.cache_dir={cache}", "logger=wandb"]  # W&B on: its chatter must not show
    probe = ["logger=none", f"paths.cache_dir={cache}", "probe.task.train_size=200",
             "probe.task.dev_size=60", "probe.task.test_size=60"]  # fmt: skip
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    return [
        sys.executable, "-m", "pretrainlab", "study", "study.name=live", f"study.dir={study_dir}",
        "study.pretrain_seeds=[0]", "study.tasks=[topic]", "study.modes=[linear]",
        "study.budgets=[100]", "study.objectives=[mlm,clm]", "study.budget.flops=null",
        f"study.pretrain_overrides={quoted(pre)}", f"study.probe_overrides={quoted(probe)}",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
    ]  # fmt: skip


def test_piped_study_is_quiet_and_status_follows_it(cache_dir, tmp_path, capsys):
    study_dir = tmp_path / "study"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "false"}
    proc = subprocess.Popen(
        _study_argv(study_dir, cache_dir), cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    seen_running, deadline = None, time.time() + 600
    while proc.poll() is None:  # status, from outside, while the study runs
        assert time.time() < deadline, "the study did not finish"
        if seen_running is None and (study_dir / "study.json").is_file():
            snap = snapshot(study_dir)
            if snap.running:
                seen_running = snap
        time.sleep(0.2)
    out = proc.stdout.read()
    assert proc.returncode == 0, out[-3000:]
    lines = out.splitlines()
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{out}"
    assert not [c for c in CHATTER if c in out], out
    assert "[study] pretrain 2/2 done" in out and "[study] probe 3/3 done" in out
    assert "probe runs ok" in lines[-1]

    assert seen_running is not None, "status never saw a running job"
    assert seen_running.state == "running" and seen_running.phase in ("pretrain", "probe")
    counts = {p.name: p.counts for p in seen_running.phases}
    assert sum(counts["pretrain"].values()) == 2 and sum(counts["probe"].values()) == 3
    assert sum(c["running"] for c in counts.values()) == len(seen_running.running) >= 1

    final = status_run([str(study_dir)])  # the command, after the fact
    shown = capsys.readouterr().out
    assert final.state == "finished" and "study live: finished" in shown
    assert {p.name: (p.counts["done"], p.total) for p in final.phases} == {
        "pretrain": (2, 2),
        "probe": (3, 3),
    }
    assert final.report == study_dir / "report.html" and str(final.report) in shown
    assert list(final.means.columns) == ["mlm", "clm", "scratch"]
    # what the terminal did not show is in the jobs' logs
    pretrain_logs = [p.read_text() for p in (study_dir / "pretrain").glob("*/job.log")]
    assert len(pretrain_logs) == 2 and all("GPU available" in t for t in pretrain_logs)
    assert all("wandb" in t for t in pretrain_logs)
    records = [json.loads(p.read_text()) for p in study_dir.rglob(JOB_FILE)]
    assert sorted(r["state"] for r in records) == ["ok"] * 5


def _job(tmp_path: Path) -> Job:
    return Job(id=0, kind="pretrain", arm="mlm", seed=0, overrides=[], run_dir="pretrain/r")


def test_job_records_tell_running_from_killed(tmp_path):
    job = _job(tmp_path)
    run = job.path(tmp_path)
    assert job_state(job, tmp_path) == "pending"
    run.mkdir(parents=True)
    record = {"state": "running", "pid": os.getpid(), "host": os.uname().nodename}
    atomic_write_json(run / JOB_FILE, record)
    assert job_state(job, tmp_path) == "running"  # this process runs, heartbeat fresh
    old = time.time() - STALE_S - 1
    os.utime(run / JOB_FILE, (old, old))
    assert job_state(job, tmp_path) == "incomplete"  # the heartbeat stopped
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    atomic_write_json(run / JOB_FILE, {**record, "pid": gone.pid})
    assert job_state(job, tmp_path) == "incomplete"  # its process is gone
    atomic_write_json(run / JOB_FILE, {**record, "state": "failed"})
    assert job_state(job, tmp_path) == "failed"
    (run / "metrics.json").write_text("{}")
    assert job_state(job, tmp_path) == "done"


def test_study_verbose_flag_streams():
    out = subprocess.run(
        [sys.executable, "-m", "pretrainlab", "study", "-v", "--cfg", "job"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "verbose: true" in out.stdout


def test_step_bounded_progress_bar_counts_steps(pretrain_cfg, tmp_path, capfd):
    from pretrainlab.pretrain import pretrain

    cfg = pretrain_cfg("trainer.enable_progress_bar=true", "trainer.max_steps=12")
    pretrain(cfg, tmp_path)
    shown = capfd.readouterr().out
    assert "step" in shown and "12/12" in shown
    assert "Epoch" not in shown
