"""One encoder definition shared by every objective.

The encoder is a ``transformers`` post-LN BERT-style network built from a config (never
downloaded). ``position`` picks how it knows word order, and with it the transformers family:

- ``learned``: BERT (absolute learned position embeddings, SDPA / flash attention): the
  original recipe and the fast path on GPUs.
- ``rotary``: RoFormer (the same block with rotary position embeddings in every attention
  layer). Measured on the embedded corpus, a 2 x 128 BERT spends its first thousand-odd MLM
  steps near the unigram baseline (held-out masked-token accuracy 0.165 after 1,250 steps),
  while the rotary one of the same size is at 0.27 after 250 and 0.66 after 2,000 steps: a
  masked position must find its neighbours through attention, and relative positions make
  that learnable at once. The CPU presets use it so short runs leave MLM's plateau.

Objectives pick the head class per family (``BertForMaskedLM`` / ``RoFormerForMaskedLM``, ...)
and whether attention is causal; everything else about the network comes from
:class:`EncoderSpec`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from transformers import BertConfig, PretrainedConfig, RoFormerConfig

from pretrainlab.errors import PretrainlabError

# what pool() reads; probe.pooling=auto picks one per run (probes/checkpoint._auto_pooling)
POOLINGS = ("cls", "last", "mean")


def pool(hidden: Tensor, attention_mask: Tensor, pooling: str) -> Tensor:
    """(B, T, H) -> (B, H): the [CLS] (first) token, the last real token or the mean of the
    real tokens; shared by probes and the objectives whose loss reads a pooled vector.
    Assumes right padding."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = attention_mask.sum(1) - 1  # (B,) index of the last non-pad token
        return hidden[torch.arange(hidden.size(0)), last]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


FAMILIES = {"learned": "bert", "rotary": "roformer"}  # position -> transformers model_type


def _require(ok: bool, key: str, value: object, accepted: str) -> None:
    if not ok:
        raise PretrainlabError(f"encoder.{key}={value!r} is not valid: expected {accepted}.")


@dataclass(kw_only=True)
class EncoderSpec:
    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    max_positions: int
    dropout: float = 0.1
    attention_dropout: float = 0.0  # >0 makes CPU SDPA fall back to its slow math kernel
    position: str = "learned"  # learned (BERT) | rotary (RoFormer): see the module docstring

    def __post_init__(self) -> None:
        for key in ("layers", "hidden", "heads", "ffn", "max_positions"):
            value = getattr(self, key)
            _require(isinstance(value, int) and value >= 1, key, value, "a positive integer")
        for key in ("dropout", "attention_dropout"):
            value = getattr(self, key)
            _require(
                isinstance(value, (int, float)) and 0 <= value < 1, key, value, "a number in [0, 1)"
            )
        _require(
            self.position in FAMILIES,
            "position",
            self.position,
            f"one of {', '.join(FAMILIES)}",
        )
        _require(
            self.hidden % self.heads == 0,
            "heads",
            self.heads,
            f"a divisor of encoder.hidden={self.hidden}",
        )

    @property
    def family(self) -> str:
        """The transformers ``model_type`` of this encoder: ``bert`` or ``roformer``."""
        return FAMILIES[self.position]

    def hf_config(self, vocab_size: int, pad_token_id: int, causal: bool) -> PretrainedConfig:
        """The transformers config for this encoder; ``causal`` makes attention left-to-right."""
        shared = dict(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            intermediate_size=self.ffn,
            max_position_embeddings=self.max_positions,
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.attention_dropout,
            pad_token_id=pad_token_id,
            is_decoder=causal,
        )
        if self.family == "roformer":  # RoFormer's attention is its own (no SDPA variant)
            return RoFormerConfig(embedding_size=self.hidden, **shared)
        return BertConfig(attn_implementation="sdpa", **shared)

    def to_dict(self) -> dict:
        return asdict(self)

    def non_embedding_params(self) -> int:
        """Weights inside the transformer blocks (attention, feed-forward, norms)."""
        h, f = self.hidden, self.ffn
        per_layer = 4 * h * h + 4 * h + 2 * h * f + h + f + 4 * h
        return self.layers * per_layer

    def flops_per_token(self, seq_len: int, vocab_size: int, predicted_fraction: float) -> float:
        """Training FLOPs per input token (forward + backward), PaLM appendix B style.

        6 x non-embedding params, plus the attention score/value matmuls (12 L H T), plus the
        output projection (with the MLM head's transform) counted only at predicted positions.
        """
        h = self.hidden
        body = 6 * self.non_embedding_params() + 12 * self.layers * h * seq_len
        head = 6 * (vocab_size * h + h * h) * predicted_fraction
        return float(body + head)
