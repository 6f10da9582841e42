"""Reference scores of a classification probe, the lines a plot of encoders is read against:

* ``chance``: the constant predictor the labelled rows allow (their most frequent label);
* ``bow``: a classical, non-neural check that the signal is in the data, a bag-of-words
  logistic regression (scikit-learn) on the same labelled rows, token counts from the
  checkpoint's tokenizer (per segment for pair tasks), its C chosen on dev from a fixed grid.

Both depend on the task, the label budget's rows and the tokenizer only, so every arm probed
with one seed gets the same numbers. ``result.json`` records them under ``reference``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from transformers import PreTrainedTokenizerFast

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.probes.mdl import SUPPORTED_KINDS
from pretrainlab.probes.metrics import classification_metrics, subset_column
from pretrainlab.probes.similarity import subset_correlations

KINDS = (*SUPPORTED_KINDS, "similarity")  # the tasks it serves

BOW_C_GRID = (0.01, 0.1, 1.0, 10.0)


def _counts(texts: list[str], tokenizer: PreTrainedTokenizerFast) -> sp.csr_matrix:
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
    cols = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids]) if ids else []
    shape = (len(ids), len(tokenizer))
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def _bag(split, tokenizer: PreTrainedTokenizerFast) -> sp.csr_matrix:
    parts = [_counts(list(split["text"]), tokenizer)]
    if "text_pair" in split.column_names:  # a pair task: each segment its own counts
        parts.append(_counts(list(split["text_pair"]), tokenizer))
    return sp.hstack(parts).tocsr()


def references(
    task: ProbeTask, tokenizer: PreTrainedTokenizerFast, rows: list[int], seed: int
) -> dict[str, dict[str, float]]:
    """Test metrics (the probe's own, subsets included) of ``chance`` and ``bow``; for a
    similarity task, ``bow`` alone (:func:`bow_similarity`)."""
    if task.kind == "similarity":
        return {"bow": bow_similarity(task, tokenizer)}
    train, dev, test = (task.splits[s] for s in ("train", "dev", "test"))
    y = np.asarray(train["label"])[rows]
    y_dev, y_test = np.asarray(dev["label"]), torch.tensor(test["label"])

    def metrics(pred: np.ndarray) -> dict[str, float]:
        return classification_metrics(
            torch.as_tensor(pred), y_test, task.num_labels, subset_column(test)
        )

    majority = np.bincount(y, minlength=task.num_labels).argmax()
    x, x_dev, x_test = (_bag(s, tokenizer) for s in (train, dev, test))
    best = None
    for c in BOW_C_GRID:
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x[rows], y)
        score = float((model.predict(x_dev) == y_dev).mean())
        if best is None or score > best[0]:
            best = (score, model)
    return {
        "chance": metrics(np.full(len(y_test), majority)),
        "bow": metrics(best[1].predict(x_test)),
    }


def bow_similarity(task: ProbeTask, tokenizer: PreTrainedTokenizerFast) -> dict[str, float]:
    """Test Spearman / Pearson of the cosine between the two texts' token-count vectors
    (nothing fitted: the zero-shot probe's classical counterpart). It is recorded under both
    the head's keys and the cosine's, so each is read against it."""
    test = task.splits["test"]
    a, b = _counts(list(test["text"]), tokenizer), _counts(list(test["text_pair"]), tokenizer)
    dots = np.asarray(a.multiply(b).sum(1)).ravel()
    norms = np.sqrt(
        np.asarray(a.multiply(a).sum(1)).ravel() * np.asarray(b.multiply(b).sum(1)).ravel()
    )
    cosine = dots / np.maximum(norms, 1e-12)
    subsets = subset_column(test)
    return {
        **subset_correlations(cosine, test["label"], subsets),
        **subset_correlations(cosine, test["label"], subsets, "_cosine"),
    }
