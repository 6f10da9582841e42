"""A pretraining-budget axis: ``study.budget.tokens`` or ``study.budget.flops`` as a list, e.g.
``study.budget.flops=[2.5e13,5e13,1e14]``, pretrains every arm x seed at every budget, each a
normal run directory (resumable, exported, reproducible) and an arm of its own, named
``ARM@BUDGET`` (``mlm@5e+13``), paired with scratch and with the other arms at that budget.

How a budget's run is made cheap depends on the schedule its overrides set:

- ``optim.schedule=wsd`` (warmup, stable, decay): the run at budget B branches from the run at
  the budget below, at that run's ``checkpoints/decay_start.ckpt`` (its last step at the
  constant rate), and continues at the constant rate to its own decay, then decays over the
  last ``optim.decay_fraction`` of its steps (Hägele et al. 2024, "Scaling Laws and
  Compute-Optimal Training Beyond Fixed Training Durations": such a run matches a cosine run of
  its length). The branch is, bit for bit, the wsd run of budget B from step 0
  (tests/test_study_budgets.py), so a missing source only costs time: the run starts at step 0.
- ``optim.schedule=constant``: each run resumes the one below from its ``last.ckpt``.
- any other schedule: every budget is a separate run from step 0.

Budgets run in waves, smallest first, so each wave's sources are finished before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from pretrainlab.budget import KINDS
from pretrainlab.errors import PretrainlabError
from pretrainlab.run import copy_run

if TYPE_CHECKING:  # plan.py builds the axis's jobs with this module
    from pretrainlab.study.plan import Job

SEP = "@"  # ARM@BUDGET
SCHEDULE = "optim.schedule="  # the override that picks how a run continues
# what a branch does not take from its source: outputs it writes anew, and the W&B run (it
# logged the source's steps after the branch point; the branch starts its own)
NOT_COPIED = ("hf", "metrics.json", "reproduce", "error.json", "wandb", "checkpoints")


@dataclass(frozen=True)
class BudgetAxis:
    kind: str  # "tokens" | "flops"
    values: tuple[float, ...]  # strictly increasing


def budget_axis(cfg: DictConfig) -> BudgetAxis | None:
    """The axis when ``study.budget.KIND`` is a list, else None (one budget, or none)."""
    node = OmegaConf.select(cfg, "study.budget") or {}
    lists = [k for k in KINDS if isinstance(node.get(k), ListConfig)]
    if not lists:
        return None
    kind = lists[0]
    values = list(node[kind])
    other = next((k for k in KINDS if k != kind and node.get(k) is not None), None)
    if other:
        raise PretrainlabError(
            f"study.budget.{kind} and study.budget.{other} are both set: a study is matched on "
            f"one count; set study.budget.{other}=null."
        )
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not values or not numbers or any(v <= 0 for v in values):
        raise PretrainlabError(
            f"study.budget.{kind}={values!r} is not valid: expected a list of positive numbers "
            f"in increasing order, e.g. [1e6,4e6,16e6]."
        )
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise PretrainlabError(
            f"study.budget.{kind}={values!r} is not strictly increasing: list each budget once, "
            "smallest first (a budget's run branches from the one below it)."
        )
    return BudgetAxis(kind, tuple(float(v) for v in values))


def axis_arm(arm: str, value: float) -> str:
    return f"{arm}{SEP}{value:g}"


def split_arm(name: str) -> tuple[str, float | None]:
    """``mlm@5e+13`` -> ("mlm", 5e13); a name without a budget -> (name, None)."""
    base, sep, value = str(name).rpartition(SEP)
    if not sep:
        return str(name), None
    try:
        return base, float(value)
    except ValueError:
        return str(name), None


def controls_at_top(controls: list, axis: BudgetAxis | None) -> list:
    """With an axis, a control naming an arm by its objective (``better: mlm``) is checked at
    the largest budget (the curve shows the others); a name with a budget or scratch stays."""
    if axis is None:
        return controls

    def at_top(name: str) -> str:
        keep = name == "scratch" or split_arm(name)[1] is not None
        return name if keep else axis_arm(name, axis.values[-1])

    return [replace(c, better=at_top(c.better), than=at_top(c.than)) for c in controls]


def slug(name: str) -> str:
    """An arm name as a path part (``mlm@5e+13`` -> ``mlm-5e+13``)."""
    return name.replace(SEP, "-")


def branch_checkpoint(job: Job) -> str | None:
    """The checkpoint of the run below that this job's run continues from, by its schedule."""
    from pretrainlab.run import DECAY_CKPT, LAST_CKPT

    schedule = [o.split("=", 1)[1] for o in job.overrides if o.lstrip("+").startswith(SCHEDULE)]
    return {"wsd": DECAY_CKPT, "constant": LAST_CKPT}.get(schedule[-1] if schedule else "")


