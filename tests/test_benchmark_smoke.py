"""The throughput benchmark's smallest mode runs end to end and writes the documented JSON
(structure only: speed is not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = ["pretrainlab_mlm", "bare_mlm", "hf_padded_mlm"]


def test_throughput_benchmark_smallest_mode(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "throughput.py"),
        "--encoder",
        "tiny",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--rounds",
        "1",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--paths",
        ",".join(PATHS),
        "--out",
        str(out),
        "corpus.num_words=20000",
        "tokenizer.vocab_size=1000",
        "data.seq_len=32",
        "data.max_val_examples=8",
    ]
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in (
        "machine",
        "command",
        "tokens_per_s",
        "ratios",
        "mfu",
        "matmul_peak_gflops",
        "peak_rss_mb",
        "data",
    ):
        assert key in result, key
    assert {"cpu", "cores_logical", "torch", "torch_threads"} <= set(result["machine"])
    assert set(result["tokens_per_s"]) == set(PATHS) == set(result["mfu"])
    assert all(v > 0 for v in result["tokens_per_s"].values())
    assert result["ratios"]["mlm_vs_bare"] > 0 and result["ratios"]["mlm_vs_hf_packed"] is None
    assert result["nonpad_tokens_per_s"]["hf_padded_mlm"] <= result["tokens_per_s"]["hf_padded_mlm"]
    assert result["matmul_peak_gflops"] > 0 and result["peak_rss_mb"] > 0
    assert result["data"]["cached_build_s"] >= 0 and result["data"]["corpus_tokens"] > 0
    assert "tokens/s" in proc.stdout  # the printed table
