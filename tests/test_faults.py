"""Faults: SIGKILL and SIGTERM part-way through a run, non-finite losses, atomic writes,
corrupt caches and concurrent cache builders.

The resume tests run the real CLI in subprocesses (the same command before and after the
kill) and compare metrics.json with an uninterrupted run: equal bit for bit on CPU.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import atomic_write_bytes, cached_folder, read_json, verify_manifest
from tests.conftest import TINY

CLI = [sys.executable, "-m", "pretrainlab", "pretrain"]
LAST = "checkpoints/last.ckpt"
# 452 training blocks -> 28 batches per epoch: a 30-step run crosses an epoch boundary.
# Dropout on, so the restored RNG state matters.
RESUME = [
    o
    for o in TINY
    if not o.startswith(("trainer.max_steps", "corpus.num_words", "trainer.log_every_n_steps"))
] + [
    "corpus.num_words=20000",
    "trainer.max_steps=30",
    "encoder.dropout=0.1",
    "threads=1",
    "trainer.log_every_n_steps=1",
]
# The CSV logger, flushed every step, tells the test which step a run has reached.
CSV = ["logger=csv", "+logger.flush_logs_every_n_steps=1"]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "HYDRA_FULL_ERROR": "0",
        "OMP_NUM_THREADS": "1",
    }


def _cmd(cache_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*CLI, *RESUME, f"paths.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}", *extra]


def _val(run_dir: Path) -> dict[str, float]:
    return {k: v for k, v in read_json(run_dir / "metrics.json").items() if k.startswith("val/")}


def _ckpt_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:
        return None


class Watched:
    """A CLI run whose progress is followed through its per-step CSV log (with ``CSV``)."""

    def __init__(self, cmd: list[str], cwd: Path, run_dir: Path):
        self.csv = run_dir / "csv" / "metrics.csv"
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    @property
    def step(self) -> int:
        try:
            rows = self.csv.read_text().splitlines()
        except FileNotFoundError:
            return 0
        header = rows[0].split(",") if rows else []
        if "step" not in header:
            return 0
        col = header.index("step")
        steps = [int(r.split(",")[col]) for r in rows[1:] if r.split(",")[col].isdigit()]
        return max(steps, default=-1) + 1  # Lightning logs step s-1 for the s-th step

    def wait_for(self, predicate, timeout: float = 240) -> None:
        t0 = time.time()
        while not predicate():
            assert self.proc.poll() is None, self.proc.communicate()[1][-3000:]
            assert time.time() - t0 < timeout, "timed out"
            time.sleep(0.02)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


@pytest.fixture(scope="module")
def uninterrupted(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    out = subprocess.run(
        _cmd(cache_dir, run, "logger=none"),
        cwd=run.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return run


def test_sigkill_then_same_command_resumes_bit_identical(uninterrupted, cache_dir, tmp_path):
    run = tmp_path / "run"
    cmd = _cmd(cache_dir, run, *CSV)
    first = Watched(cmd, tmp_path, run)
    last = run / "checkpoints" / "last.ckpt"
    # past the step-20 checkpoint and the epoch boundary (28 batches per epoch)
    first.wait_for(lambda: first.step >= 23 and _ckpt_step(last) == 20)
    os.kill(first.proc.pid, signal.SIGKILL)
    killed_at = first.step  # flushed every step: the last step it finished
    assert first.finish()[0] == -signal.SIGKILL
    saved = _ckpt_step(last)
    assert read_json(run / "run.json")["status"] == "running"
    assert not (run / "metrics.json").exists()

    second = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=400
    )
    assert second.returncode == 0, second.stderr[-3000:]
    info = read_json(run / "run.json")
    assert info["status"] == "completed" and info["attempts"] == 2
    assert info["resumed_from_step"] == saved == 20
    lost = killed_at - saved
    print(f"\nSIGKILL after step {killed_at}; last.ckpt at step {saved}: {lost} steps redone")
    assert 3 <= lost < 10  # below checkpoint_every (+ the poll's latency)
    assert _val(run) == _val(uninterrupted)  # bit-identical: no tolerance
    timing = ("train/tokens_per_s", "train/mfu")

    def rows(folder: Path) -> list[str]:
        lines = (folder / "history.csv").read_text().splitlines()
        return [r for r in lines if r.split(",")[1] not in timing]

    assert rows(run) == rows(uninterrupted)  # no gap, no duplicate around the kill


def test_sigterm_saves_checkpoint_exits_143_and_resumes(uninterrupted, cache_dir, tmp_path):
    run = tmp_path / "run"
    cmd = _cmd(cache_dir, run, "logger=wandb", "logger.project=pretrainlab-test")
    first = Watched(cmd, tmp_path, run)
    history = run / "history.csv"
    # History flushes at each validation (every 10 steps): SIGTERM soon after step 10's
    first.wait_for(lambda: history.exists() and _ckpt_step(run / LAST) == 10)
    first.proc.send_signal(signal.SIGTERM)
    rc, err = first.finish()
    assert rc == 143, err[-3000:]
    saved = _ckpt_step(run / LAST)
    assert saved is not None and saved > 10  # saved at SIGTERM, not the periodic one
    assert f"holds step {saved}. Run the same command to resume." in err
    assert "Traceback" not in err
    info = read_json(run / "run.json")
    assert info["status"] == "preempted"

    second = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=400
    )
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = read_json(run / "run.json")
    assert resumed["resumed_from_step"] == saved and resumed["status"] == "completed"
    assert _val(run) == _val(uninterrupted)
    # the same W&B run continues: one id, each attempt's offline folder carries it
    assert resumed["wandb_id"] == info["wandb_id"]
    offline = sorted((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(p.name.endswith(info["wandb_id"]) for p in offline)


def _with_callback(monkeypatch, callback) -> None:
    """Add a test-only callback to the trainer the recipe builds."""
    import pretrainlab.recipe as recipe_module

    original = recipe_module.build

    def build(node, **kwargs):
        if "callbacks" in kwargs:
            kwargs["callbacks"] = [*kwargs["callbacks"], callback]
        return original(node, **kwargs)

    monkeypatch.setattr(recipe_module, "build", build)


def test_submitit_requeue_signal_saves_then_hands_over(pretrain_cfg, tmp_path, monkeypatch):
    import pytorch_lightning as pl

    from pretrainlab.pretrain import pretrain

    calls = []

    def submitit_handler(signum, frame):  # what submitit does: requeue, then exit
        calls.append(_ckpt_step(tmp_path / "checkpoints" / "last.ckpt"))
        raise SystemExit(-1)

    class SendAt(pl.Callback):
        def on_train_batch_start(self, trainer, *args):
            if trainer.global_step == 6:  # arrives during step 7
                os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        _with_callback(monkeypatch, SendAt())
        with pytest.raises(SystemExit):
            pretrain(pretrain_cfg("trainer.max_steps=12"), tmp_path)
        assert calls == [7]  # saved at the end of step 7, before submitit took over
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler  # handler given back
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_checkpoint(
    pretrain_cfg, tmp_path, monkeypatch
):
    from pretrainlab.objectives.mlm import MLMObjective
    from pretrainlab.pretrain import pretrain

    compute = MLMObjective.compute_loss

    def poisoned(self, batch):
        out = compute(self, batch)
        if self.training and self.trainer.global_step == 12:  # the 13th optimizer step
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(MLMObjective, "compute_loss", poisoned)
    with pytest.raises(PretrainlabError, match=r"training loss became nan at step 13: stopping"):
        pretrain(pretrain_cfg(), tmp_path)  # checkpoints every 10, logs every 5
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 10
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values())
    rows = ckpt["callbacks"]["History"]["rows"]
    assert rows and all(math.isfinite(v) for _, _, v in rows)
    info = read_json(tmp_path / "run.json")
    assert info["status"] == "failed" and "step 13" in info["error"]
    assert not (tmp_path / "metrics.json").exists()


# --- atomic writes ---------------------------------------------------------------------------
@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace"])
def test_interrupted_write_leaves_old_file(tmp_path, monkeypatch, fail_at):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}')
    import pretrainlab.io as io_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # a kill at that moment

    if fail_at == "fsync":
        monkeypatch.setattr(io_module.os, "fsync", interrupt)
    elif fail_at == "replace":
        monkeypatch.setattr(io_module.os, "replace", interrupt)
    else:
        monkeypatch.setattr(io_module.os, "fdopen", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b'{"new": 2}')
    assert target.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_checkpoint_writer_is_atomic(tmp_path, monkeypatch):
    from pretrainlab.faults import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)
    import pretrainlab.io as io_module

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io_module.os, "replace", full)
    with pytest.raises(OSError):
        AtomicCheckpointIO().save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def _tiny_tokenizer(cache: Path):
    from pretrainlab.data.corpus import SyntheticCorpus, build_corpus
    from pretrainlab.data.tokenizer import TokenizerSpec, train_tokenizer

    corpus = SyntheticCorpus(num_words=5000, seed=11)
    docs = build_corpus(corpus, cache)
    return train_tokenizer(TokenizerSpec(vocab_size=300), docs, corpus.cache_key(), cache)


@pytest.mark.parametrize("damage", ["truncate", "same_size_garbage", "delete_file"])
def test_corrupt_tokenizer_cache_entry_is_rebuilt(tmp_path, damage):
    tok, key = _tiny_tokenizer(tmp_path)
    entry = tmp_path / "tokenizer" / key
    victim = entry / "tokenizer.json"
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "same_size_garbage":
        victim.write_bytes(data.replace(b"[MASK]", b"[MASQ]"))  # same length, still JSON
    else:
        victim.unlink()
    assert verify_manifest(entry) is not None
    again, _ = _tiny_tokenizer(tmp_path)
    assert verify_manifest(entry) is None
    # (token ids may differ between two trainings: ties in the trainer are unordered)
    assert len(again) == len(tok) and again.mask_token == "[MASK]"


def test_cache_entry_that_fails_to_load_is_rebuilt_once(tmp_path):
    builds, loads = [], []

    def build(folder: Path) -> None:
        builds.append(1)
        (folder / "value.json").write_text(json.dumps(len(builds)))

    def load(folder: Path) -> int:
        loads.append(1)
        if len(loads) == 1:
            raise ValueError("unreadable")
        return json.loads((folder / "value.json").read_text())

    assert cached_folder(tmp_path / "entry", build, load) == 2
    assert len(builds) == 2


def test_corrupt_feature_cache_file_is_recomputed(tmp_path):
    from pretrainlab.probes.features import cached_features

    calls = []

    def compute():
        calls.append(1)
        return {"train": torch.arange(6.0).reshape(2, 3)}

    key = {"ckpt": "x", "task": "y"}
    first = cached_features(tmp_path, key, compute)
    (pt,) = (tmp_path / "features").glob("*/features.pt")
    for damage in (pt.read_bytes()[:40], b"\x00" * 200):
        pt.write_bytes(damage)
        again = cached_features(tmp_path, key, compute)
        assert torch.equal(again["train"], first["train"])
    assert len(calls) == 3
    assert torch.equal(cached_features(tmp_path, key, compute)["train"], first["train"])
    assert len(calls) == 3  # the rebuilt file is read, not recomputed


# --- concurrent builders ---------------------------------------------------------------------
_BUILD_CORPUS = """
import pathlib, sys, time
from pretrainlab.data.corpus import SyntheticCorpus, build_corpus
gate = pathlib.Path(sys.argv[2])
(gate / sys.argv[3]).touch()
while len(list(gate.iterdir())) < 2:  # both imported: start building at the same moment
    time.sleep(0.005)
