"""Each objective on its own: causal masking, overfitting a fixed batch, NSP pairs."""

import random

import datasets
import pytest
import torch

from pretrainlab.data.pipeline import make_nsp_pairs
from pretrainlab.errors import PretrainlabError
from pretrainlab.models.encoder import EncoderSpec
from pretrainlab.objectives.clm import CLMObjective
from pretrainlab.objectives.mlm import MLMObjective
from pretrainlab.objectives.mlm_nsp import MLMNSPObjective
from pretrainlab.objectives.nsp import NSPObjective
from pretrainlab.objectives.optim import OptimSpec

SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
VOCAB = 64
ENCODER = EncoderSpec(
    name="t", layers=2, hidden=64, heads=2, ffn=128, max_positions=64, dropout=0.0
)
ENCODERS = {
    position: EncoderSpec(**{**ENCODER.to_dict(), "position": position})
    for position in ("learned", "rotary")
}
both_positions = pytest.mark.parametrize("position", list(ENCODERS))


def _objective(cls, position="learned", **kw):
    torch.manual_seed(0)
    return cls(
        encoder=ENCODERS[position],
        vocab_size=VOCAB,
        special_ids=SPECIAL,
        optim=OptimSpec(),
        **kw,
    )


def _docs(n_docs=12, seed=0) -> datasets.Dataset:
    rng = random.Random(seed)
    rows = []
    for d in range(n_docs):
        lengths = [rng.randint(3, 8) for _ in range(rng.randint(3, 6))]
        tokens = [rng.randrange(5, VOCAB) for _ in range(sum(lengths))] + [SPECIAL["sep"]]
        rows.append({"doc_id": str(d), "tokens": tokens, "sentence_lengths": lengths})
    return datasets.Dataset.from_list(rows)


def _examples(objective):
    if objective.data_format == "pairs":
        pairs = make_nsp_pairs(_docs(), 48, 0, SPECIAL["cls"], SPECIAL["sep"])
        return list(enumerate(pairs[:8]))
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(5, VOCAB, (8, 32), generator=g)
    blocks[:, 0] = SPECIAL["cls"]
    return list(enumerate(blocks))


@both_positions
def test_causal_mask_blocks_the_future(position):
    objective = _objective(CLMObjective, position)
    ids = torch.randint(5, VOCAB, (1, 16))
    emb = objective.model.base_model.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    hidden = objective.model.base_model(inputs_embeds=emb, use_cache=False).last_hidden_state
    (hidden[0, 6] * torch.randn(ENCODER.hidden)).sum().backward()
    influence = emb.grad[0].abs().sum(-1)
    assert (influence[:7] > 0).all()
    assert (influence[7:] == 0).all()


@both_positions
def test_bidirectional_encoder_sees_the_future(position):
    objective = _objective(MLMObjective, position)
    ids = torch.randint(5, VOCAB, (1, 16))
    emb = objective.model.base_model.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    hidden = objective.model.base_model(inputs_embeds=emb).last_hidden_state
    (hidden[0, 6] * torch.randn(ENCODER.hidden)).sum().backward()
    assert (emb.grad[0].abs().sum(-1)[7:] > 0).all()


@both_positions
@pytest.mark.parametrize("cls", [MLMObjective, CLMObjective, NSPObjective, MLMNSPObjective])
def test_each_objective_overfits_a_fixed_batch(cls, position):
    objective = _objective(cls, position)
    family = {"learned": "bert", "rotary": "roformer"}[position]
    assert objective.model.config.model_type == family
    losses = overfit(objective, objective.collate(_examples(objective)))
    assert losses[-1] < 0.35 * losses[0], (losses[0], losses[-1])


def overfit(objective, batch, steps: int = 80) -> list[float]:
    """The losses of ``steps`` AdamW steps on one fixed batch."""
    opt = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = objective.compute_loss(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_mlm_nsp_logs_each_term_and_weights_the_total():
    objective = _objective(MLMNSPObjective, weights={"mlm": 1.0, "nsp": 3.0})
    out = objective.compute_loss(objective.collate(_examples(objective)))
    assert set(out.terms) == {"mlm_loss", "nsp_loss"}
    expected = out.terms["mlm_loss"][0] + 3.0 * out.terms["nsp_loss"][0]
    assert torch.allclose(out.loss, expected)


def test_nsp_pairs_are_balanced_and_well_formed():
    pairs = make_nsp_pairs(_docs(400), 48, 0, SPECIAL["cls"], SPECIAL["sep"])
    labels = [p["next_sentence_label"] for p in pairs]
    assert len(pairs) > 300
    assert abs(sum(labels) / len(labels) - 0.5) < 0.06
    for p in pairs:
        ids, types = p["input_ids"], p["token_type_ids"]
        assert len(ids) == len(types) <= 48
        assert ids[0] == SPECIAL["cls"] and ids[-1] == SPECIAL["sep"]
        first_b = types.index(1)
        assert ids[first_b - 1] == SPECIAL["sep"] and ids.count(SPECIAL["sep"]) == 2
        assert types == sorted(types) and first_b >= 2  # A then B, neither empty
        assert len(ids) - first_b >= 2


def test_nsp_true_pairs_continue_the_document():
    docs = _docs(50)
    pairs = make_nsp_pairs(docs, 48, 0, SPECIAL["cls"], SPECIAL["sep"])
    streams = [d["tokens"] for d in docs]
    for p in pairs:
        if p["next_sentence_label"] == 0:
            body = [t for t in p["input_ids"] if t not in (SPECIAL["cls"], SPECIAL["sep"])]
            # A+B (untruncated) is a contiguous run of one document's tokens
            assert any(_contains(s, body[:5]) for s in streams)


def _contains(seq, sub):
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_nsp_needs_document_boundaries():
    one_sentence_docs = datasets.Dataset.from_list(
        [{"doc_id": str(i), "tokens": [5, 6, 7, 3], "sentence_lengths": [3]} for i in range(20)]
    )
    with pytest.raises(PretrainlabError, match="sentence boundaries"):
        make_nsp_pairs(one_sentence_docs, 48, 0, SPECIAL["cls"], SPECIAL["sep"])
