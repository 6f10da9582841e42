"""``pretrainlab probe``: measure one checkpoint (or ``scratch``) on one downstream task.

    pretrainlab probe checkpoint=RUN_DIR probe=sentiment probe.mode=linear \\
        probe.train_examples=500 seed=0

Writes ``RUN/result.json`` (one flat record, see README) atomically and logs it to W&B with
``job_type=probe`` in the checkpoint's group.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping

from pretrainlab.cli import CONF_DIR, user_errors
from pretrainlab.config import build
from pretrainlab.data.tasks.base import SPLITS, ProbeTask
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import atomic_write_json, atomic_write_text, content_hash
from pretrainlab.probes.checkpoint import SCRATCH, Checkpoint, load_checkpoint
from pretrainlab.probes.features import POOLINGS, cached_features, encode_split, resolve_pooling
from pretrainlab.probes.finetune import FinetuneModule, KeepBest, predict
from pretrainlab.probes.forgetting import PretrainingLoss
from pretrainlab.probes.linear import fit_classifier, fit_span_head
from pretrainlab.probes.metrics import classification_metrics
from pretrainlab.probes.tasks import QAInputs, make_inputs

MODES = ("linear", "finetune")


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
    if p.mode not in MODES:
        raise PretrainlabError(
            f"probe.mode={p.mode!r} is not valid: expected one of {', '.join(MODES)}."
        )
    if p.pooling not in ("auto", *POOLINGS):
        raise PretrainlabError(
            f"probe.pooling={p.pooling!r} is not valid: expected auto, {', '.join(POOLINGS)}."
        )
    if not isinstance(p.max_length, int) or p.max_length < 16:
        raise PretrainlabError(
            f"probe.max_length={p.max_length!r} is not valid: expected an integer >= 16."
        )


def _linear(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, rows: list[int], pooling: str, task_key: str
) -> tuple[dict, dict]:
    p, enc, tok, seg = cfg.probe, ckpt.encoder, ckpt.tokenizer, ckpt.uses_segments
    key = {
        "v": 2,
        "ckpt": ckpt.key,
        "task": task_key,
        "pooling": pooling,
        "max_length": p.max_length,
        "segments": seg,
    }
    if task.kind != "qa":
        feats = cached_features(
            cfg.paths.cache_dir,
            key,
            lambda: {
                s: encode_split(enc, tok, task.splits[s], pooling, p.max_length, seg)
                for s in SPLITS
            },
        )
        labels = {s: torch.tensor(task.splits[s]["label"]) for s in SPLITS}
        predict_fn = fit_classifier(
            feats["train"][rows],
            labels["train"][rows],
            feats["dev"],
            labels["dev"],
            task.num_labels,
            cfg.seed,
            **p.linear,
        )
        return tuple(
            classification_metrics(predict_fn(feats[s]), labels[s], task.num_labels)
            for s in ("dev", "test")
        )
    inputs = {s: QAInputs(task.splits[s], task, tok, p.max_length, seg, p.stride) for s in SPLITS}

    @torch.no_grad()
    def token_features() -> dict[str, torch.Tensor]:
        out = {}
        for s, inp in inputs.items():
            f = inp.features
            out[s] = torch.cat(
                [
                    enc(
                        input_ids=f.input_ids[i : i + 64],
                        attention_mask=f.attention_mask[i : i + 64],
                        token_type_ids=f.token_type_ids[i : i + 64],
                    ).last_hidden_state.half()
                    for i in range(0, len(f.input_ids), 64)
                ]
            )  # (W, L, H) in fp16: half the cache
        return out

    feats = cached_features(cfg.paths.cache_dir, {**key, "stride": p.stride}, token_features)
    chosen = set(rows)
    windows = [w for w, e in enumerate(inputs["train"].features.example_index) if e in chosen]
    f = inputs["train"].features
    predict_fn = fit_span_head(
        feats["train"][windows],
        f.start_positions[windows],
        f.end_positions[windows],
        lambda pr: inputs["dev"].score(torch.stack(pr(feats["dev"]), -1)),
        cfg.seed,
        **p.linear_qa,
    )
    return tuple(inputs[s].metrics(torch.stack(predict_fn(feats[s]), -1)) for s in ("dev", "test"))


def _finetune(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, rows: list[int], pooling: str, logger: Any
) -> tuple[dict, dict, dict, int]:
    """Dev and test metrics, the forgetting monitor and the optimizer steps taken."""
    p, ft = cfg.probe, cfg.probe.finetune
    Inputs = make_inputs(task)
    args = (task, ckpt.tokenizer, p.max_length, ckpt.uses_segments)
    train = Inputs(task.splits["train"].select(rows), *args)
    dev, test = Inputs(task.splits["dev"], *args), Inputs(task.splits["test"], *args)
    forgetting = None if ckpt.objective == SCRATCH else PretrainingLoss(ckpt.run_dir)
    pl.seed_everything(cfg.seed, verbose=False)
    module = FinetuneModule(
        copy.deepcopy(ckpt.encoder).train(),
        task.kind,
        task.num_labels,
        pooling,
        dev.score,
        lr=ft.lr,
        weight_decay=ft.weight_decay,
        warmup_ratio=ft.warmup_ratio,
    )
    monitor = {"start": forgetting(module.encoder)} if forgetting else {}
    keep = KeepBest()
    train_loader = train.loader(ft.batch_size, True, cfg.seed)
    # max_steps caps training in whole epochs (the epoch that reaches it is finished), so every
    # epoch ends with the dev evaluation that early stopping and best-weight restoring need
    epochs = min(ft.max_epochs, math.ceil(ft.max_steps / len(train_loader)))
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        max_epochs=epochs,
        logger=logger,
        callbacks=[EarlyStopping("dev/score", mode="max", patience=ft.patience), keep],
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        enable_progress_bar=cfg.progress_bar,
    )
    trainer.fit(module, train_loader, dev.loader(ft.batch_size * 2, False, cfg.seed))
    module.load_state_dict(keep.state)
    metrics = [
        inp.metrics(predict(module, inp.loader(ft.batch_size * 2, False, cfg.seed)))
        for inp in (dev, test)
    ]
    if forgetting:
        monitor["end"] = forgetting(module.encoder)
    return metrics[0], metrics[1], monitor, trainer.global_step


def probe(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    _check(cfg)
    t0 = time.time()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    ckpt = load_checkpoint(str(cfg.checkpoint), cfg.get("scratch_from"), cfg.seed)
    if cfg.probe.max_length > ckpt.encoder.config.max_position_embeddings:
        raise PretrainlabError(
            f"probe.max_length={cfg.probe.max_length} exceeds the encoder's max positions "
            f"({ckpt.encoder.config.max_position_embeddings})."
        )
    task: ProbeTask = build(cfg.probe.task)
    rows = budget_indices(len(task.splits["train"]), cfg.probe.train_examples, cfg.seed)
    pooling = resolve_pooling(cfg.probe.pooling, ckpt.causal)
    # after every input check: bad input leaves an existing run folder as it was
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    task_key = content_hash(OmegaConf.to_container(cfg.probe.task, resolve=True))
    logger = _logger(cfg, run_dir, ckpt, task)
    monitor: dict = {}
    steps = None
    if cfg.probe.mode == "linear":
        dev, test = _linear(cfg, ckpt, task, rows, pooling, task_key)
    else:
        dev, test, monitor, steps = _finetune(cfg, ckpt, task, rows, pooling, logger or False)
    result = {
        "checkpoint": str(ckpt.run_dir) if ckpt.objective != SCRATCH else SCRATCH,
        "objective": ckpt.objective,
        "pretrain_seed": ckpt.pretrain_seed,
        "seed": cfg.seed,
        "task": task.name,
        "kind": task.kind,
        "mode": cfg.probe.mode,
        "pooling": pooling,
        "train_examples": len(rows),
        "metric": task.primary_metric,
        "dev": dev,
        "test": test,
        "forgetting": monitor,
        "train_steps": steps,  # fine-tuning optimizer steps (null for a linear probe)
        "notes": [*task.notes, *_pooling_notes(cfg, ckpt, task, pooling)],
        "wall_s": round(time.time() - t0, 2),
    }
    atomic_write_json(run_dir / "result.json", result)
    if logger:
        flat = {f"{s}/{k}": v for s in ("dev", "test") for k, v in result[s].items()}
        flat.update({f"forgetting/{k}": v for k, v in monitor.items()})
        logger.log_metrics(flat)
        logger.experiment.summary.update({**flat, "train_examples": len(rows)})
        logger.finalize("success")
        import wandb

        wandb.finish()
    return result


def _pooling_notes(cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, pooling: str) -> list[str]:
    """A note when ``auto`` pooled a [CLS] its objective never trained: only the NSP objectives
    (the ones with segments) put a loss on it, so an MLM-only [CLS] is close to untrained."""
    untrained_cls = ckpt.objective != SCRATCH and not ckpt.uses_segments and not ckpt.causal
    if task.kind == "qa" or pooling != "cls" or cfg.probe.pooling != "auto" or not untrained_cls:
        return []
    return [
        f"pooling: auto chose [CLS], which the {ckpt.objective!r} objective never trains; "
        "probe.pooling=mean pools every token instead."
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

    result = probe(cfg, Path(HydraConfig.get().runtime.output_dir))
    return result["test"][result["metric"]]


def main() -> None:
    import hydra

    from pretrainlab.faults import preflight_output_dir

    preflight_output_dir(sys.argv[1:])
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="probe")(_run)()
