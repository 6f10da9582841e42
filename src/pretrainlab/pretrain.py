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

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from pretrainlab.budget import spent
from pretrainlab.cli import CONF_PKG, user_errors
from pretrainlab.errors import PretrainlabError
from pretrainlab.faults import PREEMPTED_EXIT, check_writable, disk_errors, preflight_output_dir
from pretrainlab.io import atomic_write_json, atomic_write_text, read_json
from pretrainlab.perf import tune_allocator
from pretrainlab.recipe import Recipe, Run
from pretrainlab.redact import redact_hydra_run, redacted_yaml
from pretrainlab.run import LAST_CKPT, RunRecord
from pretrainlab.warmstart import load_body, prior_compute, source_run


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
    recipe = Recipe.from_cfg(cfg)  # every rule checked here, before any data or model work
    # the run it continues, checked here too: only a run that starts from it needs it (a
    # probe or a study plan that validates this config does not)
    init_from = source_run(cfg)
    run_dir = Path(run_dir)
    check_writable(run_dir)
    with disk_errors(run_dir):
        return _pretrain(recipe, run_dir, init_from)


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


def _pretrain(recipe: Recipe, run_dir: Path, init_from: Path | None) -> dict[str, float]:
    cfg = recipe.cfg
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
    data, objective = recipe.prepare()
    _check_repeats(recipe, data.stats.get("train_examples"))
    if cfg.get("compile"):  # the encoder's forward; weights and state_dict keys stay as they are
        body = objective.model.base_model
        body.forward = torch.compile(body.forward, dynamic=True)
    last = run_dir / LAST_CKPT
    for stale in last.parent.glob(f".{last.name}.*.tmp"):  # a write cut short by a kill
        stale.unlink(missing_ok=True)
    if last.exists():
        _check_resume(last, objective, record, data.data_hash)
    elif init_from:  # a fresh start from another run's body (a resume has its own)
        load_body(objective.model, init_from)
    atomic_write_text(run_dir / "config.yaml", config_text)
    record.start(
        **objective.describe(),  # what probes, pooling and the study read of the objective
        seed=cfg.seed,
        encoder=recipe.encoder.name,
        corpus=recipe.corpus.name,
        data_hash=data.data_hash,
        data=data.stats,
        parameters=sum(p.numel() for p in objective.parameters()),
        resumed_from_step=_step(last) if last.exists() else None,
        init_from=str(init_from) if init_from else None,
        # what the run is declared to spend: the equal-compute terms of a study
        compute={
            "budget": recipe.budget.kind,
            **spent(cfg.trainer.max_steps, recipe.tokens_per_step, recipe.flops_per_token),
            **prior_compute(init_from),  # what the init_from run spent before this one
        },
    )
    run = recipe.build(run_dir, data, objective, record)
    try:
        return _fit(run, record, run_dir, cfg.get("probe_after"))
    except SIGTERMException:
        _stopped(run, record)
    except BaseException as err:
        if run.preemption.handed_over:  # submitit requeues the job; it resumes from last.ckpt
            record.finish("preempted", error=f"requeued at step {run.preemption.saved_step}")
        else:
            record.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if run.trainer.logger:
            run.trainer.logger.finalize("success")
        import wandb

        if wandb.run is not None:
            wandb.finish()


def _fit(run: Run, record: RunRecord, run_dir: Path, probe_after: str | None) -> dict[str, float]:
    """Train (resuming from last.ckpt if there is one), validate, export, record."""
    trainer, objective, last = run.trainer, run.objective, run.last
    trainer.fit(
        objective,
        datamodule=run.datamodule,
        ckpt_path=str(last) if last.exists() else None,
        weights_only=True,
    )
    final = trainer.validate(objective, datamodule=run.datamodule, verbose=False)[0]
    metrics = {k: float(v) for k, v in final.items()}
    metrics.update(run.throughput.summary(), steps=trainer.global_step)
    metrics["baseline/unigram_acc"] = run.data.stats["unigram_acc"]
    if trainer.is_global_zero:
        run.export(run_dir / "hf")
        atomic_write_json(run_dir / "metrics.json", metrics)
        record.finish("completed")
        if probe_after:
            metrics.update(_probe_after(probe_after, run_dir))
            atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def _stopped(run: Run, record: RunRecord) -> None:
    """SIGTERM: say where the run stopped and how to resume, and exit with PREEMPTED_EXIT."""
    step, last = run.trainer.global_step, run.last
    saved = _step(last) if last.exists() else None
    where = (
        f"{last} holds step {saved}"
        if saved is not None
        else "no checkpoint was saved yet: it starts over"
    )
    record.finish("preempted", error=f"SIGTERM at step {step}; {where}")
    print(
        f"pretrainlab: stopped by SIGTERM at step {step}; {where}. Run the same command to resume.",
        file=sys.stderr,
        flush=True,
    )
    raise SystemExit(PREEMPTED_EXIT) from None


def _check_repeats(recipe: Recipe, blocks: int | None) -> None:
    """``data.allow_repeats=false``: a run that would pass over its training data more than
    once is an error before training (a streaming corpus has no block count: not checked)."""
    cfg = recipe.cfg
    if cfg.data.get("allow_repeats", True) or not blocks:
        return
    epochs = cfg.trainer.max_steps * recipe.tokens_per_step / (blocks * recipe.seq_len)
    if epochs > 1:
        raise PretrainlabError(
            f"{cfg.trainer.max_steps} steps of {recipe.tokens_per_step} tokens would pass over "
            f"the corpus's {blocks * recipe.seq_len:,} training tokens {epochs:.2f} times, and "
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
    hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="pretrain")(_run)()
