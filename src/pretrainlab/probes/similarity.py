"""The sentence-similarity probe (task kind ``similarity``): graded pairs scored by Spearman's
rank correlation (scipy) between the gold scores and a predicted similarity.

* zero-shot (``spearman_cosine``, ``pearson_cosine``): the cosine of the two texts' pooled
  embeddings, each text encoded alone; nothing is trained. Named ``<metric>_cosine`` so a
  study reads it as the subset ``TASK:cosine`` beside the head's score (study/collect.py).
* linear head (``spearman``, the probe's metric, and ``pearson``): a ridge regression of the
  score on ``[u * v, |u - v|]`` of the L2-normalised pooled embeddings u, v. Why this head:
  it is symmetric in the two texts (the task is), it is closed-form (no epochs or learning
  rate to tune, so every arm gets the same fit), and the zero-shot cosine is one point of it
  (weight 1 on every u * v feature: their sum is the cosine), so the head measures what a
  re-weighting of the embedding's dimensions adds over the raw cosine. Its L2 penalty comes
  from ``probe.linear_similarity.weight_decay_grid``, chosen by dev Spearman.

A task with a ``subset`` column (the embedded one: ``same_person``) also scores each subset
whose grades vary, both ways (``spearman_same_person``, ``spearman_cosine_same_person``).

Fine-tuning is not built for this kind: ``probe.mode=finetune`` is refused before any work.
"""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import Ridge
from torch import Tensor

from pretrainlab.data.tasks.base import SPLITS, ProbeTask
from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.features import cached_features, encode_split
from pretrainlab.probes.metrics import subset_column
from pretrainlab.probes.tuning import probe_grid, tune


def check_mode(mode: str, task: ProbeTask) -> None:
    """Similarity tasks have a linear mode (with the zero-shot cosine beside it) only."""
    if task.kind == "similarity" and mode != "linear":
        raise PretrainlabError(
            f"probe.mode={mode} is not available for the similarity task {task.name!r}: it is "
            "probed with probe.mode=linear, which reports the zero-shot cosine Spearman "
            "(spearman_cosine, nothing trained) beside the linear head's (spearman)."
        )


def correlations(predicted: Any, gold: Any, suffix: str = "") -> dict[str, float]:
    """Spearman and Pearson correlation of ``predicted`` with ``gold`` scores."""
    predicted, gold = np.asarray(predicted, dtype=float), np.asarray(gold, dtype=float)
    return {
        f"spearman{suffix}": float(spearmanr(predicted, gold).statistic),
        f"pearson{suffix}": float(pearsonr(predicted, gold).statistic),
    }


def subset_correlations(
    predicted: Any, gold: Any, subsets: list[str] | None, suffix: str = ""
) -> dict[str, float]:
    """:func:`correlations` over the split, and ``<metric><suffix>_<name>`` over each subset
    (a task's ``subset`` column) whose gold scores vary (a one-grade subset has no ranking)."""
    out = correlations(predicted, gold, suffix)
    predicted, gold = np.asarray(predicted, dtype=float), np.asarray(gold, dtype=float)
    for name in sorted(set(subsets or ())):
        rows = np.asarray(subsets) == name
        if np.ptp(gold[rows]) > 0:
            out.update(correlations(predicted[rows], gold[rows], f"{suffix}_{name}"))
    return out


def pair_features(u: Tensor, v: Tensor) -> np.ndarray:
    """``[u * v, |u - v|]`` (N, 2H) of L2-normalised pooled embeddings (N, H)."""
    u, v = F.normalize(u.float(), dim=-1), F.normalize(v.float(), dim=-1)
    return torch.cat([u * v, (u - v).abs()], dim=-1).numpy()


def _encode_pairs(cfg: Any, ckpt: Any, ds: datasets.Dataset, pooling: str) -> dict[str, Tensor]:
    """Pooled embeddings (N, H) of ``text`` and of ``text_pair``, each encoded alone."""
    enc, tok, length = ckpt.encoder, ckpt.tokenizer, cfg.probe.max_length
    first = ds.select_columns(["text"])
    second = ds.select_columns(["text_pair"]).rename_column("text_pair", "text")
    return {
        "u": encode_split(enc, tok, first, pooling, length, False),
        "v": encode_split(enc, tok, second, pooling, length, False),
    }


def linear_similarity(
    cfg: Any, ckpt: Any, task: ProbeTask, rows: list[int], key: dict[str, Any], pooling: str
) -> tuple[dict, dict, dict, dict]:
    """Dev and test correlations of the ridge head (penalty chosen on dev) and of the
    zero-shot cosine, no forgetting monitor, and the tuning record."""
    feats = cached_features(
        cfg.paths.cache_dir,
        {**key, "kind": "similarity"},
        lambda: {s: _encode_pairs(cfg, ckpt, task.splits[s], pooling) for s in SPLITS},
    )
    x = {s: pair_features(feats[s]["u"], feats[s]["v"]) for s in SPLITS}
    y = {s: np.asarray(task.splits[s]["label"], dtype=float) for s in SPLITS}

    def fit(alpha: float) -> tuple[float, Ridge]:
        head = Ridge(alpha=alpha).fit(x["train"][rows], y["train"][rows])
        return correlations(head.predict(x["dev"]), y["dev"])["spearman"], head

    head, tuning = tune("weight_decay", probe_grid(cfg.probe, "linear_similarity"), fit)
    tuning["train_steps"] = None  # closed form: no updates

    def metrics(split: str) -> dict[str, float]:
        cosine = F.cosine_similarity(feats[split]["u"], feats[split]["v"], dim=-1)
        subsets = subset_column(task.splits[split])
        return {
            **subset_correlations(head.predict(x[split]), y[split], subsets),
            **subset_correlations(cosine, y[split], subsets, "_cosine"),
        }

    return metrics("dev"), metrics("test"), {}, tuning
