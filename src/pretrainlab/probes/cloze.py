"""Zero-shot probing of a ``cloze`` task: the checkpoint's own pretraining head ranks each row's
candidates for the prompt's blank; nothing is trained.

The scorer is the objective's (:meth:`PretrainObjective.candidate_scorer`), found through the
class the checkpoint's ``config.yaml`` names (``objective._target_``). Scratch gets the class
of ``scratch_from`` with its head randomly initialised, so it is compared with that arm under
the same scorer (and is at chance by construction: candidates are exchangeable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from pretrainlab.config import build
from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.errors import PretrainlabError
from pretrainlab.objectives.base import PretrainObjective
from pretrainlab.objectives.scoring import CandidateScorer
from pretrainlab.probes.checkpoint import SCRATCH, Checkpoint, load_with_head
from pretrainlab.probes.metrics import classification_metrics, subset_column

ZEROSHOT = "zeroshot"


def objective_class(run_dir: Path) -> type[PretrainObjective]:
    """The objective class a pretraining run's ``config.yaml`` names."""
    path = run_dir / "config.yaml"
    target = (
        OmegaConf.select(OmegaConf.load(path), "objective._target_") if path.is_file() else None
    )
    try:
        cls = get_class(target) if target else None
    except (ImportError, ValueError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, PretrainObjective)):
        raise PretrainlabError(
            f"{path} names no pretraining objective class (objective._target_={target!r}): a "
            "zero-shot probe scores with the checkpoint's own objective, which it finds there. "
            "Restore the run's config.yaml or re-run its pretraining."
        )
    return cls


def _check_corpus(cfg: DictConfig, ckpt: Checkpoint) -> None:
    """The facts must be counted in the corpus the checkpoint read."""
    trained = OmegaConf.load(ckpt.run_dir / "config.yaml").get("corpus")
    probed = cfg.probe.task.get("corpus")
    if probed is None or trained is None:
        return
    same_kind = trained.get("_target_") == probed.get("_target_")
    if same_kind and build(trained).cache_key() == build(probed).cache_key():
        return
    ours, theirs = OmegaConf.to_container(probed), OmegaConf.to_container(trained)
    fix = [f"probe.task.corpus.{k}={v}" for k, v in theirs.items() if v != ours.get(k)]
    raise PretrainlabError(
        f"probe.task.corpus differs from the corpus {ckpt.run_dir} was pretrained on, so the "
        "task's facts, mentions and subsets would not describe what the checkpoint read. Set "
        f"{' '.join(fix) or 'probe.task.corpus'} to match the corpus node of the run's "
        "config.yaml."
    )


@dataclass
class ZeroShot:
    """A checkpoint's model with its head and its objective's scorer, ready to rank."""

    model: Any
    tokenizer: Any
    scorer: CandidateScorer
    notes: list[str]

    def metrics(self, ds: datasets.Dataset) -> dict[str, float]:
        """Accuracy (overall, per subset, per relation) and chance (1 / candidates)."""
        scores = self.scorer(self.model, self.tokenizer, ds["prompt"], ds["candidates"])
        preds, target, n = scores.argmax(-1), torch.tensor(ds["label"]), scores.shape[1]
        out = classification_metrics(preds, target, n, subset_column(ds))
        if "relation" in ds.column_names:
            out.update(classification_metrics(preds, target, n, ds["relation"]))
        out = {k: v for k, v in out.items() if k.startswith("accuracy")}
        return {**out, "chance": 1 / n}

    def evaluate(self, task: ProbeTask) -> tuple[dict, dict, dict, dict]:
        """Dev and test metrics, no forgetting monitor, no tuning (nothing is chosen)."""
        return self.metrics(task.splits["dev"]), self.metrics(task.splits["test"]), {}, {}


def zero_shot(cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask) -> ZeroShot | None:
    """For a cloze task, the checkpoint's model and scorer (every check done here, before the
    probe writes anything); None for any other task, where ``probe.mode=zeroshot`` is an
    error."""
    if task.kind != "cloze":
        if cfg.probe.mode == ZEROSHOT:
            raise PretrainlabError(
                f"probe.mode=zeroshot needs a cloze task (facts), whose candidates the "
                f"checkpoint's own head ranks; {task.name!r} is a {task.kind} task: use "
                "probe.mode=linear or finetune."
            )
        return None
    cls = objective_class(ckpt.run_dir)
    scorer = cls.candidate_scorer()
    if scorer is None:
        raise PretrainlabError(
            f"the zero-shot {task.name!r} probe is not applicable to {ckpt.run_dir}: its "
            f"objective {cls.__name__} has no language-model head to rank candidates with "
            "(it declares no candidate_scorer), and a zero-shot probe trains none. Probe it "
            "with a linear or fine-tuned task, or probe a run whose objective has such a head."
        )
    if ckpt.objective != SCRATCH:
        _check_corpus(cfg, ckpt)
    head = cls.hf_classes[ckpt.encoder.config.model_type]
    device = "cuda" if cfg.accelerator != "cpu" and torch.cuda.is_available() else "cpu"
    model = load_with_head(ckpt, head).to(device)
    return ZeroShot(model, ckpt.tokenizer, scorer, _notes(cfg, ckpt, task, cls, head))


def _notes(cfg: DictConfig, ckpt: Checkpoint, task: ProbeTask, cls: type, head: type) -> list[str]:
    who = "randomly initialised " if ckpt.objective == SCRATCH else ""
    options = {c for s in ("dev", "test") for row in task.splits[s]["candidates"] for c in row}
    single = sum(len(ckpt.tokenizer.tokenize(c)) == 1 for c in options) / max(1, len(options))
    notes = [
        f"zero-shot: {cls.__name__}.candidate_scorer() ranks the candidates with the {who}"
        f"{head.__name__} head; nothing trained. {single:.0%} of the {len(options)} distinct "
        "candidates are one token of this tokenizer."
    ]
    if cfg.probe.mode != ZEROSHOT or cfg.probe.train_examples not in (None, 0):
        notes.append(
            f"probe.mode={cfg.probe.mode} and probe.train_examples="
            f"{cfg.probe.train_examples} do not apply to a cloze task: it ran zero-shot."
        )
    return notes
