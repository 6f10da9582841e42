"""``probe.mode=linear``: the frozen encoder's features, cached per checkpoint x task x
pooling (a second probe costs only its head), and a linear head whose weight decay dev
chooses from a grid (:mod:`pretrainlab.probes.tuning`)."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from pretrainlab.data.tasks.base import SPLITS, ProbeTask
from pretrainlab.probes.checkpoint import Checkpoint
from pretrainlab.probes.features import cached_features, encode_split
from pretrainlab.probes.linear import tune_classifier, tune_span_head
from pretrainlab.probes.metrics import classification_metrics, subset_column
from pretrainlab.probes.tasks import QAInputs
from pretrainlab.probes.tuning import probe_grid


def linear_probe(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, rows: list[int], pooling: str, task_key: str
) -> tuple[dict, dict, dict, dict]:
    """Dev and test metrics of the head with the dev-chosen weight decay, no forgetting monitor
    (the encoder is frozen) and the tuning record."""
    p, enc, tok, seg = cfg.probe, ckpt.encoder, ckpt.tokenizer, ckpt.uses_segments
    key = {
        "v": 2,
        "ckpt": ckpt.key,
        "task": task_key,
        "pooling": pooling,
        "max_length": p.max_length,
        "segments": seg,
    }
    if task.kind == "qa":
        return _span_probe(cfg, ckpt, task, rows, key)
    feats = cached_features(
        cfg.paths.cache_dir,
        key,
        lambda: {
            s: encode_split(enc, tok, task.splits[s], pooling, p.max_length, seg) for s in SPLITS
        },
    )
    labels = {s: torch.tensor(task.splits[s]["label"]) for s in SPLITS}
    predict_fn, tuning = tune_classifier(
        feats["train"][rows],
        labels["train"][rows],
        feats["dev"],
        labels["dev"],
        task.num_labels,
        cfg.seed,
        probe_grid(p, "linear"),
        p.linear.epochs,
        p.linear.lr,
    )
    dev, test = (
        classification_metrics(
            predict_fn(feats[s]), labels[s], task.num_labels, subset_column(task.splits[s])
        )
        for s in ("dev", "test")
    )
    return dev, test, {}, tuning


def _span_probe(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, rows: list[int], key: dict[str, Any]
) -> tuple[dict, dict, dict, dict]:
    """The span head on cached token features (fp16, windows of the long contexts)."""
    p, enc, tok, seg = cfg.probe, ckpt.encoder, ckpt.tokenizer, ckpt.uses_segments
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
    predict_fn, tuning = tune_span_head(
        feats["train"][windows],
        f.start_positions[windows],
        f.end_positions[windows],
        lambda pr: inputs["dev"].score(torch.stack(pr(feats["dev"]), -1)),
        cfg.seed,
        probe_grid(p, "linear_qa"),
        p.linear_qa.epochs,
        p.linear_qa.lr,
    )
    dev, test = (inputs[s].metrics(torch.stack(predict_fn(feats[s]), -1)) for s in ("dev", "test"))
    return dev, test, {}, tuning
