"""The bare encoder as an objective's model, for objectives whose heads are their own (ELECTRA's
discriminator, SimCSE): the family's base class, exported as it is (``AutoModel`` loads it)."""

from __future__ import annotations

import torch
from transformers import BertModel, RoFormerModel

BODIES = {"bert": BertModel, "roformer": RoFormerModel}


def without_pooler(model: torch.nn.Module) -> None:
    """Drop BERT's pooler (dense + tanh on [CLS]) where no loss reads it: a trainable weight
    no loss reaches stops DDP, and the export would carry an untrained layer. ``AutoModel``
    gives a loaded encoder a fresh pooler, as it does for an MLM export."""
    if getattr(model, "pooler", None) is not None:
        model.pooler = None


def init_bert_(module: torch.nn.Module) -> None:
    """BERT's initialisation of a head written here: normal(0.02) weights, zero biases,
    LayerNorm at identity."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.02)
            torch.nn.init.zeros_(layer.bias)
        elif isinstance(layer, torch.nn.LayerNorm):
            torch.nn.init.ones_(layer.weight)
            torch.nn.init.zeros_(layer.bias)


def bert_linears(*shapes: tuple[int, int]) -> list[torch.nn.Linear]:
    """Linear layers of these (in, out) shapes, made in this order, then initialised as
    BERT's (:func:`init_bert_`): a head's layers."""
    layers = [torch.nn.Linear(*shape) for shape in shapes]
    for layer in layers:
        init_bert_(layer)
    return layers


def set_hidden_dropout(model: torch.nn.Module, p: float) -> None:
    """Set the hidden-state dropout (embeddings, attention output, feed-forward output; what
    ``hidden_dropout_prob`` sets) of a BERT or RoFormer body to ``p``; attention-probability
    dropout stays as the encoder config has it."""
    for name, layer in model.named_modules():
        if isinstance(layer, torch.nn.Dropout) and not name.endswith("self.dropout"):
            layer.p = p
