"""The timed training paths of ``benchmarks/throughput.py``: pretrainlab through Lightning, a
bare PyTorch loop doing the same work, and the HF ``Trainer`` (run_mlm.py / run_clm.py style).

Every path is timed the same way: a :class:`StepClock` ticks at the end of each optimizer step,
and throughput is measured from the end of the last warm-up step to the end of the last step,
so data loading, collation, hooks and logging between steps are all inside the measurement.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback

from pretrainlab.callbacks import History, Throughput
from pretrainlab.config import build
from pretrainlab.data.datamodule import PretrainDataModule
from pretrainlab.data.prepare import PretrainData
from pretrainlab.objectives.optim import lr_schedule
from pretrainlab.recipe import Recipe


@dataclass
class Setting:
    """What every path shares: one data build, one encoder, one batch size, one device."""

    parts: Recipe
    data: PretrainData
    warmup: int
    steps: int
    device: str  # "cpu" | "cuda"
    precision: str  # "32-true" | "bf16-mixed"
    workdir: Path

    @property
    def total(self) -> int:
        return self.warmup + self.steps

    @property
    def bf16(self) -> bool:
        return self.precision.startswith("bf16")


@dataclass
class StepClock:
    """perf_counter at the end of each optimizer step (device synchronised at the two ends of
    the measured window only, so a GPU keeps running ahead of the host in between)."""

    device: str
    warmup: int
    steps: int
    ends: list[float] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)  # minor page faults so far (allocator churn)

    def tick(self) -> None:
        n = len(self.ends) + 1  # steps finished, this one included
        if self.device == "cuda" and n in (self.warmup, self.warmup + self.steps):
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    def result(self, tokens: list[int]) -> dict[str, float]:
        """``tokens[i]``: input positions of step ``i``; returns rates over the measured steps."""
        w, s = self.warmup, self.steps
        if len(self.ends) < w + s:
            raise RuntimeError(f"only {len(self.ends)} of {w + s} steps were recorded")
        elapsed = self.ends[w + s - 1] - self.ends[w - 1]
        durations = [
            b - a for a, b in zip(self.ends[w - 1 : w + s - 1], self.ends[w : w + s], strict=True)
        ]
        return {
            "tokens_per_s": sum(tokens[w : w + s]) / elapsed,
            "elapsed_s": elapsed,
            "step_s_median": statistics.median(durations),
            "page_faults_per_step": (self.faults[w + s - 1] - self.faults[w - 1]) / s,
        }


def _objective(cfg: DictConfig, st: Setting) -> pl.LightningModule:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    return Recipe.from_cfg(cfg).objective(st.data)


def _datamodule(cfg: DictConfig, st: Setting, objective: pl.LightningModule) -> PretrainDataModule:
    return Recipe.from_cfg(cfg).datamodule(st.data, objective)


def _clip_value(cfg: DictConfig) -> float:
    """The trainer config's gradient_clip_val (1.0 by default), used by every path."""
    return float(cfg.trainer.get("gradient_clip_val") or 0.0)


def _flops(st: Setting, objective: pl.LightningModule) -> float:
    return objective.flops_per_token(
        st.parts.encoder, st.parts.seq_len, len(st.data.tokenizer), **objective.objective_hparams()
    )


# --- 1. pretrainlab: the real step through the Lightning Trainer -------------------------------
class _LightningClock(pl.Callback):
    def __init__(self, clock: StepClock):
        self.clock = clock

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.clock.tick()


BF16_CLIP_WORKAROUND = (
    "bf16-mixed: Lightning's MixedPrecision plugin refuses gradient clipping with a fused "
    "optimizer; the benchmark clips with torch.nn.utils.clip_grad_norm_ in "
    "configure_gradient_clipping (no grad scaler in bf16, so this is exact)"
)


def _clip_directly(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
    if gradient_clip_val:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)


def run_pretrainlab(cfg: DictConfig, st: Setting, run_callbacks: bool = True) -> dict[str, Any]:
    """As ``pretrain.pretrain`` builds it, minus logger, checkpointing and validation (the
    Throughput and History callbacks stay: they are part of every real run; ``run_callbacks``
    False drops them, to tell their cost from Lightning's own)."""
    objective = _objective(cfg, st)
    workaround = None
    overridden = type(objective).configure_gradient_clipping
    if st.bf16 and overridden is pl.LightningModule.configure_gradient_clipping:
        objective.configure_gradient_clipping = types.MethodType(_clip_directly, objective)
        workaround = BF16_CLIP_WORKAROUND
    clock = StepClock(st.device, st.warmup, st.steps)
    every = cfg.trainer.log_every_n_steps
    callbacks = [
        Throughput(_flops(st, objective), every),
        History(st.workdir / "history.csv", every),
    ]
    callbacks = [*(callbacks if run_callbacks else []), _LightningClock(clock)]
    trainer_cfg = cfg.trainer.copy()
    trainer_cfg.update(
        max_steps=st.total,
        limit_val_batches=0,
        enable_progress_bar=False,
        precision=st.precision,
        accelerator="gpu" if st.device == "cuda" else st.device,
    )
    trainer = build(
        trainer_cfg,
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=False,
        default_root_dir=str(st.workdir),
    )
    trainer.fit(objective, datamodule=_datamodule(cfg, st, objective))
    n = st.parts.batch_size * st.parts.seq_len
    out = {**clock.result([n] * st.total), "flops_per_token": _flops(st, objective)}
    return {**out, "workaround": workaround} if workaround else out


