"""ELECTRA (Clark et al. 2020): replaced-token detection. A small masked-LM generator fills
the masked positions with tokens it samples; the discriminator, the exported encoder, tells
for every position whether its token was replaced.

- Generator: the discriminator's family at ``generator_ratio`` of its width (ELECTRA's
  generator-size knob, 0.25 by default): same depth and head size, ``round(ratio x heads)``
  heads (at least one), feed-forward scaled alike. ELECTRA shares the token embeddings: the
  generator reads the discriminator's embedding table through a linear projection to its own
  width (ELECTRA's ``embeddings_project``; none at ratio 1) and predicts through the same
  table (ELECTRA's generator head: dense to the embedding width, GELU, LayerNorm, then the
  tied embedding matrix plus a bias). Learned (BERT) position embeddings stay the
  generator's own (they have its width); rotary positions have no weights to share. It is
  saved beside the export as ``generator.safetensors``.
- Replacements: the masked positions (BERT's 80/10/10 masking of the generator's input) take
  a token sampled from the generator's softmax (temperature 1, no gradient through the
  sample) by inverse CDF from one uniform per position, drawn from the example's own stream
  (:func:`pretrainlab.seeds.replacement`): the same sample for the same example, generator
  and epoch whatever batch, worker or resumed position draws it. A sample equal to the
  original is not a replacement (ELECTRA's labels).
- Loss: generator MLM loss + ``disc_weight`` (ELECTRA: 50) x the discriminator's binary
  cross-entropy over every position. The discriminator head is ELECTRA's (dense, GELU, one
  logit), written here rather than taken from ``ElectraForPreTraining``: that class holds an
  ELECTRA body, not the BERT or RoFormer body every objective shares and probes load; saved
  as ``discriminator_head.safetensors``.
- FLOPs (:meth:`ElectraObjective.extra_flops`): both networks train on every token, so
  a step counts the discriminator body and its head at every position, the generator body,
  its input projection at every position, and its vocabulary head at the masked share: an
  equal-FLOPs study gives ELECTRA fewer steps than MLM for the generator's cost.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pretrainlab import seeds
from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.models.encoder import EncoderSpec
from pretrainlab.objectives.base import PretrainObjective, StepOutput
from pretrainlab.objectives.body import BODIES, bert_linears, init_bert_, without_pooler
from pretrainlab.objectives.knobs import Knob
from pretrainlab.objectives.mlm import IGNORE, MaskedTokens


def generator_spec(encoder: EncoderSpec, ratio: float) -> EncoderSpec:
    """The generator's shape: the encoder's depth and head size at ``ratio`` of its heads."""
    head_size = encoder.hidden // encoder.heads
    heads = max(1, round(ratio * encoder.heads))
    hidden = heads * head_size
    ffn = max(1, round(encoder.ffn * hidden / encoder.hidden))
    return replace(encoder, name=f"{encoder.name}-generator", hidden=hidden, heads=heads, ffn=ffn)


class Generator(torch.nn.Module):
    """ELECTRA's generator on shared token embeddings (see the module docstring)."""

    def __init__(self, spec: EncoderSpec, embedding_size: int, vocab_size: int, body: type):
        super().__init__()
        # tokens arrive as the shared embeddings: the body's own table is one frozen row
        self.body = body(spec.hf_config(1, 0, causal=False))
        without_pooler(self.body)
        self.body.get_input_embeddings().requires_grad_(False)
        self.project = (
            torch.nn.Linear(embedding_size, spec.hidden)
            if spec.hidden != embedding_size
            else torch.nn.Identity()
        )
        self.transform = torch.nn.Sequential(
            torch.nn.Linear(spec.hidden, embedding_size),
            torch.nn.GELU(),
            torch.nn.LayerNorm(embedding_size, eps=1e-12),
        )
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))
        init_bert_(self.project)
        init_bert_(self.transform)

    def forward(self, embeddings: torch.nn.Embedding, ids: Tensor, selected: Tensor) -> Tensor:
        """Logits (M, V) at the ``selected`` positions (M of them) of the batch ``ids``."""
        hidden = self.body(inputs_embeds=self.project(embeddings(ids)), use_cache=False)
        picked = self.transform(hidden.last_hidden_state[selected])  # (M, E)
        return F.linear(picked, embeddings.weight, self.bias)  # tied output embeddings


