import torch

from pretrainlab.objectives.mlm import IGNORE, example_generator, mask_tokens

SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
VOCAB = 1000


def _batch(n: int = 256, t: int = 128) -> torch.Tensor:
    ids = torch.randint(5, VOCAB, (n, t), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = SPECIAL["cls"]
    ids[:, t // 2] = SPECIAL["sep"]
    ids[:, -5:] = SPECIAL["pad"]
    return ids


def test_mask_rate_and_80_10_10_split():
    ids = _batch()
    inputs, labels = mask_tokens(ids, 0.15, SPECIAL, VOCAB, torch.Generator().manual_seed(1))
    selected = labels != IGNORE
    maskable = (ids != 0) & (ids != 2) & (ids != 3)
    rate = selected.sum() / maskable.sum()
    assert abs(rate - 0.15) < 0.01
    n = selected.sum()
    as_mask = (inputs[selected] == SPECIAL["mask"]).sum() / n
    unchanged = (inputs[selected] == ids[selected]).sum() / n
    randomised = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.02
    assert abs(unchanged - 0.1) < 0.02  # a random draw equal to the original is ~0.1% more
    assert abs(randomised - 0.1) < 0.02
    assert torch.equal(labels[selected], ids[selected])  # labels keep the originals


def test_special_tokens_never_selected_and_unselected_untouched():
    ids = _batch()
    inputs, labels = mask_tokens(ids, 0.5, SPECIAL, VOCAB, torch.Generator().manual_seed(2))
    special = (ids == 0) | (ids == 2) | (ids == 3)
    assert (labels[special] == IGNORE).all()
    assert torch.equal(inputs[labels == IGNORE], ids[labels == IGNORE])
    assert (inputs[labels != IGNORE] >= 4).all()  # replacements are never [PAD]/[CLS]/[SEP]


def test_masks_depend_on_examples_not_on_draw_order():
    ids = _batch(8, 32)
    a = mask_tokens(ids, 0.15, SPECIAL, VOCAB, example_generator(0, (1, 7)))
    b = mask_tokens(ids, 0.15, SPECIAL, VOCAB, example_generator(0, (1, 7)))
    c = mask_tokens(ids, 0.15, SPECIAL, VOCAB, example_generator(0, (1, 9)))
    assert torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
