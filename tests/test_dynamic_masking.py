"""Dynamic masking: an example's MLM mask changes with the epoch and with nothing else (not
the batch size, the order, the worker count, the DDP rank or a resumed position); validation
masks never change. The CLI-level guarantees are in test_faults.py (kill and resume across an
epoch boundary, bit-identical) and test_ddp.py (DDP equals one process)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import pytest
import torch
from torch import Tensor

from pretrainlab.data.datamodule import ExampleKey, PretrainDataModule
from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.mlm import MLMObjective, mask_examples, mask_tokens
from pretrainlab.objectives.mlm_nsp import MLMNSPObjective
from pretrainlab.recipe import Recipe
from tests.test_objectives import SPECIAL, VOCAB, _examples, _objective

SEED = 3
N = 40  # training examples
BLOCKS = torch.randint(5, VOCAB, (N, 64), generator=torch.Generator().manual_seed(0))
BLOCKS[:, 0] = SPECIAL["cls"]

Masks = dict[ExampleKey, Tensor]


class Keyed:
    """The objective's collator, also returning the keys so masks can be matched to examples
    (a class, not a closure: DataLoader workers may need to pickle it)."""

    def __init__(self, objective: MLMObjective):
        self.objective = objective

    def __call__(self, examples: list[tuple[ExampleKey, Tensor]]) -> tuple[list, Tensor]:
        batch = self.objective.collate(examples)
        return [key for key, _ in examples], torch.stack([batch["input_ids"], batch["labels"]], 1)


def _module(
    objective: MLMObjective, batch_size: int, workers: int = 0, rank: int = 0, world: int = 1
) -> PretrainDataModule:
    module = PretrainDataModule(BLOCKS, BLOCKS[:12], Keyed(objective), batch_size, SEED, workers)
    module._rank_world = lambda: (rank, world)  # what a Trainer would report
    return module


def _collect(loader: Iterable, masks: Masks | None = None, stop: int | None = None) -> Masks:
    """Masks by key; ``stop``: take only that many batches (islice fetches no extra one, so
    the loader's count of consumed batches stays exact)."""
    masks = {} if masks is None else masks
    for keys, rows in islice(loader, stop):
        masks.update(zip(keys, rows, strict=True))
    return masks


def _epochs(module: PretrainDataModule, epochs: Iterable[int]) -> Masks:
    loader, masks = module.train_dataloader(), {}
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)  # what Lightning does at the start of each epoch
        _collect(loader, masks)
    return masks


def _same_on_common_keys(a: Masks, b: Masks, at_least: int) -> None:
    common = a.keys() & b.keys()
    assert len(common) >= at_least
    assert all(torch.equal(a[k], b[k]) for k in common)


def test_an_example_is_masked_anew_each_epoch_and_only_then():
    keys = [(e, i) for e in range(3) for i in range(N)]
    ids = BLOCKS.repeat(3, 1)
    _, labels = mask_examples(ids, keys, SEED, 0.15, SPECIAL, VOCAB)
    per_epoch = labels.view(3, N, -1)
    assert all(not torch.equal(per_epoch[0, i], per_epoch[1, i]) for i in range(N))
    assert all(not torch.equal(per_epoch[1, i], per_epoch[2, i]) for i in range(N))
    again = mask_examples(ids.flip(0), keys[::-1], SEED, 0.15, SPECIAL, VOCAB)[1]
    assert torch.equal(again.flip(0), labels)  # the key decides, not the position in a batch


def test_static_masking_and_bare_indices_reproduce_the_old_masks():
    """``dynamic=False`` ignores the epoch; a bare index (validation) is keyed as before
    dynamic masking existed, by (seed, index)."""
    for i in (0, 7, 39):
        old = torch.Generator().manual_seed(hash((SEED, i)) & 0x7FFF_FFFF_FFFF_FFFF)
        expected = mask_tokens(BLOCKS[i : i + 1], 0.15, SPECIAL, VOCAB, old)
        for key, dynamic in [(i, True), (i, False), ((0, i), False), ((5, i), False)]:
            got = mask_examples(BLOCKS[i : i + 1], [key], SEED, 0.15, SPECIAL, VOCAB, None, dynamic)
            assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True)), key


