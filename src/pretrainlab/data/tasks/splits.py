"""Train / dev / test from a train file and optional dev and test files: a missing split is
carved out of train with a fixed seed (shared by the file-based task loaders: text
classification, CoNLL, STS; :func:`carve_splits` by the GLUE loaders too)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

import numpy as np

from pretrainlab.errors import PretrainlabError

Row = TypeVar("Row")


def resolve_size(size: int | float, n: int, what: str) -> int:
    """A split size given as a count (int >= 0) or a fraction (0 <= float < 1) of ``n``."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise PretrainlabError(f"{what}={size!r} must be a count (int) or a fraction (float).")
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise PretrainlabError(f"{what}={size!r}: a fraction must be in [0, 1).")
        return int(round(size * n))
    if size < 0:
        raise PretrainlabError(f"{what}={size!r}: a count must be >= 0.")
    return size


def carve_splits(n: int, sizes: Sequence[int], seed: int) -> tuple[list[int], list[list[int]]]:
    """Fixed-seed disjoint samples of ``sizes`` indices out of ``range(n)``.

    Returns ``(rest, samples)``; every list is in original order.
    """
    perm = np.random.default_rng(seed).permutation(n)
    samples: list[list[int]] = []
    offset = 0
    for size in sizes:
        samples.append(sorted(int(i) for i in perm[offset : offset + size]))
        offset += size
    rest = sorted(int(i) for i in perm[offset:])
    return rest, samples


def carve_missing(
    train_file: str,
    n: int,
    given: Collection[str],
    dev_size: int | float,
    test_size: int | float,
    seed: int,
) -> tuple[list[int], dict[str, list[int]], list[str]]:
    """The train rows kept, the rows carved out of train for each of ``dev`` / ``test`` not
    in ``given``, and a note on each carved split. ``n``: the train file's row count."""
    sizes = {
        s: 0 if s in given else resolve_size(size, n, f"{s}_size")
        for s, size in (("test", test_size), ("dev", dev_size))
    }
    if sizes["test"] + sizes["dev"] >= n:
        raise PretrainlabError(
            f"Train file {train_file!r} has {n} rows: too few to carve {sizes['dev']} dev and "
            f"{sizes['test']} test rows out of it and keep any for training. Pass dev_file / "
            "test_file, or smaller dev_size / test_size."
        )
    rest, (test_idx, dev_idx) = carve_splits(n, [sizes["test"], sizes["dev"]], seed)
    carved = {s: idx for s, idx in (("dev", dev_idx), ("test", test_idx)) if s not in given}
    notes = [
        f"{s} split: {len(idx)} rows carved out of {train_file} (seed {seed})"
        for s, idx in carved.items()
    ]
    return rest, carved, notes


def file_splits(
    read: Callable[[str], list[Row]],
    train_file: str,
    dev_file: str | None,
    test_file: str | None,
    dev_size: int | float,
    test_size: int | float,
    seed: int,
) -> tuple[dict[str, list[Row]], list[str]]:
    """Rows of each split and notes on the carved ones. Every given file is read (and so
    checked) before anything is carved; ``dev_size`` / ``test_size``: a count or a fraction
    of the train rows, used only where that file is missing."""
    train = read(train_file)
    given = {s: read(p) for s, p in (("dev", dev_file), ("test", test_file)) if p is not None}
    rest, carved, notes = carve_missing(train_file, len(train), given, dev_size, test_size, seed)
    splits = {"train": [train[i] for i in rest]}
    for split in ("dev", "test"):
        splits[split] = given[split] if split in given else [train[i] for i in carved[split]]
    return splits, notes
