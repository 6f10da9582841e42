"""Whole-word and span masking, the mask-rate schedule, sentence-order prediction and the
prefix LM: their statistics, attention, overfitting, HF export and bad input."""

from __future__ import annotations

import pytest
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from pretrainlab.data.pipeline import make_nsp_pairs
from pretrainlab.data.tokenizer import SPECIAL_TOKENS, wrap
from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.masking import MaskScheme, continuation_table, span_length_pmf
from pretrainlab.objectives.mlm import IGNORE, MLMObjective, mask_examples
from pretrainlab.objectives.mlm_sop import MLMSOPObjective
from pretrainlab.objectives.optim import OptimSpec
from pretrainlab.objectives.prefix_lm import PrefixLMObjective, prefix_attention
from pretrainlab.objectives.sop import SOPObjective
from pretrainlab.recipe import Recipe
from tests.test_objectives import ENCODERS, SPECIAL, _docs, overfit

WORDS = [f"w{i}" for i in range(30)] + [f"##p{i}" for i in range(30)] + ["."]


def _tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A WordPiece tokenizer over a fixed vocabulary: specials at ids 0-4 (as SPECIAL), then
    30 word starts and 30 ``##`` continuation pieces."""
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS.values(), *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return wrap(tok, max_length=64)


TOK = _tokenizer()
VOCAB = len(TOK)
CONT = continuation_table(TOK, VOCAB)


def _objective(cls, position="learned", **kw):
    torch.manual_seed(0)
    return cls(
        encoder=ENCODERS[position], vocab_size=VOCAB, special_ids=SPECIAL, optim=OptimSpec(),
        tokenizer=TOK, **kw,
    )  # fmt: skip


