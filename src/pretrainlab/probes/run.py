"""``pretrainlab probe``: measure one checkpoint (or ``scratch``) on one downstream task.

    pretrainlab probe checkpoint=RUN_DIR probe=sentiment probe.mode=linear \\
        probe.train_examples=500 seed=0

Writes ``RUN/result.json`` (one flat record, see README) atomically and logs it to W&B with
``job_type=probe`` in the checkpoint's group.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger

from pretrainlab.cli import CONF_PKG, user_errors
from pretrainlab.config import PROBE_KNOBS, build, check_choice, check_knobs
from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import atomic_write_json, atomic_write_text, content_hash
from pretrainlab.models.encoder import POOLINGS
from pretrainlab.probes.checkpoint import SCRATCH, Checkpoint, load_checkpoint
from pretrainlab.probes.cloze import ZEROSHOT, zero_shot
from pretrainlab.probes.finetune import FinetuneModule, fit_steps, predict, update_budget
from pretrainlab.probes.forgetting import PretrainingLoss
from pretrainlab.probes.frozen import check_layer, linear_mdl, linear_probe
from pretrainlab.probes.mdl import check_mdl_config, check_mdl_task, mdl_wanted
from pretrainlab.probes.qa import question_limit
from pretrainlab.probes.reference import KINDS as REFERENCE_KINDS
from pretrainlab.probes.reference import references
from pretrainlab.probes.similarity import check_mode
from pretrainlab.probes.tasks import make_inputs
from pretrainlab.probes.tuning import probe_grid, tune
from pretrainlab.redact import redact_hydra_run, redacted_yaml
from pretrainlab.run import environment

MODES = ("linear", "finetune", ZEROSHOT)


def budget_indices(n: int, budget: Any, seed: int) -> list[int]:
    """The first ``budget`` rows of a seeded permutation: smaller budgets are subsets of larger
    ones, and every objective probed with the same seed sees the same examples."""
    if budget is None:
        return list(range(n))
    if isinstance(budget, float) and 0 < budget <= 1:
        budget = max(1, round(budget * n))
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise PretrainlabError(
            f"probe.train_examples={budget!r} is not valid: expected null (all), an integer "
            "count >= 1, or a fraction in (0, 1]."
        )
    if budget > n:
        raise PretrainlabError(
            f"probe.train_examples={budget} is larger than the training set ({n} examples): "
            f"use at most {n}, a fraction, or null for all."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(order[:budget].tolist())


def _check(cfg: DictConfig) -> None:
    p = cfg.probe
    check_choice("probe.mode", p.mode, MODES)
    if p.pooling not in ("auto", *POOLINGS):
        raise PretrainlabError(
            f"probe.pooling={p.pooling!r} is not valid: expected auto, {', '.join(POOLINGS)}."
        )
    check_knobs(cfg, PROBE_KNOBS)
    question_limit(p.max_length, p.stride)  # QA windows: room for a question and the stride
    for section in ("finetune", "linear", "linear_qa", "linear_similarity"):
        probe_grid(p, section)
    check_mdl_config(p)


def _finetune(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, rows: list[int], pooling: str, logger: Any
) -> tuple[dict, dict, dict, dict]:
    """Dev and test metrics of the dev-chosen learning rate, the forgetting monitor and the
    tuning record. Every learning rate trains the same number of updates from the same seed."""
    p, ft = cfg.probe, cfg.probe.finetune
    Inputs = make_inputs(task)
    args = (task, ckpt.tokenizer, p.max_length, ckpt.uses_segments)
    train = Inputs(task.splits["train"].select(rows), *args)
    dev, test = Inputs(task.splits["dev"], *args), Inputs(task.splits["test"], *args)
    forgetting = None if ckpt.objective == SCRATCH else PretrainingLoss(ckpt.run_dir)
    monitor = {"start": forgetting(ckpt.encoder)} if forgetting else {}
    dev_loader = dev.loader(ft.batch_size * 2, False, cfg.seed)
    steps = update_budget(ft.max_steps, ft.max_epochs, len(train.loader(ft.batch_size, True, 0)))
    trainer_args = {
        "accelerator": cfg.accelerator,
        "devices": 1,
        "logger": logger,
        "log_every_n_steps": 10,
        "enable_progress_bar": cfg.progress_bar,
    }

    def fit_lr(lr: float) -> tuple[float, FinetuneModule]:
        pl.seed_everything(cfg.seed, verbose=False)  # the same head, dropout and data order
        module = FinetuneModule(
            copy.deepcopy(ckpt.encoder).train(),
            task.kind,
            task.num_labels,
            pooling,
            dev.score,
            lr=lr,
            weight_decay=ft.weight_decay,
            warmup_ratio=ft.warmup_ratio,
        )
        train_loader = train.loader(ft.batch_size, True, cfg.seed)
        score, state = fit_steps(
            module, train_loader, dev_loader, steps, ft.eval_every, **trainer_args
        )
        module.load_state_dict(state)
        return score, module

    module, tuning = tune("lr", probe_grid(p, "finetune"), fit_lr)
    metrics = [
        inp.metrics(predict(module, inp.loader(ft.batch_size * 2, False, cfg.seed)))
        for inp in (dev, test)
    ]
    if forgetting:
        monitor["end"] = forgetting(module.encoder)
    return metrics[0], metrics[1], monitor, {**tuning, "train_steps": steps}


def probe(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    _check(cfg)
    t0 = time.time()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    ckpt = load_checkpoint(str(cfg.checkpoint), cfg.get("scratch_from"))
    if cfg.probe.max_length > ckpt.encoder.config.max_position_embeddings:
        raise PretrainlabError(
            f"probe.max_length={cfg.probe.max_length} exceeds the encoder's max positions "
            f"({ckpt.encoder.config.max_position_embeddings})."
        )
    task: ProbeTask = build(cfg.probe.task)
    check_mdl_task(cfg.probe, task)
    check_layer(cfg.probe, task)
    check_mode(cfg.probe.mode, task)  # similarity: linear only
    zeroshot = zero_shot(cfg, ckpt, task)  # a cloze task: the objective's own scorer, else None
    mode = ZEROSHOT if zeroshot else cfg.probe.mode
    n_train = len(task.splits["train"])
    rows = [] if zeroshot else budget_indices(n_train, cfg.probe.train_examples, cfg.seed)
    pooling = "none" if zeroshot else ckpt.pooling_for(cfg.probe.pooling)
    # after every input check: bad input leaves an existing run folder as it was
    atomic_write_text(run_dir / "config.yaml", redacted_yaml(cfg))  # secrets redacted
    # the task's config and its rows (datasets' content fingerprints): cached features are
    # reused only for the same texts, even when a generator changes under an unchanged config
    fingerprints = {s: ds._fingerprint for s, ds in task.splits.items()}
    task_key = content_hash([OmegaConf.to_container(cfg.probe.task, resolve=True), fingerprints])
    logger = _logger(cfg, run_dir, ckpt, task)
    try:
        dev, test, monitor, tuning, extra = _measure(cfg, ckpt, task, zeroshot, rows, pooling,
                                                     task_key, logger)  # fmt: skip
    except BaseException:
        _close_logger(logger, "failed")  # a W&B run left open would take the next probe's logs
        raise
    result = {
        "checkpoint": str(ckpt.run_dir) if ckpt.objective != SCRATCH else SCRATCH,
        "objective": ckpt.objective,
        "pretrain_seed": ckpt.pretrain_seed,
        "seed": cfg.seed,
        "task": task.name,
        "kind": task.kind,
        "mode": mode,
        "pooling": pooling,
        "train_examples": len(rows),
        "metric": task.primary_metric,
        "dev": dev,
        "test": test,
        "forgetting": monitor,
        # fine-tuning optimizer steps (null for a linear probe)
        "train_steps": tuning["train_steps"] if mode == "finetune" else None,
        "tuning": tuning,  # what dev chose, from which grid (probes/tuning.py)
        **extra,  # mdl (probes/mdl.py) and reference (probes/reference.py)
        "notes": [*task.notes, *_pooling_notes(cfg, ckpt, task, pooling)]
        + (zeroshot.notes if zeroshot else []),
        "wall_s": round(time.time() - t0, 2),
        **environment(),  # versions and machine: what `pretrainlab reproduce` compares
    }
    atomic_write_json(run_dir / "result.json", result)
    _log_result(logger, result)
    return result


def _measure(
    cfg: DictConfig,
    ckpt: Checkpoint,
    task: ProbeTask,
    zeroshot: Any,
    rows: list[int],
    pooling: str,
    task_key: str,
    logger: Any,
) -> tuple[dict, dict, dict, dict, dict[str, Any]]:
    """Dev, test, forgetting and tuning of the probe's mode, and the extras beside them: the
    MDL code length of a linear classification probe's head (``mdl``) and the reference
    scores of a classification task on the same labelled rows (``reference``)."""
    extra: dict[str, Any] = {}
    if zeroshot:
        return (*zeroshot.evaluate(task), extra)
    if cfg.probe.mode == "linear":
        dev, test, monitor, tuning = linear_probe(cfg, ckpt, task, rows, pooling, task_key)
        if mdl_wanted(cfg.probe, cfg.probe.mode, task):  # the online code of the same head
            extra["mdl"] = linear_mdl(cfg, ckpt, task, rows, pooling, task_key, tuning["chosen"])
    else:
        dev, test, monitor, tuning = _finetune(cfg, ckpt, task, rows, pooling, logger or False)
    extra["reference"] = (
        references(task, ckpt.tokenizer, rows, cfg.seed) if task.kind in REFERENCE_KINDS else {}
    )
    return dev, test, monitor, tuning, extra


def _log_result(logger: Any, result: dict[str, Any]) -> None:
    """Every logger gets the flat dev/test/forgetting/mdl metrics (CSV: a last row of
    ``csv/metrics.csv``, at the fine-tuning step count); a W&B run also gets them, with the
    label budget, as its run summary."""
    if not logger:
        return
    flat = {f"{s}/{k}": v for s in ("dev", "test") for k, v in result[s].items()}
    flat.update({f"forgetting/{k}": v for k, v in result["forgetting"].items()})
    flat.update({f"mdl/{k}": v for k, v in result.get("mdl", {}).items() if k != "timesteps"})
    logger.log_metrics(flat, step=result["train_steps"])
    if isinstance(logger, WandbLogger):
        logger.experiment.summary.update({**flat, "train_examples": result["train_examples"]})
    _close_logger(logger, "success")


def _close_logger(logger: Any, status: str) -> None:
    """Flush (CSV writes ``csv/metrics.csv`` here) and, for W&B, end the run."""
    if not logger:
        return
    logger.finalize(status)
    if isinstance(logger, WandbLogger):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=0 if status == "success" else 1)


def _pooling_notes(cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, pooling: str) -> list[str]:
    """A note when ``auto`` pooled [CLS] by the old attention-type rule: the run predates
    objectives recording what a probe should pool, so that [CLS] may be one no loss trained."""
    legacy = cfg.probe.pooling == "auto" and ckpt.pooling_source == "legacy"
    if task.kind == "qa" or pooling != "cls" or not legacy:
        return []
    return [
        f"pooling: auto chose [CLS] by the attention type alone: {ckpt.run_dir}/run.json has no "
        "probe_pooling (what the objective trains; it predates it). If the "
        f"{ckpt.objective!r} objective never trains [CLS], probe.pooling=mean pools every "
        "token instead."
    ]


def _logger(cfg: DictConfig, run_dir: Path, ckpt: Checkpoint, task: ProbeTask) -> Any:
    if not cfg.logger or "_target_" not in cfg.logger:
        return None
    from pretrainlab.io import read_json

    group = cfg.logger.get("group") or read_json(ckpt.run_dir / "run.json").get("wandb_group")
    name = cfg.logger.get("name") or (
        f"{ckpt.objective}-s{ckpt.pretrain_seed}-{task.name}-{cfg.probe.mode}"
    )
    return build(cfg.logger, save_dir=run_dir, name=name, group=group, job_type="probe")


@user_errors
def _run(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    redact_hydra_run()
    result = probe(cfg, Path(HydraConfig.get().runtime.output_dir))
    return result["test"][result["metric"]]


def main() -> None:
    import hydra

    from pretrainlab.faults import preflight_output_dir

    preflight_output_dir(sys.argv[1:])
    hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="probe")(_run)()
