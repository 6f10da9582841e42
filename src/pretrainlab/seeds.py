"""Every random stream of a run, named and derived from the run's seed in one place.

A run has one seed (``seed=``; a study's ``pretrain_seed``). Each consumer draws from its own
stream, so changing how one part uses randomness never shifts another: the training data
order does not move when masking changes, and a resumed run redraws nothing it already drew.
The formulas are the ones the project has always used (runs made before this module are
reproduced bit for bit); the constants are large primes so two streams' keys do not collide
for any seed, epoch or index a run reaches.

===================  ============================================================  ========
stream               what it orders or draws                                       key
===================  ============================================================  ========
``init``             model weights (``pl.seed_everything(seed)`` before the build)  seed
``training``         dropout and every global-RNG draw once training starts         seed + 1
``data_order``       the permutation of training examples in an epoch               epoch
``loader``           DataLoader worker seeds                                        seed
``stream_order``     a streaming corpus's shuffle buffer, per epoch and shard       epoch, shard
``val_split``        whether a document is held out for validation                  document
``pairs``            segment pairs (data format 'pairs') of the train / val split   split
``masking``          an example's mask (MLM), by (epoch, index) or index alone     example
``segment_order``    whether an example's two segments swap (sentence order)       example
``prefix_split``     where an example's bidirectional prefix ends (prefix LM)      example
``replacement``      an example's sampled replacements (ELECTRA)                   example
===================  ============================================================  ========

Probe-side streams (label-budget samples, probe initialisation) take the probe's own
``seed`` and are drawn where they are used (:mod:`pretrainlab.probes`).
"""

from __future__ import annotations

import random

import torch

_MASK63 = 0x7FFF_FFFF_FFFF_FFFF


def training(seed: int) -> int:
    """The global RNGs' seed when a fresh run starts training (faults.RNGState)."""
    return seed + 1


def data_order(seed: int, epoch: int) -> torch.Generator:
    """The training permutation of ``epoch`` (EpochPermutationSampler)."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def loader(seed: int) -> torch.Generator:
    """A DataLoader's own generator (its worker seeds), apart from the global RNG."""
    return torch.Generator().manual_seed(seed)


def stream_order(seed: int, epoch: int, shard: int) -> random.Random:
    """A streaming corpus's shuffle of ``epoch`` in worker ``shard``."""
    return random.Random((seed * 1_000_003 + epoch) * 1009 + shard)


def val_split(seed: int, index: int) -> float:
    """A uniform draw for document ``index``: below val_fraction, it is held out."""
    return random.Random(seed * 1_000_003 + index).random()


def pairs(seed: int, split: str) -> int:
    """The seed of the segment-pair sampler of ``split`` ("train" or "validation")."""
    return seed if split == "train" else seed + 1


def masking(seed: int, key: int | tuple[int, int], dynamic: bool = True) -> torch.Generator:
    """A generator keyed by the example, not by when or where its batch is drawn: by
    (seed, epoch, index) for an ``(epoch, index)`` key when ``dynamic``, else by
    (seed, index), the key static masks always had (so ``dynamic=False`` reproduces them)."""
    # hash() of a tuple of ints is the same in every process (only str/bytes hashes are salted)
    return torch.Generator().manual_seed(hash(_example_parts(seed, key, dynamic)) & _MASK63)


def segment_order(seed: int, key: int | tuple[int, int]) -> torch.Generator:
    """Whether an example's segments are swapped (sentence-order prediction): drawn anew each
    epoch, keyed by (seed, epoch, index), or (seed, index) for a bare index (validation)."""
    return _example_stream(1_000_033, seed, key)


def prefix_split(seed: int, key: int | tuple[int, int]) -> torch.Generator:
    """Where an example's bidirectional prefix ends (prefix LM), keyed as :func:`segment_order`."""
    return _example_stream(1_000_037, seed, key)


def replacement(seed: int, key: int | tuple[int, int], dynamic: bool = True) -> torch.Generator:
    """ELECTRA's sampled replacements of an example (one uniform per position), keyed as its
    mask is (:func:`masking`: by the index alone when not ``dynamic``) in a stream of its own."""
    return _example_stream(1_000_039, seed, key, dynamic)


def _example_parts(seed: int, key: int | tuple[int, int], dynamic: bool) -> tuple[int, ...]:
    """(seed, epoch, index) for an ``(epoch, index)`` key when ``dynamic``, else (seed, index)."""
    if isinstance(key, tuple):
        return (seed, *key) if dynamic else (seed, key[1])
    return (seed, key)


def _example_stream(
    stream: int, seed: int, key: int | tuple[int, int], dynamic: bool = True
) -> torch.Generator:
    parts = _example_parts(seed, key, dynamic)
    return torch.Generator().manual_seed(hash((stream, *parts)) & _MASK63)
