"""Training throughput of pretrainlab vs a bare PyTorch loop and the HF Trainer, in one run.

All paths share one encoder preset, sequence length, batch size and data build (the embedded
synthetic corpus by default). Each path runs ``--warmup`` optimizer steps, then ``--steps``
timed ones; paths are repeated for ``--rounds`` rounds in alternating order and the best round
is reported (``--aggregate median`` to change). Paths:

- pretrainlab_mlm / pretrainlab_clm: the real step through the Lightning Trainer
- bare_mlm / bare_clm: a bare PyTorch loop, same model, batches, loss, fused AdamW, clipping
- hf_padded_mlm / hf_packed_mlm / hf_packed_clm: HF Trainer + DataCollatorForLanguageModeling

    .venv/bin/python benchmarks/throughput.py [--encoder small] [--steps 8] [--warmup 2]
        [--rounds 2] [--paths a,b] [--device cpu|cuda] [--precision 32-true|bf16-mixed]
        [--threads N] [--tune-malloc] [--out FILE] [hydra overrides ...]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psutil
import torch

PATHS = (
    "pretrainlab_mlm",
    "pretrainlab_clm",
    "bare_mlm",
    "bare_clm",
    "hf_padded_mlm",
    "hf_packed_mlm",
    "hf_packed_clm",
)
RATIOS = {
    "mlm_vs_hf_packed": ("pretrainlab_mlm", "hf_packed_mlm"),
    "mlm_vs_bare": ("pretrainlab_mlm", "bare_mlm"),
    "clm_vs_bare": ("pretrainlab_clm", "bare_clm"),
    "clm_vs_hf_packed": ("pretrainlab_clm", "hf_packed_clm"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="small", help="encoder preset (conf/encoder)")
    p.add_argument("--steps", type=int, default=8, help="timed optimizer steps per path")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before them (>= 1)")
    p.add_argument("--rounds", type=int, default=2, help="repeat every path this many times")
    p.add_argument("--aggregate", choices=("best", "median"), default="best")
    p.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda")
    )
    p.add_argument("--precision", default="32-true", choices=("32-true", "bf16-mixed"))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--tune-malloc",
        action="store_true",
        help="glibc: serve big buffers from the heap (no mmap/munmap churn per step)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.seq_len=64")
    args = p.parse_args(argv)
    args.paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown:
        p.error(f"unknown path(s) {unknown}: choose from {', '.join(PATHS)}")
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        p.error("--warmup, --steps and --rounds must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no CUDA device")
    return args


def quiet() -> None:
    import datasets
    import transformers

    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds to 1 GiB: the (B*T, V) logits and their
    gradients are then reused from the heap instead of mapped, zero-filled and unmapped on
    every step (page faults). Returns False where this is not glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return all(libc.mallopt(k, 1 << 30) == 1 for k in (m_mmap_threshold, m_trim_threshold))


def compose(objective: str, args: argparse.Namespace, cache_dir: Path) -> Any:
    from pretrainlab.config import compose_config

    overrides = [
        f"encoder={args.encoder}",
        f"objective={objective}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"data.batch_size={args.batch_size}",
        f"paths.cache_dir={cache_dir}",
        *args.overrides,
    ]
    return compose_config("pretrain", overrides)


def machine(args: argparse.Namespace) -> dict[str, Any]:
    import pytorch_lightning
    import transformers

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as f:  # Linux: the marketing name
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    info = {
        "cpu": cpu,
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def build_data(cfg: Any, cache_dir: Path) -> tuple[Any, dict[str, Any]]:
    """A fresh build into an empty cache dir (corpus, tokenizer, token ids, blocks), a second
    build from that cache, and tokenize-and-pack alone into another empty dir."""
    from pretrainlab.data.corpus import build_corpus
    from pretrainlab.data.pipeline import pack_blocks, token_stream, tokenize_corpus
    from pretrainlab.data.prepare import prepare_pretraining_data
    from pretrainlab.recipe import Recipe

    def prepare() -> Any:
        parts = Recipe.from_cfg(cfg)
        return prepare_pretraining_data(
            parts.corpus,
            parts.tokenizer,
            parts.seq_len,
            "blocks",
            cfg.seed,
            parts.cache_dir,
            cfg.data.max_val_examples,
            parts.batch_size,
        )

    t = time.perf_counter()
    data = prepare()
    fresh_s = time.perf_counter() - t
    t = time.perf_counter()
    prepare()
    cached_s = time.perf_counter() - t
    parts = Recipe.from_cfg(cfg)
    docs = build_corpus(parts.corpus, cache_dir)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        t = time.perf_counter()
        tokens, _ = tokenize_corpus(docs, data.tokenizer, "benchmark", tmp)
        blocks = pack_blocks(tokens["train"], parts.seq_len, data.special_ids["cls"])
        tok_pack_s = time.perf_counter() - t
        n_tokens = sum(len(token_stream(tokens[s])) for s in tokens)
    stats = {
        "train_blocks": int(blocks.shape[0]),
        "corpus_tokens": n_tokens,
        "documents": data.stats["train_documents"],
        "vocab_size": len(data.tokenizer),
        "fresh_build_s": fresh_s,
        "fresh_build_tokens_per_s": n_tokens / fresh_s,
        "tokenize_pack_s": tok_pack_s,
        "tokenize_pack_tokens_per_s": n_tokens / tok_pack_s,
        "cached_build_s": cached_s,
        "cached_build_under_2s": cached_s < 2.0,
    }
    return data, stats


def run_path(name: str, cfgs: dict[str, Any], st: Any, hf_examples: dict[str, Any]) -> dict:
    import throughput_paths as tp

    objective = name.rsplit("_", 1)[1]
    cfg = cfgs[objective]
    if name.startswith("pretrainlab_"):
        return tp.run_pretrainlab(cfg, st)
    if name.startswith("bare_"):
        return tp.run_bare(cfg, st)
    kind = name.split("_")[1]  # padded | packed
    return tp.run_hf(cfg, st, hf_examples[f"{kind}_{objective}"], causal=objective == "clm")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import throughput_paths as tp

    from pretrainlab.data.corpus import build_corpus
    from pretrainlab.perf import matmul_peak_flops
    from pretrainlab.recipe import Recipe

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tune_malloc and not tune_malloc():
        print("--tune-malloc: not glibc, ignored", flush=True)
    quiet()
    load_start = os.getloadavg()
    peak_dtype = torch.bfloat16 if args.precision.startswith("bf16") else torch.float32
    with tempfile.TemporaryDirectory(prefix="pretrainlab-bench-") as root:
        root = Path(root)
        cache = root / "cache"
        cfgs = {o: compose(o, args, cache) for o in ("mlm", "clm")}
        print(f"data: fresh build of the corpus into {cache} ...", flush=True)
        data, data_stats = build_data(cfgs["mlm"], cache)
        parts = Recipe.from_cfg(cfgs["mlm"])
        args.seq_len = parts.seq_len
        print(
            f"data: {data_stats['corpus_tokens']} tokens, fresh build "
            f"{data_stats['fresh_build_s']:.1f} s, tokenize+pack "
            f"{data_stats['tokenize_pack_tokens_per_s']:.0f} tok/s, cached build "
            f"{data_stats['cached_build_s']:.2f} s",
            flush=True,
        )
        special = [data.special_ids[k] for k in ("cls", "sep", "pad")]
        hf_examples = {}
        if "hf_padded_mlm" in args.paths:
            docs = build_corpus(parts.corpus, cache)["train"]
            hf_examples["padded_mlm"] = tp.hf_lines(docs, data.tokenizer, parts.seq_len)
        if "hf_packed_mlm" in args.paths:
            hf_examples["packed_mlm"] = tp.hf_blocks(data.train, special, with_mask=True)
        if "hf_packed_clm" in args.paths:
            hf_examples["packed_clm"] = tp.hf_blocks(data.train, special, with_mask=False)
        st = tp.Setting(
            parts=parts,
            data=data,
            warmup=args.warmup,
            steps=args.steps,
            device=args.device,
            precision=args.precision,
            workdir=root / "work",
        )
        rounds: dict[str, list[dict]] = {p: [] for p in args.paths}
        peaks = []
        for r in range(args.rounds):
            peaks.append(matmul_peak_flops.__wrapped__(args.device, peak_dtype))
            order = args.paths if r % 2 == 0 else args.paths[::-1]
            for name in order:
                if args.device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                res = run_path(name, cfgs, st, hf_examples)
                res["rss_mb"] = psutil.Process().memory_info().rss / 2**20
                if args.device == "cuda":
                    res["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
                rounds[name].append(res)
                print(
                    f"round {r + 1}/{args.rounds} {name:>16}: {res['tokens_per_s']:8.0f} tok/s"
                    f"  ({res['step_s_median']:.3f} s/step median, "
                    f"{res['page_faults_per_step']:.0f} page faults/step)",
                    flush=True,
                )
                gc.collect()
    return summarise(args, rounds, peaks, data_stats, load_start)


def summarise(
    args: argparse.Namespace,
    rounds: dict[str, list[dict]],
    peaks: list[float],
    data_stats: dict[str, Any],
    load_start: tuple[float, ...],
) -> dict[str, Any]:
    agg = max if args.aggregate == "best" else statistics.median
    peak = max(peaks)
    tps = {p: agg(r["tokens_per_s"] for r in rs) for p, rs in rounds.items()}
    # FLOPs per token from the best run (constant per path except for hf_padded's length).
    best = {p: max(rs, key=lambda r: r["tokens_per_s"]) for p, rs in rounds.items()}
    result = {
        "machine": {**machine(args), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "settings": {
            "encoder": args.encoder,
            "seq_len": args.seq_len,
            "batch_size": args.batch_size,
            "warmup_steps": args.warmup,
            "timed_steps": args.steps,
            "rounds": args.rounds,
            "aggregate": f"{args.aggregate} of {args.rounds} rounds (paths in alternating order)",
            "device": args.device,
            "precision": args.precision,
            "tune_malloc": args.tune_malloc,
            "overrides": args.overrides,
        },
        "tokens_per_s": tps,
        "tokens_per_s_rounds": {p: [r["tokens_per_s"] for r in rs] for p, rs in rounds.items()},
        "step_s_median": {p: best[p]["step_s_median"] for p in rounds},
        "page_faults_per_step": {p: best[p]["page_faults_per_step"] for p in rounds},
        "ratios": {
            k: (tps[a] / tps[b] if a in tps and b in tps else None) for k, (a, b) in RATIOS.items()
        },
        "mfu": {p: tps[p] * best[p]["flops_per_token"] / peak for p in rounds},
        "flops_per_token": {p: best[p]["flops_per_token"] for p in rounds},
        "matmul_peak_gflops": peak / 1e9,
        "matmul_peak_gflops_rounds": [x / 1e9 for x in peaks],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "data": data_stats,
    }
    notes = {p: rs[0]["workaround"] for p, rs in rounds.items() if rs[0].get("workaround")}
    if notes:
        result["workarounds"] = notes
    if "hf_padded_mlm" in rounds:
        rs = rounds["hf_padded_mlm"]
        result["nonpad_tokens_per_s"] = {"hf_padded_mlm": agg(r["nonpad_tokens_per_s"] for r in rs)}
        result["hf_padded_mean_seq_len"] = best["hf_padded_mlm"]["mean_seq_len"]
    if args.device == "cuda":
        result["gpu_peak_mb"] = {p: max(r["gpu_peak_mb"] for r in rs) for p, rs in rounds.items()}
    return result


def report(result: dict[str, Any]) -> str:
    tps, mfu, steps = result["tokens_per_s"], result["mfu"], result["step_s_median"]
    lines = [f"{'path':<17}{'tokens/s':>10}{'s/step':>9}{'MFU':>8}   rounds (tok/s)"]
    for p, v in tps.items():
        rounds = ", ".join(f"{x:.0f}" for x in result["tokens_per_s_rounds"][p])
        lines.append(f"{p:<17}{v:>10.0f}{steps[p]:>9.3f}{mfu[p]:>8.1%}   {rounds}")
    if "nonpad_tokens_per_s" in result:
        lines.append(
            f"{'  (non-pad)':<17}{result['nonpad_tokens_per_s']['hf_padded_mlm']:>10.0f}"
            f"   mean padded length {result['hf_padded_mean_seq_len']:.1f}"
        )
    lines.append(f"tokens/s: {result['settings']['aggregate']}")
    for path, note in result.get("workarounds", {}).items():
        lines.append(f"WORKAROUND in {path}: {note}")
    ratios = [f"{k} {v:.2f}" for k, v in result["ratios"].items() if v is not None]
    lines.append("ratios: " + (", ".join(ratios) or "n/a (a path of each pair was not run)"))
    d = result["data"]
    lines.append(
        f"matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s; peak RSS "
        f"{result['peak_rss_mb']:.0f} MB"
    )
    lines.append(
        f"data: {d['corpus_tokens']} tokens; fresh build {d['fresh_build_s']:.1f} s "
        f"({d['fresh_build_tokens_per_s']:.0f} tok/s); tokenize+pack "
        f"{d['tokenize_pack_tokens_per_s']:.0f} tok/s; cached build "
        f"{d['cached_build_s']:.2f} s (< 2 s: {d['cached_build_under_2s']})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    result = run(args)
    print(report(result))
    if args.out:
        from pretrainlab.io import atomic_write_json

        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