# --- 2. bare PyTorch: same model, batches, loss, optimizer, clipping ----------------------------
def run_bare(cfg: DictConfig, st: Setting) -> dict[str, Any]:
    objective = _objective(cfg, st).to(st.device)
    objective.train()
    loader = _datamodule(cfg, st, objective).train_dataloader()
    spec = objective.optim_spec
    params = [p for p in objective.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": spec.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(
        groups, lr=spec.lr, betas=spec.betas, eps=spec.eps, fused=st.device in ("cpu", "cuda")
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule(spec, st.total))
    autocast = (
        torch.autocast(st.device, dtype=torch.bfloat16) if st.bf16 else contextlib.nullcontext()
    )
    clip = _clip_value(cfg)
    clock, batches = StepClock(st.device, st.warmup, st.steps), iter(loader)
    for _ in range(st.total):
        batch = {k: v.to(st.device, non_blocking=True) for k, v in next(batches).items()}
        with autocast:
            loss = objective.compute_loss(batch).loss
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        clock.tick()
    n = st.parts.batch_size * st.parts.seq_len
    return {**clock.result([n] * st.total), "flops_per_token": _flops(st, objective)}


# --- 3. HF Trainer + DataCollatorForLanguageModeling (dense vocabulary projection) -------------
def hf_lines(docs: Any, tokenizer: Any, seq_len: int) -> list[dict[str, list[int]]]:
    """run_mlm.py --line_by_line: one document per line (like a WikiText paragraph), with
    [CLS]/[SEP], truncated to ``seq_len``; padding happens per batch in the collator."""
    lines = [" ".join(sentences) for sentences in docs["sentences"]]
    enc = tokenizer(
        lines,
        truncation=True,
        max_length=seq_len,
        return_special_tokens_mask=True,
        return_token_type_ids=False,
        return_attention_mask=False,
    )
    return [
        {"input_ids": ids, "special_tokens_mask": m}
        for ids, m in zip(enc["input_ids"], enc["special_tokens_mask"], strict=True)
    ]


def hf_blocks(blocks: torch.Tensor, special: list[int], with_mask: bool) -> list[dict]:
    """run_mlm.py / run_clm.py group_texts output: here the very blocks pretrainlab trains on."""
    is_special = torch.isin(blocks, torch.tensor(special))
    return [
        {"input_ids": b, **({"special_tokens_mask": m} if with_mask else {})}
        for b, m in zip(blocks.tolist(), is_special.long().tolist(), strict=True)
    ]


class _CountingCollator:
    """Wraps the HF collator to record positions and non-pad tokens of each batch, in order."""

    def __init__(self, collator: DataCollatorForLanguageModeling):
        self.collator, self.positions, self.nonpad = collator, [], []

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collator(examples)
        self.positions.append(batch["input_ids"].numel())
        mask = batch.get("attention_mask")
        self.nonpad.append(int(mask.sum()) if mask is not None else batch["input_ids"].numel())
        return batch


class _HFClock(TrainerCallback):
    def __init__(self, clock: StepClock):
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.clock.tick()


def run_hf(cfg: DictConfig, st: Setting, examples: list[dict], causal: bool) -> dict[str, Any]:
    spec, tok = st.parts.optim, st.data.tokenizer
    config = st.parts.encoder.hf_config(len(tok), st.data.special_ids["pad"], causal=causal)
    torch.manual_seed(cfg.seed)
    model = (AutoModelForCausalLM if causal else AutoModelForMaskedLM).from_config(config)
    mask_rate = float(cfg.objective.get("mask_rate", 0.15))
    collator = _CountingCollator(
        DataCollatorForLanguageModeling(
            tok, mlm=not causal, mlm_probability=mask_rate if not causal else None, seed=cfg.seed
        )
    )
    args = TrainingArguments(
        output_dir=str(st.workdir / "hf"),
        max_steps=st.total,
        per_device_train_batch_size=st.parts.batch_size,
        learning_rate=spec.lr,
        weight_decay=spec.weight_decay,
        adam_beta1=spec.betas[0],
        adam_beta2=spec.betas[1],
        adam_epsilon=spec.eps,
        warmup_steps=spec.warmup_steps,
        lr_scheduler_type="linear",
        max_grad_norm=_clip_value(cfg),
        optim="adamw_torch_fused",
        use_cpu=st.device == "cpu",
        bf16=st.bf16,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_steps=cfg.trainer.log_every_n_steps,
        dataloader_drop_last=True,
        dataloader_num_workers=cfg.data.num_workers,
        dataloader_pin_memory=st.device == "cuda",
        remove_unused_columns=False,
        seed=cfg.seed,
    )
    clock = StepClock(st.device, st.warmup, st.steps)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=collator,
        callbacks=[_HFClock(clock)],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    out = clock.result(collator.positions)
    window = slice(st.warmup, st.total)
    elapsed = out["elapsed_s"]
    out["nonpad_tokens_per_s"] = sum(collator.nonpad[window]) / elapsed
    mean_len = sum(collator.positions[window]) / (st.steps * st.parts.batch_size)
    out["mean_seq_len"] = mean_len
    # Dense head: the FLOPs HF executes project every position (predicted fraction 1).
    out["flops_per_token"] = st.parts.encoder.flops_per_token(round(mean_len), len(tok), 1.0)
    return out
