"""``pretrainlab pretrain``: one encoder x one objective x one corpus -> a run directory.

Build (validated config -> data -> objective), fit, export, record. The run directory holds
run.json, metrics.json, history.csv, checkpoints/last.ckpt and hf/ (see README).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from pretrainlab.callbacks import History, Throughput
from pretrainlab.cli import CONF_DIR, user_errors
from pretrainlab.config import build, pretrain_parts
from pretrainlab.data.datamodule import PretrainDataModule
from pretrainlab.data.prepare import prepare_pretraining_data
from pretrainlab.io import atomic_dir, atomic_write_json, atomic_write_text
from pretrainlab.run import RunRecord

LAST_CKPT = "checkpoints/last.ckpt"


def _logger(cfg: DictConfig, run_dir: Path, name: str, record: RunRecord) -> Any:
    if not cfg.logger or "_target_" not in cfg.logger:
        return False
    logger = build(cfg.logger, save_dir=run_dir, name=cfg.logger.get("name") or name,
                   run_id=record.data.get("wandb_id"))
    if hasattr(logger, "experiment") and hasattr(logger.experiment, "id"):
        record.update(wandb_id=logger.experiment.id, wandb_dir=str(logger.experiment.dir),
                      wandb_group=cfg.logger.get("group"))
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return logger


def export_hf(objective: pl.LightningModule, tokenizer: Any, folder: Path) -> None:
    """save_pretrained (safetensors) of the model with its head, plus the tokenizer."""
    if folder.exists():
        shutil.rmtree(folder)
    with atomic_dir(folder) as tmp:
        objective.model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))


def pretrain(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    parts = pretrain_parts(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    record = RunRecord(run_dir)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    data = prepare_pretraining_data(
        parts.corpus, parts.tokenizer, parts.seq_len, parts.objective_cls.data_format, cfg.seed,
        parts.cache_dir, cfg.data.max_val_examples, parts.batch_size,
    )
    objective = build(cfg.objective, encoder=parts.encoder, vocab_size=len(data.tokenizer),
                      special_ids=data.special_ids, optim=parts.optim, seed=cfg.seed)
    record.start(objective=objective.name, seed=cfg.seed, encoder=parts.encoder.name,
                 corpus=parts.corpus.name, data_hash=data.data_hash, data=data.stats,
                 causal=objective.causal, uses_segments=objective.uses_segments,
                 parameters=sum(p.numel() for p in objective.parameters()))
    datamodule = PretrainDataModule(data.train, data.val, objective.collate, parts.batch_size,
                                    cfg.seed, cfg.data.num_workers)
    every = cfg.trainer.log_every_n_steps
    throughput = Throughput(parts.encoder.flops_per_token(
        parts.seq_len, len(data.tokenizer), objective.predicted_fraction()), every)
    callbacks = [
        throughput, History(run_dir / "history.csv", every),
        ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                        every_n_train_steps=cfg.checkpoint_every),
    ]
    trainer = build(cfg.trainer, logger=_logger(cfg, run_dir, f"{objective.name}-s{cfg.seed}",
                                                record),
                    callbacks=callbacks, default_root_dir=str(run_dir))
    last = run_dir / LAST_CKPT
    try:
        trainer.fit(objective, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
        final = trainer.validate(objective, datamodule=datamodule, verbose=False)[0]
        metrics = {k: float(v) for k, v in final.items()}
        metrics.update(throughput.summary(), steps=trainer.global_step)
        if trainer.is_global_zero:
            export_hf(objective, data.tokenizer, run_dir / "hf")
            atomic_write_json(run_dir / "metrics.json", metrics)
            record.finish("completed")
        return metrics
    except BaseException as err:
        record.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if trainer.logger:
            trainer.logger.finalize("success")
        import wandb

        if wandb.run is not None:
            wandb.finish()


@user_errors
def _run(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    metrics = pretrain(cfg, Path(HydraConfig.get().runtime.output_dir))
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="pretrain")(_run)()
