"""Expand a study config into jobs: pretrain each arm x seed, then probe every checkpoint (and
the scratch baseline) on every task x mode x budget.

A job is plain data (its kind, the Hydra overrides of its command, its run directory). The run
directory name carries a hash of the overrides, so re-running a study finds finished jobs by
their config, and a changed config gets a fresh directory instead of stale results.

Paths inside a plan are relative to the study directory (run directories, ``needs``, and the
``checkpoint=`` / ``scratch_from=`` overrides of probe jobs), and so are the hashes: a study
copied or moved elsewhere is recognised as the same study, finished jobs included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from pretrainlab.cli import config_names, find_config
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import content_hash
from pretrainlab.redact import redact_argv
from pretrainlab.study.budgets import BudgetAxis, axis_arm, budget_axis, slug

SCRATCH = "scratch"
TWIN_SUFFIX = "_twin"  # study.control_twin: the negative-control copy of an arm
# overrides that name a study run, relative to the study directory in a plan: a probe's
# checkpoint / scratch_from, a pretraining arm's init_from (a glob such as pretrain/mlm-s${seed}-*)
STUDY_PATH_KEYS = ("checkpoint", "scratch_from", "init_from")


@dataclass
class Job:
    id: int
    kind: str  # "pretrain" | "probe"
    arm: str  # the pretraining arm (objective or variant name), or "scratch"
    seed: int  # the pretraining seed (of the run a probe reads, for a probe)
    overrides: list[str]
    run_dir: str  # relative to the study directory
    task: str | None = None
    mode: str | None = None
    budget: int | None = None
    needs: str | None = None  # run_dir of the pretraining job a probe reads
    meta: dict[str, Any] = field(default_factory=dict)
    probe_seed: int | None = None  # a probe's own seed: label sample, head init, data order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def path(self, study_dir: str | Path) -> Path:
        """This job's run directory (an absolute ``run_dir`` of an older plan stays as it is)."""
        return Path(study_dir) / self.run_dir

    def needs_path(self, study_dir: str | Path) -> Path | None:
        return Path(study_dir) / self.needs if self.needs else None

    def command_overrides(self, study_dir: str | Path) -> list[str]:
        """The overrides with the study-relative run paths made absolute for this location."""
        out = []
        for o in self.overrides:
            key, _, value = o.partition("=")
            if key in STUDY_PATH_KEYS and value != SCRATCH:
                o = f"{key}={Path(study_dir) / value}"
            out.append(o)
        return out


def _list(cfg: DictConfig, key: str) -> list:
    value = OmegaConf.select(cfg, key)
    if value is None or len(value) == 0:
        raise PretrainlabError(f"{key} is empty: a study needs at least one entry there.")
    return list(value)


def study_arms(cfg: DictConfig) -> dict[str, list[str]]:
    """``study.objectives`` (one arm per objective) plus ``study.variants`` (name -> overrides,
    e.g. MLM at several mask rates)."""
    s = cfg.study
    arms = {name: [f"objective={name}"] for name in (s.get("objectives") or [])}
    if s.get("variants"):
        arms.update(OmegaConf.to_container(s.variants, resolve=True))
    if not arms:
        raise PretrainlabError(
            "the study has no arms: set study.objectives (a list of "
            f"{', '.join(config_names('objective'))}) or study.variants (name -> pretrain "
            "overrides), or pick an experiment, e.g. experiment=mlm_vs_clm."
        )
    return arms


def _run_hash(overrides: list[str]) -> str:
    """The run directory's hash: of the overrides as the plan holds them, secrets redacted (a
    job runs with <redacted>; a rotated key keeps the finished runs)."""
    return content_hash(redact_argv(overrides), 8)


def seed_axes(cfg: DictConfig) -> tuple[list[int], list[int] | None]:
    """``study.pretrain_seeds`` (the unit of replication of an arm) and ``study.probe_seeds``
    (label sample, head init, data order; null: one probe run per pretraining run, seeded
    like it, so the two sources of variance are not separated)."""
    if OmegaConf.select(cfg, "study.seeds") is not None:
        raise PretrainlabError(
            "study.seeds was split in two: set study.pretrain_seeds (pretraining runs, e.g. "
            "[0,1,2]) and, to separate probe variance, study.probe_seeds (e.g. [0,1])."
        )
    pretrain = _list(cfg, "study.pretrain_seeds")
    probe = OmegaConf.select(cfg, "study.probe_seeds")
    if probe is not None and len(probe) == 0:
        raise PretrainlabError(
            "study.probe_seeds is empty: give a list of probe seeds (e.g. [0,1]), or null for "
            "one probe run per pretraining run, seeded like it."
        )
    for key, seeds in (("pretrain_seeds", pretrain), ("probe_seeds", probe or [])):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in seeds):
            raise PretrainlabError(f"study.{key}={list(seeds)!r}: expected a list of integers.")
        if len(set(seeds)) < len(seeds):
            raise PretrainlabError(f"study.{key}={list(seeds)!r} repeats a seed.")
    return [int(v) for v in pretrain], ([int(v) for v in probe] if probe is not None else None)


