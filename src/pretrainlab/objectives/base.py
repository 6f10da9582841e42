"""What every objective shares: the model build, optimizer, schedule, metrics and logging.

A subclass declares its head class, data format and attention type, and implements
``collate`` (examples -> batch tensors) and ``compute_loss`` (batch -> loss and statistics).
Train and validation run the same ``shared_step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from pretrainlab.data.datamodule import ExampleKey
from pretrainlab.models.encoder import EncoderSpec
from pretrainlab.objectives.knobs import Knob, check_knobs, knob_hparams, knob_table
from pretrainlab.objectives.optim import OptimSpec, lr_schedule, optim_hparams
from pretrainlab.objectives.scoring import CandidateScorer


@dataclass
class StepOutput:
    """What ``compute_loss`` returns: the loss to optimise, named loss terms (with the number
    of items each averages over) and ``name -> (logits, targets)`` for accuracies (the argmax
    is taken only in validation, never on the training hot path)."""

    loss: Tensor
    terms: dict[str, tuple[Tensor, int]]
    accuracy: dict[str, tuple[Tensor, Tensor]]


class PretrainObjective(pl.LightningModule):
    name: ClassVar[str]
    hf_classes: ClassVar[dict[str, type]]  # transformers model_type -> model class with the head
    data_format: ClassVar[str] = "blocks"  # "blocks" (packed) or "pairs" (NSP segments)
    causal: ClassVar[bool] = False
    uses_segments: ClassVar[bool] = False
    trains_cls: ClassVar[bool] = False  # a loss reads the first token's output (a pair head)
    loss_terms: ClassVar[tuple[str, ...]] = ()
    ppl_term: ClassVar[str | None] = None
    accuracies: ClassVar[dict[str, str | int]] = {}  # name -> number of classes or "vocab"
    knobs: ClassVar[dict[str, Knob]] = {}  # this class's own knobs (:mod:`.knobs`)

    def __init__(
        self,
        *,
        encoder: EncoderSpec,
        vocab_size: int,
        special_ids: dict[str, int],
        optim: OptimSpec,
        seed: int = 0,
        tokenizer: Any = None,
        **values: Any,
    ):
        """``tokenizer``: the run's, for a collation that reads the vocabulary (whole-word
        masking); objectives built without one (tests) collate from ids alone. ``values``: the
        objective's knobs (:mod:`.knobs`), checked and kept as attributes of the same name."""
        super().__init__()
        if unknown := sorted(set(values) - set(knob_table(type(self)))):
            name = type(self).__name__
            raise TypeError(f"{name} got an unexpected keyword argument {unknown[0]!r}")
        for name, value in self.validate(**values).items():
            setattr(self, name, value)
        self.encoder_spec, self.optim_spec, self.seed = encoder, optim, seed
        self.tokenizer = tokenizer
        self.vocab_size, self.special_ids = vocab_size, dict(special_ids)
        self.save_hyperparameters(
            {
                "objective": self.name,
                "encoder": encoder.to_dict(),
                "optim": optim_hparams(optim),
                "vocab_size": vocab_size,
                "seed": seed,
                **self.objective_hparams(),
            }
        )
        config = encoder.hf_config(vocab_size, special_ids["pad"], causal=self.causal)
        self.model = self.hf_class(config)
        self.add_heads(config)
        self.val_terms = torch.nn.ModuleDict({k: MeanMetric() for k in ("loss", *self.loss_terms)})
        self.val_acc = torch.nn.ModuleDict(
            {
                name: MulticlassAccuracy(
                    num_classes=vocab_size if n == "vocab" else n,
                    average="micro",
                    validate_args=False,
                )
                for name, n in self.accuracies.items()
            }
        )

    # --- what each objective provides -------------------------------------------------------
    @property
    def hf_class(self) -> type:
        """The transformers class (encoder + this objective's head) for the encoder's family."""
        return self.hf_classes[self.encoder_spec.family]

    def add_heads(self, config: Any) -> None:
        """Heads the transformers class of this family lacks (RoFormer has no NSP head)."""

    def extra_heads(self) -> dict[str, torch.nn.Module]:
        """The heads :meth:`add_heads` made, by name: saved beside the model as NAME.safetensors."""
        return {}

    def save(self, folder: Path) -> None:
        """The model with its head (save_pretrained, safetensors) and any extra head."""
        self.model.save_pretrained(str(folder), safe_serialization=True)
        for name, head in self.extra_heads().items():
            save_file(head.state_dict(), str(Path(folder) / f"{name}.safetensors"))

    def load(self, folder: Path) -> None:
        """The weights :meth:`save` wrote (this module's config must match theirs)."""
        self.model = self.hf_class.from_pretrained(str(folder))
        for name, head in self.extra_heads().items():
            head.load_state_dict(load_file(str(Path(folder) / f"{name}.safetensors")))

    def describe(self) -> dict[str, Any]:
        """What the rest of the package needs to know about this objective, written into
        run.json: probes, pooling and the study read these fields, never the objective's name."""
        return {
            "objective": self.name,
            "causal": self.causal,
            "uses_segments": self.uses_segments,
            "trains_cls": self.trains_cls,
            "data_format": self.data_format,
            "probe_pooling": self.probe_pooling(),  # what probe.pooling=auto pools from it
            "loss_terms": list(self.loss_terms),
            "lm_head": self.candidate_scorer() is not None,
        }

    def probe_pooling(self) -> str:
        """What ``probe.pooling=auto`` pools from this objective's encoder (recorded in
        run.json): the token its loss trains to summarise the input. Causal attention: the
        last token, the only one that sees it all; [CLS] where a loss reads it; otherwise the
        mean of every token, since a token-level loss (MLM) puts nothing on [CLS]."""
        if self.causal:
            return "last"
        return "cls" if self.trains_cls else "mean"

    @classmethod
    def candidate_scorer(cls) -> CandidateScorer | None:
        """How this objective's model, with its own head, scores candidates for a prompt's
        blank (the zero-shot ``cloze`` probe; :mod:`pretrainlab.objectives.scoring`). None:
        the objective has no language-model head, so that probe does not apply."""
        return None

    @classmethod
    def validate(cls, **objective_args: Any) -> dict[str, Any]:
        """Check the objective's own config values before anything expensive is built: its
        knobs' values to keep, each at its default where absent (other keys are ignored)."""
        return check_knobs(cls, objective_args)

    def objective_hparams(self) -> dict[str, Any]:
        """The knobs' values as the checkpoint's hyperparameters record them."""
        owner = type(self)
        return knob_hparams(owner, {name: getattr(self, name) for name in knob_table(owner)})

    def collate(self, examples: list[tuple[ExampleKey, Any]]) -> dict[str, Tensor]:
        """Examples -> batch tensors. Each example comes with its key (an index, or
        ``(epoch, index)`` in training) for randomness that must not depend on the batch."""
        raise NotImplementedError

    def compute_loss(self, batch: dict[str, Tensor]) -> StepOutput:
        raise NotImplementedError

    @classmethod
    def predicted_share(cls, **params: Any) -> float:
        """Share of input positions the vocabulary head projects, from the objective's config
        values (the FLOPs count of a run and of a compute budget)."""
        return 0.0

    @classmethod
    def flops_per_token(
        cls, encoder: EncoderSpec, seq_len: int, vocab_size: int, **params: Any
    ) -> float:
        """Training FLOPs per input token of one step (a run's MFU and a compute budget): the
        encoder's count at :meth:`predicted_share`, then each of :meth:`extra_flops`."""
        count = encoder.flops_per_token(seq_len, vocab_size, cls.predicted_share(**params))
        return sum(cls.extra_flops(encoder, seq_len, vocab_size, **params), count)

    @classmethod
    def extra_flops(cls, encoder: EncoderSpec, seq: int, vocab: int, **params: Any) -> list[float]:
        """FLOPs per token beyond the encoder's count, added to it in this order: a second
        network or a second pass over the batch (ELECTRA, SimCSE)."""
        return []

    # --- shared ------------------------------------------------------------------------------
    def encode(self, batch: dict[str, Tensor]) -> Any:
        """The shared encoder (``self.model.base_model``: the BERT or RoFormer body) on a batch;
        attention follows the config."""
        return self.model.base_model(
            input_ids=batch["input_ids"],
            attention_mask=batch.get("attention_mask"),
            token_type_ids=batch.get("token_type_ids"),
            use_cache=False,
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.compute_loss(batch)
        self.log("train/loss", out.loss, on_step=True, on_epoch=False)
        if self._trainer is not None and self.lr_schedulers() is not None:
            self.log(
                "train/lr", self.lr_schedulers().get_last_lr()[0], on_step=True, on_epoch=False
            )
        if len(out.terms) > 1:
            for name, (value, _) in out.terms.items():
                self.log(f"train/{name}", value, on_step=True, on_epoch=False)
        return out.loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self.compute_loss(batch)
        self.val_terms["loss"].update(out.loss.detach())
        for name, (value, weight) in out.terms.items():
            self.val_terms[name].update(value.detach(), weight)
        for name, (logits, target) in out.accuracy.items():
            self.val_acc[name].update(logits.argmax(-1).flatten(), target.flatten())

    def on_validation_epoch_end(self) -> None:
        values = {f"val/{k}": m.compute() for k, m in self.val_terms.items()}
        values.update({f"val/{k}": m.compute() for k, m in self.val_acc.items()})
        if self.ppl_term is not None:
            values["val/ppl"] = torch.exp(values[f"val/{self.ppl_term}"])
        self.log_dict(values, prog_bar=False)
        for m in [*self.val_terms.values(), *self.val_acc.values()]:
            m.reset()

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        """Norm clipping done here so it also works with fused AdamW under bf16-mixed, where
        Lightning's precision plugin refuses it (bf16 has no grad scaler: clipping is exact)."""
        if gradient_clip_val:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def configure_optimizers(self) -> Any:
        # Decay by tensor rank (nanoGPT): matrices decay; biases and norm weights do not.
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {
                "params": [p for p in params if p.dim() >= 2],
                "weight_decay": self.optim_spec.weight_decay,
            },
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        spec = self.optim_spec
        opt = torch.optim.AdamW(
            groups,
            lr=spec.lr,
            betas=spec.betas,
            eps=spec.eps,
            fused=self.device.type in ("cpu", "cuda"),
        )
        total = max(1, self.trainer.max_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule(spec, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