dd = build_corpus(SyntheticCorpus(num_words=30000, seed=5), sys.argv[1])
print(len(dd["train"]), len(dd["validation"]))
"""


def test_two_processes_build_the_same_corpus_cache(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD_CORPUS, str(tmp_path / "cache"), str(gate), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert outs[0][0] == outs[1][0] and outs[0][0].strip()
    entries = [p for p in (tmp_path / "cache" / "corpus").iterdir() if not p.name.endswith(".lock")]
    assert len(entries) == 1 and verify_manifest(entries[0]) is None  # no temp folder left


def test_concurrent_builders_without_locks_keep_the_first_finished(tmp_path, monkeypatch):
    import contextlib

    import pretrainlab.io as io_module

    monkeypatch.setattr(io_module, "_build_lock", lambda target: contextlib.nullcontext())
    barrier = threading.Barrier(2)
    results, errors = [], []

    def build(folder: Path) -> None:
        barrier.wait(timeout=10)  # both are building at once
        (folder / "who").write_text(threading.current_thread().name)

    def worker() -> None:
        try:
            results.append(
                cached_folder(tmp_path / "entry", build, lambda f: (f / "who").read_text())
            )
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, name=f"t{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(results) == 2
    assert results[0] == results[1]  # both read the one build that won
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]