def twin_arms(cfg: DictConfig, arms: dict[str, list[str]]) -> list[str]:
    """The arms ``study.control_twin`` doubles: true = the first arm, a name or a list of
    names = those, false / null = none."""
    twin = OmegaConf.select(cfg, "study.control_twin")
    if twin is None or twin is False:
        return []
    if twin is True:
        return [next(iter(arms))]
    names = (
        [twin] if isinstance(twin, str) else list(twin) if isinstance(twin, ListConfig) else None
    )
    if not names or any(n not in arms for n in names) or len(set(names)) < len(names):
        raise PretrainlabError(
            f"study.control_twin={_shown(twin)!r} is not valid: expected true (the first arm), "
            f"false, an arm of the study or a list of distinct arms, from {', '.join(arms)}."
        )
    return [str(n) for n in names]


def _shown(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, ListConfig) else value


def _pretrain_jobs(
    cfg: DictConfig, arms: dict[str, list[str]], seeds: list[int], axis: BudgetAxis | None
) -> list[Job]:
    s = cfg.study
    budget = {k: v for k, v in (s.get("budget") or {}).items() if v is not None}
    steps = [o for o in s.pretrain_overrides if o.startswith("trainer.max_steps=")]
    if budget and steps:
        kind, value = next(iter(budget.items()))
        shown = f"{value:g}" if isinstance(value, (int, float)) else _shown(value)
        raise PretrainlabError(
            f"study.pretrain_overrides sets {steps[0]} while study.budget.{kind}={shown} "
            f"decides every arm's steps: set study.budget.{kind}=null to train for max_steps, "
            "or drop the override to keep the budget."
        )
    head = list(s.pretrain_overrides)  # then the budget, then the group: the order hashed
    if axis and not any(o.startswith("data.allow_repeats=") for o in head):
        head.append(f"data.allow_repeats={str(bool(s.get('allow_repeats'))).lower()}")
    group = f"++logger.group={s.name}"
    # (budget index, budget override): one per value of the axis, or the single budget
    budgets = (
        [(i, f"budget.{axis.kind}={v}") for i, v in enumerate(axis.values)]
        if axis
        else [(0, f"budget.{k}={v}") for k, v in budget.items()] or [(0, None)]
    )
    runs = [(arm, arm, seed, None) for arm in arms for seed in seeds]
    # a twin: the same arm on fresh pretraining seeds, probed with the original's probe seeds
    runs += [
        (f"{twin}{TWIN_SUFFIX}", twin, max(seeds) + 1 + i, seed)
        for twin in twin_arms(cfg, arms) for i, seed in enumerate(seeds)
    ]  # fmt: skip
    jobs: list[Job] = []
    for name, arm, seed, twin_of_seed in runs:
        below = None  # the run of this arm x seed at the budget below: a branch's source
        for index, given in budgets:
            ov = [*head, *([given] if given else []), group, *arms[arm], f"seed={seed}"]
            meta: dict[str, Any] = {}
            if twin_of_seed is not None:
                meta.update(twin_of=arm, pairs_with_seed=twin_of_seed)
            if axis:
                name = axis_arm(arm, axis.values[index])
                meta.update(budget_index=index, branch_of=below)
            run = f"pretrain/{slug(name)}-s{seed}-{_run_hash(ov)}"
            jobs.append(Job(len(jobs), "pretrain", name, seed, ov, run, meta=meta))
            below = run
    return jobs