def check_steps(jobs: list[Job]) -> dict[str, int]:
    """Each axis arm's steps, from its first seed's config (a budget below one step is an
    error here, before any work); budgets of one objective that round to the same number of
    steps are refused, since the larger would repeat the smaller."""
    from pretrainlab.config import compose_config
    from pretrainlab.recipe import Recipe

    steps: dict[str, int] = {}
    for job in jobs:
        if job.kind != "pretrain" or "budget_index" not in job.meta or job.arm in steps:
            continue
        cfg = compose_config("pretrain", job.overrides)
        parts = Recipe.from_cfg(cfg)  # validates; sets trainer.max_steps from the budget
        steps[job.arm] = n = int(cfg.trainer.max_steps)
        if branch_checkpoint(job) and job.meta["budget_index"] == 0:
            _check_warmup(job.arm, n, parts.optim)
    by_base: dict[str, list[tuple[str, int]]] = {}
    for arm, n in steps.items():
        by_base.setdefault(split_arm(arm)[0], []).append((arm, n))
    for runs in by_base.values():
        for (a, na), (b, nb) in zip(runs, runs[1:], strict=False):
            if nb <= na:
                raise PretrainlabError(
                    f"study budgets {a} and {b} both give {na} training steps: space the "
                    "budgets further apart (each should add at least one step)."
                )
    return steps


def _check_warmup(arm: str, steps: int, optim: Any) -> None:
    """A branch shares its source's warmup only when the smallest budget's run reaches the
    constant rate before it branches (a run shorter than its warmup shortens the warmup)."""
    from pretrainlab.objectives.optim import decay_length

    wsd = optim.schedule == "wsd"
    stable = steps - decay_length(optim, steps) if wsd else steps
    if optim.warmup_steps > stable:
        where = "whose decay starts" if wsd else "which end"
        raise PretrainlabError(
            f"study budget {arm} gives {steps} steps, {where} at step {stable}, inside the "
            f"warmup (optim.warmup_steps={optim.warmup_steps}): the larger budgets' runs could "
            "not branch from it. Raise the smallest budget or lower optim.warmup_steps."
        )


def waves(jobs: list[Job]) -> list[list[Job]]:
    """Pretraining jobs grouped by their budget's index on the axis, smallest first; at each
    index, the jobs that start from another run (``init_from=``, e.g. SimCSE on an arm's MLM
    encoder) after the rest, so the runs they name are finished (one level: a source that
    itself has ``init_from`` runs in the same wave as the jobs that read it)."""
    by_key: dict[tuple[int, bool], list[Job]] = {}
    for job in jobs:
        later = any(o.startswith("init_from=") for o in job.overrides)
        by_key.setdefault((job.meta.get("budget_index", 0), later), []).append(job)
    return [by_key[k] for k in sorted(by_key)]


def branch_runs(jobs: list[Job], study_dir: Path) -> int:
    """Start each job not yet begun from its finished source run (``meta["branch_of"]``):
    copied beside and renamed, with the source's branch checkpoint as ``last.ckpt``, so the
    job resumes there. Returns how many were started; a job whose source did not finish runs
    from step 0 (the same run, at full cost)."""
    started = 0
    for job in jobs:
        source, target = job.meta.get("branch_of"), job.path(study_dir)
        ckpt = branch_checkpoint(job)
        if not source or ckpt is None or target.exists():
            continue
        origin = study_dir / source
        if not (origin / "metrics.json").is_file() or not (origin / ckpt).is_file():
            continue
        copy_run(origin, target, NOT_COPIED, origin / ckpt, ("wandb_id", "wandb_dir"),
                 status="branching", branched_from=f"{source}/{ckpt}")  # fmt: skip
        started += 1
    return started
