"""Hardware peak and throughput: the MFU denominator is measured here, never a constant."""

from __future__ import annotations

import functools
import time

import torch


@functools.lru_cache(maxsize=4)
def matmul_peak_flops(device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """Best observed FLOP/s of a square matmul on ``device`` (a practical peak)."""
    n = 2048 if device == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: thread pool start, allocator
    best = float("inf")
    for _ in range(5 if device == "cpu" else 20):
        if device != "cpu":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def tune_allocator() -> None:
    """Keep large freed buffers mapped (glibc): a CLM step's logits and their gradients are
    ~100 MB, and returning them to the OS every step costs 10-25% of a CPU step in page faults
    (measured in BENCHMARKS.md). No-op where glibc's mallopt is absent."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)