def expand(cfg: DictConfig) -> list[Job]:
    s = cfg.study
    arms = study_arms(cfg)
    seeds, probe_seeds = seed_axes(cfg)
    tasks = _list(cfg, "study.tasks")
    modes, budgets = _list(cfg, "study.modes"), _list(cfg, "study.budgets")
    modes_of = task_modes(cfg, tasks, modes)
    axis = budget_axis(cfg)
    if axis and (twin_arms(cfg, arms) or s.get("extend_from")):
        raise PretrainlabError(
            f"study.budget.{axis.kind} is a list (a budget axis), which does not combine with "
            f"{'study.control_twin' if twin_arms(cfg, arms) else 'study.extend_from'}: run "
            "the twin or the extension at one budget, or drop it to sweep the budgets."
        )
    jobs = _pretrain_jobs(cfg, arms, seeds, axis)
    common_probe = [*s.probe_overrides, f"++logger.group={s.name}"]
    baseline_from = s.get("baseline_from") or next(iter(arms))
    if axis:  # scratch borrows tokenizer and shape, the same at every budget: the first's
        baseline_from = axis_arm(baseline_from, axis.values[0])
    sources = {(j.arm, j.seed): j for j in jobs}
    probed = [(j.arm, j.seed, j) for j in jobs]
    if s.get("baseline"):
        probed += [(SCRATCH, seed, sources[(baseline_from, seed)]) for seed in seeds]
    for arm, seed, source in probed:
        target = (
            [f"checkpoint={SCRATCH}", f"scratch_from={source.run_dir}"]
            if arm == SCRATCH
            else [f"checkpoint={source.run_dir}"]
        )
        pairs_with = source.meta.get("pairs_with_seed", seed)
        for probe_seed in probe_seeds or [pairs_with]:
            for task in tasks:
                for mode, budget in task_runs(task, modes_of[task], budgets):
                    ov = [
                        *common_probe,
                        *target,
                        f"probe={task}",
                        f"probe.mode={mode}",
                        f"probe.train_examples={budget}",
                        f"seed={probe_seed}",
                    ]
                    tag = f"-p{probe_seed}" if probe_seeds else ""
                    run = f"probe/{slug(arm)}-s{seed}{tag}/{task}-{mode}-n{budget}-{_run_hash(ov)}"
                    job = Job(len(jobs), "probe", arm, seed, ov, run, task, mode, budget,
                              source.run_dir, dict(source.meta), probe_seed)  # fmt: skip
                    jobs.append(job)
    return jobs


def task_modes(cfg: DictConfig, tasks: list, modes: list) -> dict[str, list]:
    """The probe modes of each task: ``study.modes``, or the task's entry in
    ``study.task_modes`` (e.g. ``{direction: [finetune]}``: a span task no frozen encoder can
    solve linearly). An entry for a probe task the study does not run is ignored (so
    ``study.tasks=[topic]`` still works with an experiment's entries); one naming no probe
    task (``conf/probe/NAME.yaml``) is refused as a typo."""
    node = OmegaConf.select(cfg, "study.task_modes")
    given = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    unknown = sorted(k for k in given if find_config("probe", k) is None)
    if unknown:
        raise PretrainlabError(
            f"study.task_modes names {', '.join(map(repr, unknown))}, which is no probe task "
            f"(conf/probe/NAME.yaml); the study's tasks are {', '.join(map(str, tasks))}."
        )
    for task, value in given.items():
        if not isinstance(value, list) or not value:
            raise PretrainlabError(
                f"study.task_modes.{task}={value!r} is not valid: expected a non-empty list of "
                "probe modes, e.g. [finetune]."
            )
    return {task: list(given.get(task, modes)) for task in tasks}


def task_runs(task: str, modes: list, budgets: list) -> list[tuple[str, Any]]:
    """(mode, budget) pairs of a task: a zero-shot task (its ``conf/probe/TASK.yaml`` sets
    ``mode: zeroshot``) runs once, at mode zeroshot and budget 0; a task whose config lists
    ``modes`` (similarity: linear) at those of the study's modes; others at each mode x budget."""
    path = find_config("probe", task)
    conf = OmegaConf.load(path) if path is not None else OmegaConf.create()
    if conf.get("mode") == "zeroshot":
        return [("zeroshot", 0)]
    has = conf.get("modes")
    if has is not None and not set(modes) & set(has):
        raise PretrainlabError(
            f"the task {task!r} is probed in mode(s) {', '.join(has)} only, and the study asks "
            f"for {', '.join(map(str, modes))}: add one of them to study.modes, or give the task "
            f"its own with study.task_modes ({{{task}: [{has[0]}]}})."
        )
    return [(m, b) for m in modes if has is None or m in has for b in budgets]


def is_done(job: Job, study_dir: str | Path) -> bool:
    """A job is done when its result file exists (written last, atomically)."""
    name = "metrics.json" if job.kind == "pretrain" else "result.json"
    return (job.path(study_dir) / name).is_file()


def checkpoint_ready(job: Job, study_dir: str | Path) -> bool:
    """A probe's pretraining run has finished (its metrics.json is written last)."""
    needs = job.needs_path(study_dir)
    return needs is None or (needs / "metrics.json").is_file()
