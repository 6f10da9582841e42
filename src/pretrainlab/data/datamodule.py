"""The LightningDataModule every objective shares: the objective only supplies its collator."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class Indexed(Dataset):
    """Yields ``(index, example)`` so collators can derive per-example randomness from the
    index (masks then do not depend on batch order, worker count or a resumed position)."""

    def __init__(self, examples: Sequence[Any]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        return i, self.examples[i]


class EpochPermutationSampler(Sampler[int]):
    """A seeded permutation per epoch (Lightning calls ``set_epoch``), reproducible by
    construction: epoch ``e`` always visits the same order for the same seed."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class PretrainDataModule(pl.LightningDataModule):
    def __init__(self, train: Sequence[Any], val: Sequence[Any], collate: Callable,
                 batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.train, self.val, self.collate = Indexed(train), Indexed(val), collate
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def _loader(self, data: Indexed, sampler: Sampler | None, drop_last: bool) -> DataLoader:
        return DataLoader(
            data, batch_size=self.batch_size, sampler=sampler, collate_fn=self.collate,
            drop_last=drop_last, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        sampler = EpochPermutationSampler(len(self.train), self.seed)
        return self._loader(self.train, sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, None, drop_last=False)
