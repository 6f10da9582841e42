"""``pretrainlab pretrain``: one encoder x one objective x one corpus -> a run directory.

Build (validated config -> data -> objective), fit, export, record. The run directory holds
run.json, metrics.json, history.csv, checkpoints/last.ckpt and hf/ (see README).

Started again with the same command (the same ``hydra.run.dir``), a run resumes from
``checkpoints/last.ckpt`` (saved every ``checkpoint_every`` steps and on SIGTERM): weights,
optimizer, schedule, data position and RNG states, so it ends with the metrics an
uninterrupted run would have (see :mod:`pretrainlab.faults`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException
from safetensors.torch import save_file

from pretrainlab.budget import spent
from pretrainlab.callbacks import History, Throughput
from pretrainlab.cli import CONF_DIR, user_errors
from pretrainlab.config import PretrainParts, build, pretrain_parts
from pretrainlab.data.datamodule import PretrainDataModule
from pretrainlab.data.prepare import PretrainData, prepare_pretraining_data
from pretrainlab.errors import PretrainlabError
from pretrainlab.faults import (
    PREEMPTED_EXIT,
    AtomicCheckpointIO,
    DecayStartCheckpoint,
    FiniteLoss,
    LastCheckpoint,
    Preemption,
    RNGState,
    check_writable,
    disk_errors,
    preflight_output_dir,
)
from pretrainlab.io import atomic_dir, atomic_write_json, atomic_write_text, read_json
from pretrainlab.objectives.base import decay_start
from pretrainlab.perf import tune_allocator
from pretrainlab.redact import redact_config, redact_hydra_run, redacted_yaml
from pretrainlab.run import RunRecord

LAST_CKPT = "checkpoints/last.ckpt"
DECAY_CKPT = "checkpoints/decay_start.ckpt"  # a wsd run's state before it decays
NSP_HEAD_FILE = "nsp_head.safetensors"


def _logger(cfg: DictConfig, run_dir: Path, name: str, record: RunRecord) -> Any:
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


def export_hf(objective: pl.LightningModule, tokenizer: Any, folder: Path) -> None:
    """save_pretrained (safetensors) of the model with its head, plus the tokenizer. Built
    aside and renamed into place: an earlier export stays whole until the new one is."""
    with atomic_dir(folder, replace=True) as tmp:
        objective.model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        head = getattr(objective, "nsp_head", None)  # a head transformers does not hold
        if head is not None:
            save_file(head.state_dict(), str(tmp / NSP_HEAD_FILE))


def _check_resume(
    last: Path, objective: pl.LightningModule, record: RunRecord, data_hash: str
) -> None:
    """A run folder holding a checkpoint resumes only the same run: same model config and
    data. Anything else is one clear error, not a shape mismatch deep inside Lightning."""
    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise PretrainlabError(
            f"{last} cannot be read ({type(err).__name__}: {str(err)[:200]}). Delete it to "
            "start this run over, or pick a new hydra.run.dir."
        ) from None
    saved = ckpt.get("hyper_parameters", {})
    now = dict(objective.hparams)
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    old_hash = record.data.get("data_hash")
    if diff or (old_hash and old_hash != data_hash):
        what = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in diff[:4]) or (
            f"data_hash {old_hash} -> {data_hash}"
        )
        raise PretrainlabError(
            f"{last.parent.parent} holds a checkpoint of another config ({what}): resuming it "
            "would mix two runs. Use the original overrides to resume, or a new hydra.run.dir."
        )


def pretrain(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    parts = pretrain_parts(cfg)
    run_dir = Path(run_dir)
    check_writable(run_dir)
    with disk_errors(run_dir):
        return _pretrain(cfg, run_dir, parts)


def _finished(run_dir: Path, record: RunRecord, config_text: str) -> dict[str, float] | None:
    """The saved metrics when this exact config already completed in ``run_dir`` (the same
    command run again: nothing to redo, nothing to overwrite)."""
    try:
        same = (run_dir / "config.yaml").read_text(encoding="utf-8") == config_text
        if same and record.data.get("status") == "completed":
            return read_json(run_dir / "metrics.json")
    except (OSError, ValueError):
        pass
    return None


def prepare_run(
    cfg: DictConfig, parts: PretrainParts, with_train: bool = True
) -> tuple[PretrainData, Any]:
    """The run's data (corpus -> tokenizer -> examples, cached) and its objective module."""
    data = prepare_pretraining_data(
        parts.corpus,
        parts.tokenizer,
        parts.seq_len,
        parts.objective_cls.data_format,
        cfg.seed,
        parts.cache_dir,
        cfg.data.max_val_examples,
        parts.batch_size,
        with_train=with_train,
    )
    objective = build(
        cfg.objective,
        encoder=parts.encoder,
        vocab_size=len(data.tokenizer),
        special_ids=data.special_ids,
        optim=parts.optim,
        seed=cfg.seed,
    )
    return data, objective


