"""ELECTRA, SimCSE (contrastive, mlm_contrastive) and task weighting: overfitting a batch,
replacement statistics, the InfoNCE loss by hand, the weighting update rules on a hand-made
case, exports, FLOPs counts and bad input."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from transformers import AutoModel, pipeline

from pretrainlab.errors import PretrainlabError
from pretrainlab.models.encoder import EncoderSpec
from pretrainlab.objectives.body import set_hidden_dropout
from pretrainlab.objectives.contrastive import ContrastiveObjective, info_nce
from pretrainlab.objectives.electra import ElectraObjective, generator_spec, sample_tokens
from pretrainlab.objectives.mlm import IGNORE
from pretrainlab.objectives.mlm_contrastive import MLMContrastiveObjective
from pretrainlab.objectives.mlm_nsp import MLMNSPObjective
from pretrainlab.objectives.mlm_sop import MLMSOPObjective
from pretrainlab.objectives.optim import OptimSpec
from pretrainlab.objectives.weighting import LossWeights, task_grad_norms
from pretrainlab.recipe import Recipe
from tests.test_objectives import SPECIAL, VOCAB, _examples

ENCODER = EncoderSpec(name="t", layers=2, hidden=64, heads=2, ffn=128, max_positions=64, dropout=0)


def _objective(cls, **kw):
    torch.manual_seed(0)
    return cls(encoder=ENCODER, vocab_size=VOCAB, special_ids=SPECIAL, optim=OptimSpec(), **kw)


def _blocks(n=8, length=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(5, VOCAB, (n, length), generator=g)
    blocks[:, 0] = SPECIAL["cls"]
    return list(enumerate(blocks))


@pytest.mark.parametrize(
    "cls,kw",
    [
        (ElectraObjective, {}),
        (ContrastiveObjective, {}),
        (MLMContrastiveObjective, {}),
        (MLMContrastiveObjective, {"weighting": "gradnorm"}),
    ],
)
def test_new_objectives_overfit_a_fixed_batch(cls, kw):
    objective = _objective(cls, **kw)
    batch = objective.collate(_blocks())
    opt = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = objective.compute_loss(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.35 * losses[0], (losses[0], losses[-1])


# --- ELECTRA --------------------------------------------------------------------------------
def test_generator_is_a_narrower_encoder_of_the_same_depth():
    small = generator_spec(ENCODER, 0.5)
    assert (small.layers, small.hidden, small.heads, small.ffn) == (2, 32, 1, 64)
    assert generator_spec(ENCODER, 1.0).hidden == ENCODER.hidden
    objective = _objective(ElectraObjective)
    shared = objective.model.get_input_embeddings().weight
    assert not any(p is shared for p in objective.generator.parameters())  # read, not owned


def test_replacements_follow_the_generator_and_labels_mark_changed_tokens():
    objective = _objective(ElectraObjective, mask_rate=0.3)
    g = torch.Generator().manual_seed(1)
    blocks = torch.where(torch.rand(64, 32, generator=g) < 0.5, 7, 9)
    blocks[:, 0] = SPECIAL["cls"]
    batch = objective.collate(list(enumerate(blocks)))
    with torch.no_grad():
        objective.generator.bias[7] = 40.0  # the generator always samples token 7
    seen = {}  # the discriminator's input
    objective.model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(ids=kwargs["input_ids"]), with_kwargs=True
    )
    objective.compute_loss(batch)
    selected = batch["labels"] != IGNORE
    corrupted = seen["ids"]
    original = blocks
    assert torch.equal(corrupted[~selected], original[~selected])  # only masked positions move
    assert (corrupted[selected] == 7).all()
    replaced = corrupted != original
    assert torch.equal(replaced, selected & (original != 7))  # a sample equal to it is not
    accuracy = (original[selected] == 7).float().mean().item()  # the generator's hit rate
    share = selected.float().mean().item()
    assert abs(share - 0.3 * 31 / 32) < 0.03
    assert replaced.float().mean().item() == pytest.approx(share * (1 - accuracy), abs=1e-6)


def test_sampling_follows_the_softmax_and_the_example_key():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]])).expand(40_000, 4)
    picked = sample_tokens(logits, torch.rand(40_000, generator=torch.Generator().manual_seed(0)))
    freq = torch.bincount(picked, minlength=4).float() / 40_000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.01)
    objective = _objective(ElectraObjective)
    blocks = _blocks(4)
    alone = objective.collate(blocks[2:3])["replacement_draw"]
    assert torch.equal(objective.collate(blocks)["replacement_draw"][2:3], alone)
    epoch = [((1, i), x) for i, x in blocks]
    assert not torch.equal(objective.collate(epoch)["replacement_draw"], alone.expand(4, -1))


def test_electra_export_loads_with_automodel_and_heads_round_trip(tmp_path):
    objective = _objective(ElectraObjective).eval()
    batch = objective.collate(_blocks())
    objective.save(tmp_path)
    assert (tmp_path / "generator.safetensors").is_file()
    assert (tmp_path / "discriminator_head.safetensors").is_file()
    body = AutoModel.from_pretrained(str(tmp_path)).eval()
    ids = batch["input_ids"]
    with torch.no_grad():
        expected = objective.model(input_ids=ids).last_hidden_state
        assert torch.allclose(body(input_ids=ids).last_hidden_state, expected, atol=1e-5)
        before = objective.compute_loss(batch).loss
        fresh = _objective(ElectraObjective).eval()
        torch.manual_seed(5)
        fresh.load(tmp_path)
        assert torch.allclose(fresh.compute_loss(batch).loss, before, atol=1e-5)


# --- SimCSE ---------------------------------------------------------------------------------
def test_info_nce_matches_a_hand_computation():
    first = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    second = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    tau = 0.5

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))

    expected = 0.0
    for i, a in enumerate(first.tolist()):
        scores = [cos(a, b) / tau for b in second.tolist()]
        expected -= scores[i] - math.log(sum(math.exp(s) for s in scores))
    assert info_nce(first, second, tau).item() == pytest.approx(expected / 3, rel=1e-5)


def test_two_views_differ_only_by_dropout():
    objective = _objective(ContrastiveObjective, dropout=0.1)
    assert objective.model.config.hidden_dropout_prob == 0  # the export keeps the encoder's
    batch = objective.collate(_blocks())
    first, second = objective.views(batch)
    assert not torch.allclose(first, second, atol=1e-4)  # dropout 0.1 is forced (encoder: 0)
    set_hidden_dropout(objective.model, 0.0)
    first, second = objective.views(batch)
    assert torch.allclose(first, second, atol=1e-5)  # no dropout: identical positives
    out = objective.compute_loss(batch)
    assert out.loss.item() == pytest.approx(
        info_nce(first[:, 0], second[:, 0], 0.05).item(), rel=1e-4
    )
    objective.eval()
    assert torch.equal(*objective.views(batch))
    assert objective.describe()["probe_pooling"] == "cls"


def test_mean_pooling_is_what_the_loss_compares_and_what_probes_read():
    objective = _objective(ContrastiveObjective, pooling="mean")
    objective.eval()  # one pass: the views are identical
    first, second = objective.views(objective.collate(_blocks()))
    out = objective.compute_loss(objective.collate(_blocks()))
    assert out.loss.item() == pytest.approx(
        info_nce(first.mean(1), second.mean(1), 0.05).item(), rel=1e-4
    )
    assert out.loss.item() != pytest.approx(info_nce(first[:, 0], second[:, 0], 0.05).item())
    assert objective.describe()["probe_pooling"] == "mean"
    assert not objective.describe()["trains_cls"]
    both = _objective(MLMContrastiveObjective, pooling="mean")
    assert both.describe()["probe_pooling"] == "mean"
    assert _objective(MLMContrastiveObjective).describe()["probe_pooling"] == "cls"


# --- weighting ------------------------------------------------------------------------------
def test_uncertainty_weighting_update_rule_by_hand():
    weights = LossWeights(("a", "b"), "uncertainty", {"a": 1.0, "b": 1.0}, 1.5)
    with torch.no_grad():
        weights.log_var.copy_(torch.tensor([0.0, math.log(2.0)]))
    total = weights([torch.tensor(2.0), torch.tensor(0.5)])
    # exp(-0) * 2 + 0 + exp(-ln 2) * 0.5 + ln 2
    assert total.item() == pytest.approx(2.0 + 0.25 + math.log(2.0))
    total.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L: 1 - 2 and 1 - 0.5 * 0.5
    assert weights.log_var.grad.tolist() == pytest.approx([-1.0, 0.75])
    torch.optim.SGD(weights.parameters(), lr=0.1).step()
    expected = [math.exp(-0.1), math.exp(-(math.log(2.0) - 0.075))]
    assert weights.current().tolist() == pytest.approx(expected)


def test_gradnorm_update_rule_by_hand():
    shared = torch.nn.Parameter(torch.tensor([1.5, 4.0]))  # W, the last shared layer
    losses = [2.0 * shared[0], 0.5 * shared[1]]  # values 3 and 2; grad norms 2 and 0.5
    norms = task_grad_norms(losses, shared)
    assert norms.tolist() == pytest.approx([2.0, 0.5])
    weights = LossWeights(("a", "b"), "gradnorm", {"a": 1.0, "b": 1.0}, 1.5)
    with torch.no_grad():
        weights.w.copy_(torch.tensor([3.0, 1.0]))  # renormalised to [1.5, 0.5] (sum 2) first
        weights.initial.copy_(torch.tensor([6.0, 2.0]))  # L(0)
    total = weights(losses, norms)
    assert total.item() == pytest.approx(1.5 * 3 + 0.5 * 2)  # the balance term adds no value
    total.backward()
    assert shared.grad.tolist() == pytest.approx([1.5 * 2, 0.5 * 0.5])  # w held constant
    # ratios L/L0 = 0.5, 1 -> relative 2/3, 4/3; G = w g = 3, 0.25; mean G = 1.625
    target = [1.625 * (2 / 3) ** 1.5, 1.625 * (4 / 3) ** 1.5]  # 0.885, 2.502
    assert target[0] < 3.0 and target[1] > 0.25  # a: above its target, b: below
    assert weights.w.grad.tolist() == pytest.approx([2.0, -0.5])  # sign(G - target) * g
    torch.optim.SGD([weights.w], lr=0.1).step()  # w = 1.3, 0.55
    assert weights.current().tolist() == pytest.approx([2 * 1.3 / 1.85, 2 * 0.55 / 1.85])


def test_fixed_weighting_is_todays_sum_bit_for_bit():
    objective = _objective(MLMNSPObjective, weights={"mlm": 1.0, "nsp": 3.0})
    out = objective.compute_loss(objective.collate(_examples(objective)))
    today = 1.0 * out.terms["mlm_loss"][0] + 3.0 * out.terms["nsp_loss"][0]
    assert torch.equal(out.loss, today)
    assert not list(objective.loss_weights.parameters())  # fixed: nothing new to train


# --- runs, FLOPs and bad input --------------------------------------------------------------
def test_flops_count_the_second_network_and_the_second_pass(pretrain_cfg):
    flops = {
        o: Recipe.from_cfg(pretrain_cfg(f"objective={o}")).flops_per_token
        for o in ("mlm", "nsp", "electra", "contrastive", "mlm_contrastive")
    }
    assert flops["contrastive"] == pytest.approx(2 * flops["nsp"])  # two passes, no vocab head
    assert flops["mlm_contrastive"] == pytest.approx(flops["mlm"] + flops["nsp"])
    assert flops["mlm"] < flops["electra"] < 2 * flops["mlm"]  # a quarter-width generator
    budget = {
        o: Recipe.from_cfg(pretrain_cfg(f"objective={o}", "budget.flops=5e12")).cfg.trainer
        for o in ("mlm", "electra")
    }
    assert budget["electra"].max_steps < budget["mlm"].max_steps


@pytest.mark.parametrize(
    "objective,extra",
    [
        ("electra", []),
        ("contrastive", []),
        ("mlm_contrastive", ["objective.weighting=gradnorm"]),
        ("mlm_nsp", ["objective.weighting=uncertainty"]),
    ],
)
def test_runs_export_and_log_weights(pretrain_cfg, tmp_path, objective, extra):
    from pretrainlab.pretrain import pretrain

    cfg = pretrain_cfg(
        f"objective={objective}", "trainer.max_steps=5", "trainer.val_check_interval=5", *extra
    )
    metrics = pretrain(cfg, tmp_path)
    assert metrics["steps"] == 5 and math.isfinite(metrics["val/loss"])
    AutoModel.from_pretrained(str(tmp_path / "hf"))
    if objective == "mlm_contrastive":
        fill = pipeline("fill-mask", model=str(tmp_path / "hf"), device="cpu")
        assert len(fill("she was born in [MASK] .")) == 5
    if extra:
        with open(tmp_path / "history.csv", encoding="utf-8") as f:
            names = {row["name"] for row in csv.DictReader(f)}
        first, second = ("mlm", "contrastive") if objective == "mlm_contrastive" else ("mlm", "nsp")
        for term in (first, second):
            assert {f"train/weight_{term}", f"train/gradnorm_{term}"} <= names, names


BAD = [
    (["objective=electra", "objective.generator_ratio=0"], "objective.generator_ratio=0"),
    (["objective=electra", "objective.generator_ratio=1.5"], "objective.generator_ratio=1.5"),
    (["objective=contrastive", "objective.temperature=0"], "objective.temperature=0"),
    (["objective=contrastive", "objective.temperature=-0.1"], "objective.temperature=-0.1"),
    (["objective=contrastive", "objective.dropout=0"], "objective.dropout=0"),
    (["objective=contrastive", "objective.pooling=max"], "objective.pooling='max'"),
    (["objective=mlm_nsp", "objective.weighting=sometimes"], "objective.weighting='sometimes'"),
    (["objective=mlm_contrastive", "objective.gradnorm_alpha=-1"], "objective.gradnorm_alpha=-1"),
]


@pytest.mark.parametrize(("overrides", "named"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_values_stop_before_work(pretrain_cfg, overrides, named):
    with pytest.raises(PretrainlabError) as err:
        Recipe.from_cfg(pretrain_cfg(*overrides))  # validation only: no data, no model
    text = str(err.value)
    assert "\n" not in text and named in text and "is not valid: expected" in text, text


def test_bad_values_are_refused_by_the_constructors_too():
    with pytest.raises(PretrainlabError, match="generator_ratio=0 "):
        _objective(ElectraObjective, generator_ratio=0)
    with pytest.raises(PretrainlabError, match="dropout=0.0 "):
        _objective(ContrastiveObjective, dropout=0.0)
    with pytest.raises(PretrainlabError, match="weighting='learned'"):
        _objective(MLMContrastiveObjective, weighting="learned")


def test_knobs_are_attributes_hyperparameters_and_rules_stated_once():
    objective = _objective(MLMContrastiveObjective, dropout=0.2)
    hparams = objective.objective_hparams()
    assert list(hparams) == [
        "mask_rate", "dynamic_masking", "temperature", "dropout", "weighting", "gradnorm_alpha",
        "weights",
    ]  # fmt: skip
    assert objective.dropout == hparams["dropout"] == 0.2
    assert hparams["weights"] == {"mlm": 1.0, "contrastive": 1.0}
    assert MLMSOPObjective.validate()["weights"] == {"mlm": 1.0, "sop": 1.0}
    assert _objective(ElectraObjective, span_p=0.3).objective_hparams()["span_p"] == 0.3
    with pytest.raises(PretrainlabError, match="objective.weighting='none' is not valid"):
        MLMNSPObjective.validate(weighting="none")
    with pytest.raises(TypeError, match="unexpected keyword argument 'mask_rate'"):
        _objective(ContrastiveObjective, mask_rate=0.2)