def test_epoch_masks_follow_the_example_not_the_loader():
    objective = _objective(MLMObjective, seed=SEED)
    reference = _epochs(_module(objective, 4), range(3))
    assert {e for e, _ in reference} == {0, 1, 2} and len(reference) == 3 * N
    _same_on_common_keys(reference, _epochs(_module(objective, 3), range(3)), 3 * 39)
    # persistent workers: the epoch reaches them only through the keys
    _same_on_common_keys(reference, _epochs(_module(objective, 8, workers=2), range(3)), 3 * N)
    ranks: Masks = {}
    for rank in (0, 1):
        ranks.update(_epochs(_module(objective, 4, rank=rank, world=2), range(3)))
    _same_on_common_keys(reference, ranks, 3 * N)


def test_a_resumed_loader_draws_the_masks_of_an_uninterrupted_one():
    objective = _objective(MLMObjective, seed=SEED)
    reference = _epochs(_module(objective, 4), range(3))
    for epoch, batches in [(1, 3), (0, N // 4)]:  # mid-epoch, and on an epoch's last batch
        first = _module(objective, 4, workers=2).train_dataloader()
        masks = _epochs(_module(objective, 4), range(epoch))
        first.sampler.set_epoch(epoch)
        _collect(first, masks, stop=batches)
        state = first.state_dict()
        resumed = _module(objective, 4, workers=2).train_dataloader()
        resumed.load_state_dict(state)  # before the first batch, as Lightning does
        _collect(resumed, masks)
        for later in range(resumed.sampler.epoch + 1, 3):
            resumed.sampler.set_epoch(later)
            _collect(resumed, masks)
        _same_on_common_keys(reference, masks, 3 * N)


def test_validation_masks_are_the_same_at_every_evaluation():
    objective = _objective(MLMObjective, seed=SEED)
    module = _module(objective, 5)
    first, second = _collect(module.val_dataloader()), _collect(module.val_dataloader())
    assert sorted(first) == list(range(12))  # bare indices: no epoch
    _same_on_common_keys(first, second, 12)


def test_dynamic_masking_false_repeats_masks_every_epoch():
    objective = _objective(MLMObjective, seed=SEED, dynamic_masking=False)
    assert objective.hparams["dynamic_masking"] is False  # a resume refuses the other setting
    masks = _epochs(_module(objective, 4), range(2))
    assert all(torch.equal(masks[(0, i)], masks[(1, i)]) for i in range(N))


@pytest.mark.parametrize("dynamic", [True, False])
def test_mlm_nsp_masks_follow_the_knob(dynamic):
    objective = _objective(MLMNSPObjective, seed=SEED, dynamic_masking=dynamic)
    pairs = [pair for _, pair in _examples(objective)]
    epoch0 = objective.collate([((0, i), p) for i, p in enumerate(pairs)])
    epoch1 = objective.collate([((1, i), p) for i, p in enumerate(pairs)])
    assert torch.equal(epoch0["labels"], epoch1["labels"]) is not dynamic
    assert torch.equal(epoch0["next_sentence_label"], epoch1["next_sentence_label"])


@pytest.mark.parametrize("cls", [MLMObjective, MLMNSPObjective])
@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_dynamic_masking_must_be_a_boolean(cls, bad):
    with pytest.raises(PretrainlabError, match="objective.dynamic_masking"):
        cls.validate(dynamic_masking=bad)


@pytest.mark.parametrize("objective", ["mlm", "mlm_nsp"])
def test_dynamic_masking_is_a_config_override(pretrain_cfg, objective):
    Recipe.from_cfg(pretrain_cfg(f"objective={objective}", "objective.dynamic_masking=false"))
    with pytest.raises(PretrainlabError, match="objective.dynamic_masking='yes'"):
        Recipe.from_cfg(pretrain_cfg(f"objective={objective}", "objective.dynamic_masking=yes"))
