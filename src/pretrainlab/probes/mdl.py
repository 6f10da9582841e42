"""The MDL probe: the online code length of a linear probe's training labels (Voita & Titov
2020, "Information-Theoretic Probing with Minimum Description Length").

Accuracy says whether a linear head can read the labels off the features; the code length says
how easily. The labels are sent block by block: the first block with a uniform code, each
later one with the head fitted on every row before it, so features from which few examples
already predict the labels transmit them in few bits. ``compression`` = uniform bits / online
bits: about 1 is no better than chance, higher means more easily extracted.

``probe.mdl`` (``conf/probe/settings.yaml``): null computes it where it is defined (a linear
probe of a classification or pair task), true requires it (an error elsewhere, before any
work), false skips it. ``result.json`` records it under ``mdl``.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from torch import Tensor

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.linear import EPOCHS, LR, Labelled, LinearClassifier, fit_classifier

SUPPORTED_KINDS = ("classification", "pair")  # what a linear softmax head over labels codes
MIN_EXPONENT = 6  # the first block is 2^-6 of the rows (Voita & Titov's 0.1% at their sizes)
SUPPORT = (
    "the MDL probe (online code length) is defined for linear probes (probe.mode=linear) of "
    "classification and pair tasks, not for QA tasks (qa, direction, squad: span heads), "
    "fine-tuning or the zero-shot cloze task (facts)"
)


def timesteps(n: int) -> list[int]:
    """Block ends t_1 < ... < t_K = n: n * 2^-6, n * 2^-5, ..., n rows, rounded down, at
    least 1, duplicates dropped."""
    if n < 1:
        raise ValueError(f"the online code needs at least one training row, got {n}")
    return sorted({max(1, n >> k) for k in range(MIN_EXPONENT, -1, -1)})


def block_bits(head: LinearClassifier, x: Tensor, y: Tensor) -> float:
    """-sum log2 p(y | x) of the rows ``x`` (N, H) with labels ``y`` (N,) under ``head``."""
    nats = -head.log_probs(x).gather(1, y.long().unsqueeze(1)).sum().item()
    return nats / math.log(2)


def online_code_length(
    data: Labelled,
    seed: int,
    weight_decay: float,
    epochs: int = EPOCHS,
    lr: float = LR,
) -> dict[str, Any]:
    """The online code length in bits of ``data.train_y`` given ``data.train_x``, in the rows' order
    (shuffle them first: a prefix must be a random sample).

    The first block (t_1 rows) costs t_1 * log2(num_labels) bits; each block [t_i, t_{i+1}) is
    coded with :func:`fit_classifier` (this ``weight_decay``, ``epochs``, ``lr`` and ``seed``, as
    the accuracy probe) fitted on rows [0, t_i), dev choosing the epoch by its cross-entropy (the
    code length's own unit; by accuracy, small-prefix heads were confidently wrong and coded
    the labels in more bits than the uniform code: compression 0.59 on MLM sentiment). Returns ``bits``,
    ``uniform_bits`` (n * log2(num_labels)), ``compression`` (uniform / online; 1.0 where both
    are 0, one label) and ``timesteps``."""
    steps = timesteps(len(data.train_y))
    per_row = math.log2(data.num_labels)
    bits = steps[0] * per_row
    for start, end in pairwise(steps):
        head = fit_classifier(data.first(start), seed, epochs, lr, weight_decay, select="loss")
        bits += block_bits(head, data.train_x[start:end], data.train_y[start:end])
    uniform = len(data.train_y) * per_row
    return {
        "bits": bits,
        "uniform_bits": uniform,
        "compression": uniform / bits if bits > 0 else 1.0,
        "timesteps": steps,
    }


def check_mdl_config(probe: Any) -> None:
    """``probe.mdl`` is null, true or false, and true only with ``probe.mode=linear``. Part of
    the probe's input checks: it runs before any work."""
    value = probe.get("mdl")  # .get: a config saved before the key existed lacks it
    if value is not None and not isinstance(value, bool):
        raise PretrainlabError(
            f"probe.mdl={value!r} is not valid: expected null (compute the MDL code length "
            "where it is defined), true (require it: an error where it is not) or false (skip "
            f"it); {SUPPORT}."
        )
    if value is True and probe.mode != "linear":
        raise PretrainlabError(
            f"probe.mdl=True is not valid with probe.mode={probe.mode}: {SUPPORT}. Use "
            "probe.mode=linear, or probe.mdl=null (compute it only where defined) or false."
        )


def check_mdl_task(probe: Any, task: ProbeTask) -> None:
    """``probe.mdl=true`` needs a classification or pair task; checked once the task is built,
    before any encoding or file is written."""
    if probe.get("mdl") is True and task.kind not in SUPPORTED_KINDS:
        raise PretrainlabError(
            f"probe.mdl=True is not valid for the task {task.name!r}, a {task.kind} task: "
            f"{SUPPORT}. Probe a classification or pair task, or set probe.mdl=null (compute "
            "it only where defined) or false."
        )


def mdl_wanted(probe: Any, mode: str, task: ProbeTask) -> bool:
    """Whether this probe computes the MDL code length: not disabled, and defined here."""
    return probe.get("mdl") is not False and mode == "linear" and task.kind in SUPPORTED_KINDS
