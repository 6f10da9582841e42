"""One way to build a pretraining run, used by everything that builds one.

``Recipe.from_cfg(cfg)`` validates the composed config (the rules in
:mod:`pretrainlab.config`) and builds everything cheap, so bad input fails before any data or
model work; ``prepare()`` builds the data (cached) and the objective; ``build()`` the
datamodule, callbacks and trainer around them. ``pretrainlab pretrain``, the forgetting
monitor, the study's budget planner and the throughput benchmark all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from pretrainlab.budget import ComputeBudget, world_size
from pretrainlab.callbacks import History, StepProgress, StepProgressBar, Throughput
from pretrainlab.config import build, check_pretrain
from pretrainlab.data.corpus import Corpus
from pretrainlab.data.datamodule import PretrainDataModule
from pretrainlab.data.prepare import PretrainData, prepare_pretraining_data
from pretrainlab.data.tokenizer import TokenizerSpec
from pretrainlab.faults import (
    AtomicCheckpointIO,
    DecayStartCheckpoint,
    FiniteLoss,
    LastCheckpoint,
    Preemption,
    RNGState,
)
from pretrainlab.io import atomic_dir
from pretrainlab.models.encoder import EncoderSpec
from pretrainlab.objectives.base import PretrainObjective
from pretrainlab.objectives.optim import OptimSpec, decay_start
from pretrainlab.redact import redact_config
from pretrainlab.run import DECAY_CKPT, LAST_CKPT, RunRecord


@dataclass
class Run:
    """The parts of one run, built: what ``trainer.fit`` needs and what pretrain reads back."""

    data: PretrainData
    objective: PretrainObjective
    datamodule: PretrainDataModule
    trainer: pl.Trainer
    throughput: Throughput
    preemption: Preemption
    last: Path  # checkpoints/last.ckpt

    def export(self, folder: Path) -> None:
        """The model with its heads and the tokenizer (save_pretrained). Built aside and
        renamed into place: an earlier export stays whole until the new one is."""
        with atomic_dir(folder, replace=True) as tmp:
            self.objective.save(tmp)
            self.data.tokenizer.save_pretrained(str(tmp))


@dataclass
class Recipe:
    cfg: DictConfig
    encoder: EncoderSpec
    optim: OptimSpec
    tokenizer: TokenizerSpec
    corpus: Corpus
    objective_cls: type[PretrainObjective]
    seq_len: int
    batch_size: int
    cache_dir: Path
    budget: ComputeBudget
    tokens_per_step: int
    flops_per_token: float  # declared: with tokenizer.vocab_size, before the tokenizer exists

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> Recipe:
        """Validate, then build everything cheap. A compute budget sets ``trainer.max_steps``
        in ``cfg`` (config.yaml records both)."""
        check_pretrain(cfg)
        encoder = build(cfg.encoder)
        objective_cls = get_class(cfg.objective._target_)
        params = {k: v for k, v in cfg.objective.items() if k != "_target_"}
        objective_cls.validate(**params)
        seq_len, batch_size = int(cfg.data.seq_len), int(cfg.data.batch_size)
        tokens_per_step = batch_size * seq_len * world_size(cfg.trainer)
        tokens_per_step *= cfg.trainer.get("accumulate_grad_batches") or 1
        flops_per_token = objective_cls.flops_per_token(
            encoder, seq_len, cfg.tokenizer.vocab_size, **params
        )
        budget = build(cfg.budget) if cfg.get("budget") else ComputeBudget()
        if (steps := budget.steps(tokens_per_step, flops_per_token)) is not None:
            cfg.trainer.max_steps = steps
        return cls(
            cfg=cfg,
            encoder=encoder,
            optim=build(cfg.optim),
            tokenizer=build(cfg.tokenizer),
            corpus=build(cfg.corpus),
            objective_cls=objective_cls,
            seq_len=seq_len,
            batch_size=batch_size,
            cache_dir=Path(cfg.paths.cache_dir).expanduser(),
            budget=budget,
            tokens_per_step=tokens_per_step,
            flops_per_token=flops_per_token,
        )

    def prepare(self, with_train: bool = True) -> tuple[PretrainData, PretrainObjective]:
        """The run's data (corpus -> tokenizer -> examples, cached) and its objective."""
        cfg = self.cfg
        data = prepare_pretraining_data(
            self.corpus,
            self.tokenizer,
            self.seq_len,
            self.objective_cls.data_format,
            cfg.seed,
            self.cache_dir,
            cfg.data.max_val_examples,
            self.batch_size,
            with_train=with_train,
        )
        return data, self.objective(data)

    def objective(self, data: PretrainData) -> PretrainObjective:
        return build(
            self.cfg.objective,
            encoder=self.encoder,
            vocab_size=len(data.tokenizer),
            special_ids=data.special_ids,
            optim=self.optim,
            seed=self.cfg.seed,
            tokenizer=data.tokenizer,
        )

    def datamodule(self, data: PretrainData, objective: PretrainObjective) -> PretrainDataModule:
        return PretrainDataModule(
            data.train,
            data.val,
            objective.collate,
            self.batch_size,
            self.cfg.seed,
            self.cfg.data.num_workers,
        )

    def build(
        self, run_dir: Path, data: PretrainData, objective: PretrainObjective, record: RunRecord
    ) -> Run:
        """Datamodule, callbacks (throughput, loss guard, history, RNG state, preemption,
        checkpoints) and trainer of a run in ``run_dir``."""
        cfg, last = self.cfg, run_dir / LAST_CKPT
        datamodule = self.datamodule(data, objective)
        every = cfg.trainer.log_every_n_steps
        flops = objective.flops_per_token(
            self.encoder, self.seq_len, len(data.tokenizer), **objective.objective_hparams()
        )
        throughput = Throughput(flops, every)
        preemption = Preemption(last)
        callbacks = [
            throughput,
            FiniteLoss(every, cfg.checkpoint_every),  # before anything that records or saves
            History(run_dir / "history.csv", every),
            RNGState(cfg.seed),
            preemption,
            LastCheckpoint(last, cfg.checkpoint_every),
            StepProgress(run_dir / "progress.json"),
        ]
        if cfg.trainer.get("enable_progress_bar", True):
            callbacks.append(StepProgressBar())
        if self.optim.schedule == "wsd":
            start = decay_start(self.optim, cfg.trainer.max_steps)
            callbacks.append(DecayStartCheckpoint(run_dir / DECAY_CKPT, start))
        trainer = build(
            cfg.trainer,
            logger=self._logger(run_dir, f"{objective.name}-s{cfg.seed}", record),
            callbacks=callbacks,
            default_root_dir=str(run_dir),
            plugins=[AtomicCheckpointIO()],
            # the datamodule splits its own permutation across processes
            # (EpochPermutationSampler) and its validation set the same way
            use_distributed_sampler=False,
        )
        return Run(data, objective, datamodule, trainer, throughput, preemption, last)

    def _logger(self, run_dir: Path, name: str, record: RunRecord) -> Any:
        cfg = self.cfg
        if not cfg.logger or "_target_" not in cfg.logger:
            return False
        logger = build(
            cfg.logger,
            save_dir=run_dir,
            name=cfg.logger.get("name") or name,
            run_id=record.data.get("wandb_id"),
        )
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "id"):
            record.update(
                wandb_id=logger.experiment.id,
                wandb_dir=str(logger.experiment.dir),
                wandb_group=cfg.logger.get("group"),
            )
            logger.log_hyperparams(redact_config(OmegaConf.to_container(cfg, resolve=True)))
        return logger
