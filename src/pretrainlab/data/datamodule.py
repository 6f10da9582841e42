"""The LightningDataModule every objective shares: the objective only supplies its collator."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from pretrainlab import seeds
from pretrainlab.errors import PretrainlabError

# What a collator gets beside each example to derive its randomness from: the example's
# index, or ``(epoch, index)`` where the training sampler drew it (the pass over the data
# travels with the index because a collator in a persistent DataLoader worker never sees the
# main process' ``set_epoch``).
ExampleKey = int | tuple[int, int]


class Indexed(Dataset):
    """Yields ``(key, example)`` for a key that is an index or ``(epoch, index)`` (see
    ``ExampleKey``), so collators can derive per-example randomness from it (masks then do
    not depend on batch order, worker count, DDP rank or a resumed position)."""

    def __init__(self, examples: Sequence[Any]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, key: ExampleKey) -> tuple[ExampleKey, Any]:
        return key, self.examples[key[1] if isinstance(key, tuple) else key]


class EpochPermutationSampler(Sampler[tuple[int, int]]):
    """A seeded permutation per epoch (Lightning calls ``set_epoch``), reproducible by
    construction: epoch ``e`` always visits the same order for the same seed. It yields
    ``(epoch, index)`` keys, so per-example randomness (MLM's dynamic masks) can follow the
    epoch of the very permutation that drew the example: the same on every rank and worker,
    and restored with it on resume.

    Under data parallelism each of ``world`` processes takes every ``world``-th example of the
    one permutation (trimmed to a multiple of ``world``), so a global batch of ``world`` x
    ``batch_size`` holds the same examples as a single process's batch of that size. Written
    here rather than left to Lightning's DistributedSamplerWrapper, which reshuffles a custom
    training sampler's order with its own seed (so DDP and one process would see different
    batches) and cannot resume mid-epoch.

    ``resume(epoch, skip)`` makes the next pass over ``epoch`` start after its first ``skip``
    examples of this process's share (a run resumed from a mid-epoch checkpoint); ``len``
    stays the full share, as Lightning counts the batches already done."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise PretrainlabError(f"sampler rank {rank} is outside a world of {world} processes")
        self.n, self.seed, self.epoch = n, seed, 0
        self.rank, self.world = rank, world
        self.skipped = 0  # examples skipped at the start of the current pass
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        self.epoch, self._resume = epoch, (epoch, skip)

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self._resume = (
            (self._resume[1] if self._resume and self._resume[0] == self.epoch else 0),
            None,
        )
        self.skipped, epoch = skip, self.epoch
        g = seeds.data_order(self.seed, epoch)
        order = torch.randperm(self.n, generator=g)[: len(self) * self.world]
        return ((epoch, i) for i in order[self.rank :: self.world][skip:].tolist())


class ResumableLoader(DataLoader):
    """A training DataLoader Lightning can checkpoint (it saves ``state_dict`` with the loops
    and calls ``load_state_dict`` before the first batch of a resumed run): the epoch and how
    many examples of it were consumed, so a resumed run sees exactly the batches an
    uninterrupted one would. Lightning does not prefetch from a sized loader, so batches
    yielded here are batches trained on."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._batches = 0  # yielded in the current pass (after the skipped ones)

    def __iter__(self) -> Iterator[Any]:
        return self._counted(super().__iter__())

    def _counted(self, batches: Iterator[Any]) -> Iterator[Any]:
        self._batches = 0
        for batch in batches:
            self._batches += 1
            yield batch

    def _permutation(self) -> EpochPermutationSampler | None:
        """Our sampler, or None where Lightning replaced it (only if a Trainer is built with
        ``use_distributed_sampler=True``; pretrainlab's is not)."""
        return self.sampler if isinstance(self.sampler, EpochPermutationSampler) else None

    def state_dict(self) -> dict[str, int]:
        sampler = self._permutation()
        if sampler is None:
            return {}
        return {
            "epoch": sampler.epoch,
            "n": sampler.n,
            "seed": sampler.seed,
            "examples": sampler.skipped + self._batches * self.batch_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self._permutation()
        if not state or sampler is None:
            return
        if (state.get("n"), state.get("seed")) != (sampler.n, sampler.seed):
            raise PretrainlabError(
                f"the checkpoint was trained on other data ({state.get('n')} examples, seed "
                f"{state.get('seed')}; now {sampler.n}, seed {sampler.seed}): resuming "
                "would not see the same batches. Use the original config or a new run directory."
            )
        epoch, examples = state["epoch"], state["examples"]
        if examples >= len(self) * self.batch_size:  # saved on the last batch of an epoch
            epoch, examples = epoch + 1, 0
        sampler.resume(epoch, examples)


class PretrainDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: Sequence[Any],
        val: Sequence[Any],
        collate: Callable,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
    ):
        super().__init__()
        self.train, self.val, self.collate = Indexed(train), Indexed(val), collate
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def _batching(self) -> dict[str, Any]:
        """The DataLoader arguments that every loader of this module shares."""
        return dict(
            batch_size=self.batch_size,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _loader(
        self,
        data: Indexed,
        sampler: Sampler | None,
        drop_last: bool,
        cls: type[DataLoader] = DataLoader,
    ) -> DataLoader:
        return cls(
            data,
            sampler=sampler,
            drop_last=drop_last,
            # its own generator: iter() draws worker seeds from it, not from the global RNG
            # (which a resumed run restores to the checkpoint's state)
            generator=seeds.loader(self.seed),
            **self._batching(),
        )

    def train_dataloader(self) -> DataLoader:
        if isinstance(self.train.examples, IterableDataset):  # corpus.streaming=true
            return DataLoader(self.train.examples, drop_last=True, **self._batching())
        sampler = EpochPermutationSampler(len(self.train), self.seed, *self._rank_world())
        return self._loader(self.train, sampler, drop_last=True, cls=ResumableLoader)

    def val_dataloader(self) -> DataLoader:
        # every world-th example, unpadded: the torchmetrics states summed over processes then
        # hold exactly the examples one process would see (with the same limit_val_batches).
        # Its keys are bare indices, without an epoch: every evaluation draws the same masks,
        # so val/ curves compare models, not mask draws.
        rank, world = self._rank_world()
        sampler = range(rank, len(self.val), world) if world > 1 else None
        return self._loader(self.val, sampler, drop_last=False)

    def _rank_world(self) -> tuple[int, int]:
        """This process's rank and the number of processes (0, 1 outside a Trainer)."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
