"""Expand a study config into jobs: pretrain each arm x seed, then probe every checkpoint (and
the scratch baseline) on every task x mode x budget.

A job is plain data (its kind, the Hydra overrides of its command, its run directory). The run
directory name carries a hash of the overrides, so re-running a study finds finished jobs by
their config, and a changed config gets a fresh directory instead of stale results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import content_hash

SCRATCH = "scratch"


@dataclass
class Job:
    id: int
    kind: str  # "pretrain" | "probe"
    arm: str  # the pretraining arm (objective or variant name), or "scratch"
    seed: int
    overrides: list[str]
    run_dir: str
    task: str | None = None
    mode: str | None = None
    budget: int | None = None
    needs: str | None = None  # run_dir of the pretraining job a probe reads
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
            "the study has no arms: set study.objectives (e.g. [mlm,clm]) or study.variants "
            "(name -> pretrain overrides), or pick an experiment, e.g. experiment=mlm_vs_clm."
        )
    return arms


def expand(cfg: DictConfig, study_dir: Path) -> list[Job]:
    s = cfg.study
    arms = study_arms(cfg)
    seeds, tasks = _list(cfg, "study.seeds"), _list(cfg, "study.tasks")
    modes, budgets = _list(cfg, "study.modes"), _list(cfg, "study.budgets")
    common_pre = [*s.pretrain_overrides, f"++logger.group={s.name}"]
    common_probe = [*s.probe_overrides, f"++logger.group={s.name}"]
    jobs: list[Job] = []
    checkpoints: dict[tuple[str, int], str] = {}
    for arm, arm_overrides in arms.items():
        for seed in seeds:
            ov = [*common_pre, *arm_overrides, f"seed={seed}"]
            run = study_dir / "pretrain" / f"{arm}-s{seed}-{content_hash(ov, 8)}"
            jobs.append(Job(len(jobs), "pretrain", arm, seed, ov, str(run)))
            checkpoints[(arm, seed)] = str(run)
    baseline_from = s.get("baseline_from") or next(iter(arms))
    probed = [*arms, *([SCRATCH] if s.get("baseline") else [])]
    for arm in probed:
        for seed in seeds:
            source = checkpoints[(baseline_from if arm == SCRATCH else arm, seed)]
            target = (
                [f"checkpoint={SCRATCH}", f"scratch_from={source}"]
                if arm == SCRATCH
                else [f"checkpoint={source}"]
            )
            for task in tasks:
                for mode in modes:
                    for budget in budgets:
                        ov = [
                            *common_probe,
                            *target,
                            f"probe={task}",
                            f"probe.mode={mode}",
                            f"probe.train_examples={budget}",
                            f"seed={seed}",
                        ]
                        run = (
                            study_dir
                            / "probe"
                            / f"{arm}-s{seed}"
                            / f"{task}-{mode}-n{budget}-{content_hash(ov, 8)}"
                        )
                        jobs.append(
                            Job(
                                len(jobs),
                                "probe",
                                arm,
                                seed,
                                ov,
                                str(run),
                                task=task,
                                mode=mode,
                                budget=budget,
                                needs=source,
                            )
                        )
    return jobs


def is_done(job: Job) -> bool:
    """A job is done when its result file exists (written last, atomically)."""
    name = "metrics.json" if job.kind == "pretrain" else "result.json"
    return (Path(job.run_dir) / name).is_file()
