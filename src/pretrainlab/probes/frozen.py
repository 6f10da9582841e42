"""``probe.mode=linear``: the frozen encoder's features, cached per checkpoint x task x
pooling (a second probe costs only its head), and a linear head whose weight decay dev
chooses from a grid (:mod:`pretrainlab.probes.tuning`).

``probe.layer`` (classification and pair tasks): ``last`` reads the last hidden state;
``best`` fits the head on every layer's pooled output (0: the embeddings') and dev picks the
layer with the weight decay, the same grid for every arm (layer-wise probing: Liu et al. 2019,
Tenney et al. 2019); an index reads that layer. ``tuning`` records the choice and each
layer's dev score."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from pretrainlab.data.tasks.base import SPLITS, ProbeTask
from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.checkpoint import Checkpoint
from pretrainlab.probes.features import cached_features, encode_split
from pretrainlab.probes.frozen_tokens import linear_tagging
from pretrainlab.probes.linear import Labelled, tune_classifier, tune_span_head
from pretrainlab.probes.mdl import online_code_length
from pretrainlab.probes.metrics import classification_metrics, subset_column
from pretrainlab.probes.similarity import linear_similarity
from pretrainlab.probes.tasks import QAInputs
from pretrainlab.probes.tuning import probe_grid, tune

LAYERED_KINDS = ("classification", "pair")  # the pooled tasks whose features have layers


def linear_probe(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, rows: list[int], pooling: str, task_key: str
) -> tuple[dict, dict, dict, dict]:
    """Dev and test metrics of the head with the dev-chosen weight decay, no forgetting monitor
    (the encoder is frozen) and the tuning record. The MDL probe of the same head:
    :func:`linear_mdl`."""
    p = cfg.probe
    key = _feature_key(cfg, ckpt, pooling, task_key)
    if task.kind == "qa":
        return _span_probe(cfg, ckpt, task, rows, key)
    if task.kind == "tagging":
        return linear_tagging(cfg, ckpt, task, rows, key)
    if task.kind == "similarity":
        return linear_similarity(cfg, ckpt, task, rows, key, pooling)
    every = _pooled_features(cfg, ckpt, task, key, pooling)
    labels = {s: torch.tensor(task.splits[s]["label"]) for s in SPLITS}

    def fit(layer: int | None) -> tuple[float, tuple[Any, dict, dict]]:
        feats = every if layer is None else {s: f[layer] for s, f in every.items()}
        data = Labelled(
            feats["train"][rows],
            labels["train"][rows],
            feats["dev"],
            labels["dev"],
            task.num_labels,
        )
        predict, record = tune_classifier(
            data, cfg.seed, probe_grid(p, "linear"), p.linear.epochs, p.linear.lr
        )
        return max(record["dev_by_value"].values()), (predict, record, feats)

    if p.layer == "last":
        predict_fn, tuning, feats = fit(None)[1]
    else:  # every layer's head with the weight decay grid; dev picks the pair (tuning.py)
        (predict_fn, tuning, feats), by_layer = tune("layer", _layers(p.layer, every), fit)
        tuning = _with_layer(tuning, by_layer)
    dev, test = (
        classification_metrics(
            predict_fn(feats[s]), labels[s], task.num_labels, subset_column(task.splits[s])
        )
        for s in ("dev", "test")
    )
    return dev, test, {}, tuning


def linear_mdl(
    cfg: DictConfig,
    ckpt: Checkpoint,
    task: ProbeTask,
    rows: list[int],
    pooling: str,
    task_key: str,
    chosen: dict[str, Any],
) -> dict[str, Any]:
    """The MDL probe of a classification / pair task (:func:`online_code_length`): the rows in
    a seeded random order (``rows`` is sorted), the head as :func:`linear_probe` fits it with
    the weight decay (and layer) dev chose there, its tuning's ``chosen``. The features come
    from the cache that probe filled."""
    p = cfg.probe
    feats = _pooled_features(cfg, ckpt, task, _feature_key(cfg, ckpt, pooling, task_key), pooling)
    if (layer := chosen.get("layer")) is not None:
        feats = {s: f[layer] for s, f in feats.items()}
    shuffle = torch.randperm(len(rows), generator=torch.Generator().manual_seed(cfg.seed))
    order = torch.tensor(rows, dtype=torch.long)[shuffle]
    labels = {s: torch.tensor(task.splits[s]["label"]) for s in ("train", "dev")}
    data = Labelled(
        feats["train"][order], labels["train"][order], feats["dev"], labels["dev"], task.num_labels
    )
    return online_code_length(data, cfg.seed, chosen["weight_decay"], p.linear.epochs, p.linear.lr)


def check_layer(probe: Any, task: ProbeTask) -> None:
    """``probe.layer``: last, best or a layer index; other than last, only where it is read
    (a linear probe of a classification or pair task). Checked before any encoding."""
    layer = probe.get("layer", "last")
    if layer not in ("last", "best") and (
        isinstance(layer, bool) or not isinstance(layer, int) or layer < 0
    ):
        raise PretrainlabError(
            f"probe.layer={layer!r} is not valid: expected last, best (dev chooses among every "
            "layer) or a layer index >= 0 (0 is the embeddings' output)."
        )
    if layer != "last" and (probe.mode != "linear" or task.kind not in LAYERED_KINDS):
        raise PretrainlabError(
            f"probe.layer={layer!r} is read by a linear probe of a classification or pair task "
            f"only; this is probe.mode={probe.mode} on {task.name!r}, a {task.kind} task. Set "
            "probe.layer=last here."
        )


def _every_layer(cfg: DictConfig) -> bool:
    """Features of every hidden state are encoded (and cached) unless ``probe.layer=last``."""
    return cfg.probe.layer != "last"


def _feature_key(cfg: DictConfig, ckpt: Checkpoint, pooling: str, task_key: str) -> dict:
    """What the cached features depend on (checkpoint x task x pooling x tokenisation)."""
    return {
        "v": 2,
        "ckpt": ckpt.key,
        "task": task_key,
        "pooling": pooling,
        "max_length": cfg.probe.max_length,
        "segments": ckpt.uses_segments,
        **({"layers": "every"} if _every_layer(cfg) else {}),
    }


def _layers(layer: str | int, every: dict[str, torch.Tensor]) -> list[int]:
    """The hidden states ``probe.layer`` lets dev choose from: all (``best``) or one index."""
    count = every["train"].shape[0]  # embeddings' output + one per transformer layer
    if layer == "best":
        return list(range(count))
    if layer >= count:
        raise PretrainlabError(
            f"probe.layer={layer} is not a layer of this encoder: expected last, best or an "
            f"index from 0 (the embeddings' output) to {count - 1} (the last layer)."
        )
    return [layer]


def _with_layer(tuning: dict[str, Any], by_layer: dict[str, Any]) -> dict[str, Any]:
    """The chosen layer's tuning record, with the layer grid, choice and dev score added."""
    return {
        **tuning,
        "grid": {**tuning["grid"], **by_layer["grid"]},
        "chosen": {**tuning["chosen"], **by_layer["chosen"]},
        "dev_by_layer": by_layer["dev_by_value"],
    }


def _pooled_features(
    cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, key: dict[str, Any], pooling: str
) -> dict[str, torch.Tensor]:
    """Pooled (N, H) features of every split, encoded once per key; (L + 1, N, H), every
    layer's, unless ``probe.layer`` is ``last``."""
    enc, tok, seg, length = ckpt.encoder, ckpt.tokenizer, ckpt.uses_segments, cfg.probe.max_length
    every = _every_layer(cfg)
    return cached_features(
        cfg.paths.cache_dir,
        key,
        lambda: {
            s: encode_split(enc, tok, task.splits[s], pooling, length, seg, every_layer=every)
            for s in SPLITS
        },
    )


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