def _pretrain(cfg: DictConfig, run_dir: Path, parts: Any) -> dict[str, float]:
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.trainer.get("accelerator") == "cpu":
        tune_allocator()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    record = RunRecord(run_dir)
    # redacted (pretrainlab.redact): what config.yaml holds, and what a resume compares it to
    config_text = redacted_yaml(cfg)
    if (done := _finished(run_dir, record, config_text)) is not None:
        print(
            f"pretrainlab: {run_dir} already completed this config; nothing to do.", file=sys.stderr
        )
        return done
    data, objective = prepare_run(cfg, parts)
    _check_repeats(cfg, parts, data.stats.get("train_examples"))
    if cfg.get(
        "compile"
    ):  # compile the encoder's forward; weights and state_dict keys stay as they are
        body = objective.model.base_model
        body.forward = torch.compile(body.forward, dynamic=True)
    last = run_dir / LAST_CKPT
    for stale in last.parent.glob(f".{last.name}.*.tmp"):  # a write cut short by a kill
        stale.unlink(missing_ok=True)
    if last.exists():
        _check_resume(last, objective, record, data.data_hash)
    atomic_write_text(run_dir / "config.yaml", config_text)
    record.start(
        objective=objective.name,
        seed=cfg.seed,
        encoder=parts.encoder.name,
        corpus=parts.corpus.name,
        data_hash=data.data_hash,
        data=data.stats,
        causal=objective.causal,
        uses_segments=objective.uses_segments,
        probe_pooling=objective.probe_pooling(),  # what probe.pooling=auto pools from it
        parameters=sum(p.numel() for p in objective.parameters()),
        resumed_from_step=_step(last) if last.exists() else None,
        # what the run is declared to spend: the equal-compute terms of a study
        compute={
            "budget": parts.budget.kind,
            **spent(cfg.trainer.max_steps, parts.tokens_per_step, parts.flops_per_token),
        },
    )
    datamodule = PretrainDataModule(
        data.train, data.val, objective.collate, parts.batch_size, cfg.seed, cfg.data.num_workers
    )
    every = cfg.trainer.log_every_n_steps
    throughput = Throughput(
        parts.encoder.flops_per_token(
            parts.seq_len, len(data.tokenizer), objective.predicted_fraction()
        ),
        every,
    )
    preemption = Preemption(last)
    callbacks = [
        throughput,
        FiniteLoss(every, cfg.checkpoint_every),  # before anything that records or saves
        History(run_dir / "history.csv", every),
        RNGState(cfg.seed),
        preemption,
        LastCheckpoint(last, cfg.checkpoint_every),
    ]
    if parts.optim.schedule == "wsd":
        start = decay_start(parts.optim, cfg.trainer.max_steps)
        callbacks.append(DecayStartCheckpoint(run_dir / DECAY_CKPT, start))
    trainer = build(
        cfg.trainer,
        logger=_logger(cfg, run_dir, f"{objective.name}-s{cfg.seed}", record),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        plugins=[AtomicCheckpointIO()],
        # the datamodule splits its own permutation across processes (EpochPermutationSampler)
        # and its validation set the same way
        use_distributed_sampler=False,
    )
    try:
        trainer.fit(
            objective,
            datamodule=datamodule,
            ckpt_path=str(last) if last.exists() else None,
            weights_only=True,
        )
        final = trainer.validate(objective, datamodule=datamodule, verbose=False)[0]
        metrics = {k: float(v) for k, v in final.items()}
        metrics.update(throughput.summary(), steps=trainer.global_step)
        metrics["baseline/unigram_acc"] = data.stats["unigram_acc"]
        if trainer.is_global_zero:
            export_hf(objective, data.tokenizer, run_dir / "hf")
            atomic_write_json(run_dir / "metrics.json", metrics)
            record.finish("completed")
            if cfg.get("probe_after"):
                metrics.update(_probe_after(cfg.probe_after, run_dir))
                atomic_write_json(run_dir / "metrics.json", metrics)
        return metrics
    except SIGTERMException:
        saved = _step(last) if last.exists() else None
        where = (
            f"{last} holds step {saved}"
            if saved is not None
            else "no checkpoint was saved yet: it starts over"
        )
        record.finish("preempted", error=f"SIGTERM at step {trainer.global_step}; {where}")
        print(
            f"pretrainlab: stopped by SIGTERM at step {trainer.global_step}; {where}. Run the "
            "same command to resume.",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(PREEMPTED_EXIT) from None
    except BaseException as err:
        if preemption.handed_over:  # submitit requeues the job; it resumes from last.ckpt
            record.finish("preempted", error=f"requeued at step {preemption.saved_step}")
        else:
            record.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if trainer.logger:
            trainer.logger.finalize("success")
        import wandb

        if wandb.run is not None:
            wandb.finish()


def _check_repeats(cfg: DictConfig, parts: PretrainParts, blocks: int | None) -> None:
    """``data.allow_repeats=false``: a run that would pass over its training data more than
    once is an error before training (a streaming corpus has no block count: not checked)."""
    if cfg.data.get("allow_repeats", True) or not blocks:
        return
    epochs = cfg.trainer.max_steps * parts.tokens_per_step / (blocks * parts.seq_len)
    if epochs > 1:
        raise PretrainlabError(
            f"{cfg.trainer.max_steps} steps of {parts.tokens_per_step} tokens would pass over "
            f"the corpus's {blocks * parts.seq_len:,} training tokens {epochs:.2f} times, and "
            "data.allow_repeats=false (a study's budget axis sets it unless "
            "study.allow_repeats=true): lower the budget, use a larger corpus, or allow repeats."
        )


def _probe_after(task: str, run_dir: Path) -> dict[str, float]:
    """A linear probe of the fresh checkpoint, so a sweeper can tune pretraining against a
    downstream score (its dev score: tuning on test would leak)."""
    from pretrainlab.config import compose_config
    from pretrainlab.probes.run import probe

    cfg = compose_config(
        "probe", [f"checkpoint={run_dir}", f"probe={task}", "logger=none", "progress_bar=false"]
    )
    result = probe(cfg, run_dir / f"probe_{task}")
    return {
        f"probe/{task}/dev": result["dev"][result["metric"]],
        f"probe/{task}/test": result["test"][result["metric"]],
    }


def _step(ckpt: Path) -> int | None:
    try:
        return int(
            torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        )
    except Exception:
        return None


@user_errors
def _run(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    redact_hydra_run()
    metrics = pretrain(cfg, Path(HydraConfig.get().runtime.output_dir))
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


def main() -> None:
    import hydra

    preflight_output_dir(sys.argv[1:])
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="pretrain")(_run)()