class DiscriminatorHead(torch.nn.Module):
    """ELECTRA's discriminator head: dense, GELU, one replaced-or-not logit per position."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense, self.out = bert_linears((hidden, hidden), (hidden, 1))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.out(F.gelu(self.dense(hidden))).squeeze(-1)  # (B, T)


def sample_tokens(logits: Tensor, uniform: Tensor) -> Tensor:
    """One token per row of ``logits`` (M, V), sampled by inverse CDF at ``uniform`` (M,)."""
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(-1)  # (M, V)
    picked = torch.searchsorted(cdf, uniform.unsqueeze(-1).to(cdf.dtype)).squeeze(-1)
    return picked.clamp_max(logits.shape[-1] - 1)


def replace_tokens(
    original: Tensor, selected: Tensor, logits: Tensor, uniform: Tensor
) -> tuple[Tensor, Tensor]:
    """(discriminator input, replaced labels): samples at ``selected``, the original elsewhere;
    a position is replaced exactly where its token differs from the original."""
    corrupted = original.clone()
    corrupted[selected] = sample_tokens(logits.detach(), uniform[selected])
    return corrupted, (corrupted != original).float()


class ElectraObjective(MaskedTokens, PretrainObjective):
    name = "electra"
    hf_classes = BODIES  # the discriminator body is the exported encoder
    loss_terms = ("generator_loss", "rtd_loss")
    accuracies = {"generator_acc": "vocab", "rtd_acc": 2}
    knobs = {
        "generator_ratio": Knob(0.25, " (ELECTRA uses 0.25)"),
        "disc_weight": Knob(50.0, " (ELECTRA uses 50)"),
    }
    generator_ratio: float
    disc_weight: float

    @classmethod
    def candidate_scorer(cls) -> None:
        return None  # the exported discriminator has no language-model head

    @classmethod
    def predicted_share(cls, **params: Any) -> float:
        return 0.0  # the discriminator (the encoder) has no vocabulary head

    @classmethod
    def extra_flops(cls, encoder: EncoderSpec, seq: int, vocab: int, **params: Any) -> list[float]:
        """Beside the discriminator body: its head (dense h x h, one logit) at every position;
        generator body and input projection at every position; its head (dense to the
        embedding width, tied vocabulary projection) at the masked share. Forward + backward:
        6 per weight."""
        h = encoder.hidden
        ratio = params.get("generator_ratio", cls.knobs["generator_ratio"].default)
        small = generator_spec(encoder, ratio)
        project = 6 * h * small.hidden if small.hidden != h else 0
        head = 6 * (small.hidden * h + vocab * h) * super().predicted_share(**params)
        return [6 * (h * h + h), small.flops_per_token(seq, vocab, 0.0), project, head]

    def add_heads(self, config: Any) -> None:
        without_pooler(self.model)
        small = generator_spec(self.encoder_spec, self.generator_ratio)
        self.generator = Generator(small, config.hidden_size, self.vocab_size, self.hf_class)
        self.discriminator_head = DiscriminatorHead(config.hidden_size)

    def extra_heads(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator_head": self.discriminator_head}

    def collate(self, examples: list[tuple[ExampleKey, Tensor]]) -> dict[str, Tensor]:
        ids = torch.stack([x for _, x in examples])  # (B, T)
        inputs, labels = self.mask(ids, examples)
        draws = [
            torch.rand(ids.shape[1], generator=seeds.replacement(self.seed, key, self.dynamic_masking))
            for key, _ in examples
        ]  # fmt: skip
        return {"input_ids": inputs, "labels": labels, "replacement_draw": torch.stack(draws)}

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        labels = batch["labels"]
        selected = labels != IGNORE  # (B, T)
        embeddings = self.model.get_input_embeddings()
        logits = self.generator(embeddings, batch["input_ids"], selected)  # (M, V)
        target = labels[selected]
        generator_loss = F.cross_entropy(logits.float(), target)
        original = torch.where(selected, labels, batch["input_ids"])
        corrupted, replaced = replace_tokens(original, selected, logits, batch["replacement_draw"])
        hidden = self.encode({**batch, "input_ids": corrupted}).last_hidden_state
        rtd = self.discriminator_head(hidden)  # (B, T) logits: replaced or not
        rtd_loss = F.binary_cross_entropy_with_logits(rtd.float(), replaced)
        loss = generator_loss + self.disc_weight * rtd_loss
        return StepOutput(
            loss,
            {
                "generator_loss": (generator_loss, target.numel()),
                "rtd_loss": (rtd_loss, rtd.numel()),
            },
            {
                "generator_acc": (logits, target),
                "rtd_acc": (torch.stack([torch.zeros_like(rtd), rtd], -1), replaced.long()),
            },
        )
