"""The reference scores a plot of encoders is read against (probes/reference.py): chance is the
labelled rows' majority label, bag of words a classical check that can fail where the design
says it must (word classes whose held-out members never occur in the labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pretrainlab.probes.reference import references
from pretrainlab.probes.run import probe
from pretrainlab.study.plots import _references


def test_a_probe_records_chance_and_bag_of_words(pretrained, probe_cfg, tmp_path):
    cfg = probe_cfg(
        pretrained["mlm"], "lexical", "probe.task.train_size=400", "probe.train_examples=400"
    )
    result = probe(cfg, tmp_path)
    ref = result["reference"]
    assert set(ref) == {"chance", "bow"}
    for name in ("accuracy", "accuracy_heldout_words", "accuracy_seen_words"):
        assert name in ref["chance"] and name in ref["bow"]
    # bag of words reads the class off a member it saw labelled, not off one it never saw
    assert ref["bow"]["accuracy_seen_words"] > ref["bow"]["accuracy_heldout_words"] + 0.3
    assert ref["bow"]["accuracy_heldout_words"] < 0.25  # 10 classes: chance 0.10
    qa = probe(probe_cfg(pretrained["mlm"], "qa", "probe.train_examples=50"), tmp_path / "qa")
    assert qa["reference"] == {}  # no reference for a span task


def test_chance_is_the_majority_label_of_the_labelled_rows(pretrained, probe_cfg):
    from pretrainlab.config import build
    from pretrainlab.probes.checkpoint import load_checkpoint

    cfg = probe_cfg(pretrained["mlm"], "sentiment")
    task = build(cfg.probe.task)
    labels = np.asarray(task.splits["train"]["label"])
    rows = [int(i) for i in np.flatnonzero(labels == 1)[:30]] + [
        int(i) for i in np.flatnonzero(labels == 0)[:10]
    ]
    ref = references(task, load_checkpoint(str(pretrained["mlm"])).tokenizer, rows, 0)
    test = np.asarray(task.splits["test"]["label"])
    assert ref["chance"]["accuracy"] == pytest.approx((test == 1).mean())


def test_the_score_plot_takes_each_tasks_reference_at_its_largest_budget():
    rows = pd.DataFrame(
        {
            "task": ["a", "a", "a", "b"],
            "train_examples": [100, 500, 500, 100],
            "chance_score": [0.5, 0.4, 0.6, 0.1],
            "bow_score": [0.7, 0.8, np.nan, np.nan],
        }
    )
    refs = _references(rows)
    assert refs["a"] == {"chance_score": pytest.approx(0.5), "bow_score": pytest.approx(0.8)}
    assert refs["b"] == {"chance_score": pytest.approx(0.1)}
