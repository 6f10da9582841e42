"""End-to-end pretraining on the embedded corpus: run directory, HF export, W&B, caches."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import pipeline

from pretrainlab.data.corpus import SyntheticCorpus, build_corpus
from pretrainlab.io import read_json
from pretrainlab.pretrain import pretrain


def test_run_directory_contract(pretrained):
    run = pretrained["mlm"]
    for name in (
        "run.json",
        "metrics.json",
        "config.yaml",
        "history.csv",
        "checkpoints/last.ckpt",
        "hf/config.json",
        "hf/model.safetensors",
        "hf/tokenizer.json",
    ):
        assert (run / name).is_file(), name
    info = read_json(run / "run.json")
    assert info["status"] == "completed" and info["objective"] == "mlm"
    assert info["data_hash"] and info["versions"]["torch"]
    metrics = read_json(run / "metrics.json")
    assert {"val/loss", "val/mlm_acc", "val/ppl", "train/tokens_per_s"} <= set(metrics)
    assert read_json(pretrained["clm"] / "metrics.json")["val/next_token_acc"] > 0


def test_hf_export_round_trips_through_pipelines(pretrained):
    fill = pipeline("fill-mask", model=str(pretrained["mlm"] / "hf"), device="cpu")
    out = fill("she was born in [MASK] .")
    assert len(out) == 5 and all("[MASK]" not in o["sequence"] for o in out)
    gen = pipeline("text-generation", model=str(pretrained["clm"] / "hf"), device="cpu")
    text = gen("she was born in", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("she was born in") and len(text) > len("she was born in")


def test_corpus_cache_hit_on_second_build(tmp_path, monkeypatch):
    corpus = SyntheticCorpus(num_words=20000, seed=3)
    first = build_corpus(corpus, tmp_path)
    calls = []
    monkeypatch.setattr(SyntheticCorpus, "documents", lambda self, split: calls.append(split))
    t = time.perf_counter()
    second = build_corpus(SyntheticCorpus(num_words=20000, seed=3), tmp_path)
    assert time.perf_counter() - t < 2.0
    assert calls == []  # nothing regenerated
    assert second["train"]["doc_id"] == first["train"]["doc_id"]


def test_truncated_cache_entry_is_rebuilt(tmp_path):
    corpus = SyntheticCorpus(num_words=20000, seed=4)
    build_corpus(corpus, tmp_path)
    arrow = next((tmp_path / "corpus").rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    rebuilt = build_corpus(corpus, tmp_path)
    assert len(rebuilt["train"]) > 0


def test_wandb_offline_run_holds_loss_history(pretrain_cfg, tmp_path):
    cfg = pretrain_cfg("logger=wandb", "logger.project=pretrainlab-test")
    pretrain(cfg, tmp_path)
    info = read_json(tmp_path / "run.json")
    run_dir = Path(info["wandb_dir"]).parent  # .../wandb/offline-run-*/files -> run folder
    wandb_bin = Path(sys.executable).parent / "wandb"
    out = subprocess.run(
        [str(wandb_bin), "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    text = json.dumps(summary)
    assert "train/loss" in text and "val/loss" in text
    history = subprocess.run(
        [str(wandb_bin), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    losses = [line for line in history.splitlines() if '"history"' in line and "train/loss" in line]
    assert len(losses) >= 3  # every log interval, not only the last value


@pytest.mark.parametrize("objective", ["nsp", "mlm_nsp"])
def test_pair_objectives_train_end_to_end(pretrain_cfg, tmp_path, objective):
    metrics = pretrain(
        pretrain_cfg(
            f"objective={objective}", "trainer.max_steps=6", "trainer.val_check_interval=3"
        ),
        tmp_path,
    )
    assert 0 <= metrics["val/nsp_acc"] <= 1 and metrics["steps"] == 6