def _blocks(n: int, t: int) -> torch.Tensor:
    ids = torch.randint(5, VOCAB, (n, t), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = SPECIAL["cls"]
    return ids


def _mask(ids, scheme, keys=None, rate=0.15):
    keys = keys or [(0, i) for i in range(len(ids))]
    return mask_examples(ids, keys, 3, rate, SPECIAL, VOCAB, scheme=scheme)


def _words(row: torch.Tensor) -> list[list[int]]:
    """Positions of each word of a block (after [CLS])."""
    words: list[list[int]] = []
    for i in range(1, len(row)):
        if CONT[row[i]] and i > 1:
            words[-1].append(i)
        else:
            words.append([i])
    return words


def test_continuation_table_marks_wordpiece_pieces():
    assert CONT.tolist() == [False] * 5 + [False] * 30 + [True] * 30 + [False]


def test_whole_word_masking_rate_words_and_keys():
    ids, scheme = _blocks(400, 128), MaskScheme(masking="whole_word", continuation=CONT)
    inputs, labels = _mask(ids, scheme)
    selected = labels != IGNORE
    assert abs(selected.float().mean() * 128 / 127 - 0.15) < 0.01  # [CLS] is never masked
    for r in range(0, 400, 7):
        for word in _words(ids[r]):
            assert len({bool(selected[r, i]) for i in word}) == 1  # a word all or nothing
    assert (inputs[selected] == SPECIAL["mask"]).float().mean().sub(0.8).abs() < 0.02
    again = _mask(ids[:5], scheme)[1]
    assert torch.equal(again, labels[:5])  # the key decides
    later = _mask(ids[:5], scheme, [(1, i) for i in range(5)])[1]
    assert not torch.equal(later, labels[:5])  # a new epoch, a new mask


def _span_runs(ids: torch.Tensor, selected: torch.Tensor) -> list[int]:
    """Lengths in words of the maximal runs of wholly selected words: a span each, unless two
    touch (longer) or the budget cut one (shorter: one per row)."""
    runs = []
    for row, chosen in zip(ids, selected, strict=True):
        length = 0
        for hit in [*(bool(chosen[w].all()) for w in _words(row)), False]:
            if hit:
                length += 1
            elif length:
                runs.append(length)
                length = 0
    return runs


def test_span_masking_rate_lengths_and_keys():
    pmf = span_length_pmf(0.2, 10)
    mean = (pmf * torch.arange(1, 11)).sum().item()
    assert abs(mean - 3.8) < 0.01  # SpanBERT's figure for p = 0.2 clipped at 10
    ids, scheme = _blocks(60, 1024), MaskScheme(masking="span", continuation=CONT)
    _, labels = _mask(ids, scheme, rate=0.1)
    selected = labels != IGNORE
    assert (selected.sum(1) == round(0.1 * 1023)).all()  # spans until the budget, exactly
    runs = _span_runs(ids, selected)
    assert 3.3 < sum(runs) / len(runs) < 4.3, sum(runs) / len(runs)
    short = MaskScheme(masking="span", span_p=0.6, continuation=CONT)  # mean 1.67 words
    runs = _span_runs(ids, _mask(ids, short, rate=0.1)[1] != IGNORE)
    assert 1.3 < sum(runs) / len(runs) < 2.2, sum(runs) / len(runs)
    assert torch.equal(_mask(ids[:4], scheme, rate=0.1)[1], labels[:4])


def test_mask_rate_schedule_follows_the_epoch_key():
    ids = _blocks(200, 128)
    scheme = MaskScheme(mask_rate_end=0.45, mask_rate_epochs=4)
    rates = {}
    for key in [0, 2, 4, 9]:
        keys = [(key, i) for i in range(200)]
        rates[key] = (_mask(ids, scheme, keys)[1] != IGNORE).float().mean().item() * 128 / 127
    assert [round(rates[e], 2) for e in (0, 2, 4, 9)] == [0.15, 0.30, 0.45, 0.45]
    bare = (_mask(ids, scheme, list(range(200)))[1] != IGNORE).float().mean() * 128 / 127
    assert abs(bare - 0.45) < 0.01  # validation masks at the end rate


def test_default_masking_keeps_the_old_hyperparameters():
    objective = _objective(MLMObjective)
    assert set(objective.hparams) == {
        "objective", "encoder", "optim", "vocab_size", "seed", "mask_rate", "dynamic_masking"
    }  # fmt: skip
    assert _objective(MLMObjective, masking="span").hparams["masking"] == "span"


def test_sop_swaps_about_half_and_swapped_pairs_are_the_same_segments_reversed():
    pairs = make_nsp_pairs(_docs(400), 48, 0, SPECIAL["cls"], SPECIAL["sep"], random_next=False)
    assert len(pairs) > 300 and all(p["next_sentence_label"] == 0 for p in pairs)
    objective = _objective(SOPObjective)
    batch = objective.collate([((0, i), p) for i, p in enumerate(pairs)])
    labels = batch["next_sentence_label"]
    assert abs(labels.float().mean() - 0.5) < 0.06
    for i, p in enumerate(pairs):
        n, b = len(p["input_ids"]), p["token_type_ids"].index(1)
        ids, types = batch["input_ids"][i, :n].tolist(), batch["token_type_ids"][i, :n].tolist()
        a_part, b_part = p["input_ids"][1 : b - 1], p["input_ids"][b:-1]
        if labels[i]:
            assert ids == [SPECIAL["cls"], *b_part, SPECIAL["sep"], *a_part, SPECIAL["sep"]]
            assert types == [0] * (len(b_part) + 2) + [1] * (len(a_part) + 1)
        else:
            assert ids == p["input_ids"] and types == p["token_type_ids"]
    later = objective.collate([((1, i), p) for i, p in enumerate(pairs)])["next_sentence_label"]
    assert 0.3 < (later != labels).float().mean() < 0.7  # drawn anew each epoch


@pytest.mark.parametrize("position", list(ENCODERS))
def test_prefix_lm_attention_is_bidirectional_in_the_prefix_and_causal_after(position):
    objective = _objective(PrefixLMObjective, position).eval()
    ids = _blocks(1, 16)
    prefix = torch.tensor([6])

    def hidden(x):
        mask = prefix_attention(objective.model.config, prefix, 16)
        return objective.encode({"input_ids": x, "attention_mask": mask}).last_hidden_state[0]

    base = hidden(ids)
    for changed in (4, 11):  # a prefix token, then a token after the prefix
        other = ids.clone()
        other[0, changed] = 5 if ids[0, changed] != 5 else 6
        moved = (hidden(other) - base).abs().sum(-1) > 1e-5
        seen_by = torch.arange(16) >= (0 if changed < 6 else changed)
        assert torch.equal(moved, seen_by), (changed, moved)


def _examples(objective):
    if objective.data_format == "blocks":
        return list(enumerate(_blocks(8, 32)))
    pairs = make_nsp_pairs(_docs(), 48, 0, SPECIAL["cls"], SPECIAL["sep"], random_next=False)
    return list(enumerate(pairs[:8]))


@pytest.mark.parametrize(
    ("cls", "kw", "position"),
    [
        (MLMObjective, {"masking": "whole_word", "mask_rate": 0.3}, "learned"),
        (MLMObjective, {"masking": "span", "mask_rate": 0.3}, "rotary"),
        (PrefixLMObjective, {}, "learned"),
        (PrefixLMObjective, {"prefix_fraction": 0.5}, "rotary"),
        (SOPObjective, {}, "learned"),
        (MLMSOPObjective, {"masking": "whole_word"}, "rotary"),
    ],
)
def test_each_new_objective_overfits_a_fixed_batch(cls, kw, position):
    objective = _objective(cls, position, **kw)
    losses = overfit(objective, objective.collate(_examples(objective)))
    assert losses[-1] < 0.35 * losses[0], (losses[0], losses[-1])


def _export(objective, folder):
    objective.save(folder)
    TOK.save_pretrained(str(folder))
    return str(folder)


@pytest.mark.parametrize("cls", [MLMObjective, MLMSOPObjective])
def test_masked_variants_export_for_fill_mask(cls, tmp_path):
    folder = _export(_objective(cls, masking="whole_word"), tmp_path)
    assert transformers.AutoModel.from_pretrained(folder).config.model_type == "bert"
    fill = transformers.pipeline("fill-mask", model=folder, device="cpu")
    assert len(fill("w1 ##p2 [MASK] w3 .")) == 5


def test_sop_exports_its_encoder_and_pair_head(tmp_path):
    folder = _export(_objective(SOPObjective, "rotary"), tmp_path)
    assert transformers.AutoModel.from_pretrained(folder).config.model_type == "roformer"
    assert (tmp_path / "nsp_head.safetensors").is_file()


@pytest.mark.parametrize("position", list(ENCODERS))
def test_prefix_lm_generates_with_the_prompt_as_prefix(position, tmp_path):
    """text-generation on the export decodes as the prefix LM trained: the prompt attends
    both ways (its keys and values cached), each new token to everything before it."""
    objective = _objective(PrefixLMObjective, position)
    with torch.no_grad():  # random weights give a flat output: spread them
        for p in objective.parameters():
            p.add_(torch.randn_like(p) * 2)
    folder = _export(objective, tmp_path)
    assert not transformers.AutoModel.from_pretrained(folder).config.is_decoder
    gen = transformers.pipeline("text-generation", model=folder, device="cpu")
    out = gen("w1 w2 ##p3 w4", max_new_tokens=8, do_sample=False, return_tensors=True)
    prompt = TOK("w1 w2 ##p3 w4")["input_ids"]
    ids, model = list(prompt), gen.model
    with torch.no_grad():
        for _ in range(8):
            mask = prefix_attention(model.config, torch.tensor([len(prompt)]), len(ids))
            logits = model(input_ids=torch.tensor([ids]), attention_mask=mask).logits
            ids.append(int(logits[0, -1].argmax()))
    assert out[0]["generated_token_ids"] == ids


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["objective.span_p=0"], "objective.span_p=0"),
        (["objective.span_p=1.5"], "objective.span_p=1.5"),
        (["objective.span_max=0"], "objective.span_max=0"),
        (["objective.masking=spans"], "objective.masking='spans'"),
        (["objective.mask_rate_end=1.0"], "objective.mask_rate_end=1.0"),
        (["objective.mask_rate_epochs=0"], "objective.mask_rate_epochs=0"),
        (["objective=mlm_sop", "objective.masking=words"], "objective.masking='words'"),
        (["objective=mlm_sop", "objective.weights.sop=-1"], "objective.weights="),
        (["objective=prefix_lm", "objective.prefix_fraction=1.0"], "prefix_fraction=1.0"),
        (["objective=prefix_lm", "objective.prefix_fraction=0"], "prefix_fraction=0"),
        (["objective=prefix_lm", "objective.prefix_fraction=-0.2"], "prefix_fraction=-0.2"),
    ],
)
def test_bad_knobs_are_one_paragraph_before_work(pretrain_cfg, overrides, key):
    with pytest.raises(PretrainlabError) as err:
        Recipe.from_cfg(pretrain_cfg(*overrides))
    text = str(err.value)
    assert key in text and "expected" in text and "\n" not in text, text


def test_word_masking_needs_the_tokenizer():
    with pytest.raises(PretrainlabError, match="needs the run's tokenizer"):
        MLMObjective(
            encoder=ENCODERS["learned"], vocab_size=VOCAB, special_ids=SPECIAL,
            optim=OptimSpec(), masking="whole_word",
        )  # fmt: skip
