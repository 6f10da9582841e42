"""``study.extend_from=SOURCE``: a study at a larger pretraining budget whose runs start where
the same experiment's runs in SOURCE stopped, not at step 0, so a learning curve over budgets
costs its largest budget once instead of the sum of all of them.

It is exact only under a constant learning rate after warmup (``optim.schedule=constant``):
a run resumed to a later step is then the run a longer budget would have planned from the
start (exact resume, ``tests/test_resume.py``); under a decaying schedule the rate at a step
depends on the planned length, so it is refused. A SOURCE run is matched by arm and seed; its
overrides must equal the job's except the budget, which must be smaller and of the same kind.
"""

from __future__ import annotations

from pathlib import Path

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.run import copy_run
from pretrainlab.study.budgets import SCHEDULE
from pretrainlab.study.plan import Job, is_done

CONSTANT = f"{SCHEDULE}constant"
BUDGET = "budget."
# what a finished run holds that its extension writes anew: it must not look finished
NOT_COPIED = ("hf", "metrics.json", "reproduce", "error.json")


def _budget(job: Job) -> tuple[str, float]:
    """The (kind, value) of the job's declared budget override (``budget.flops=5e13``)."""
    for o in job.overrides:
        key, _, value = o.partition("=")
        if key.startswith(BUDGET) and value not in ("null", "None"):
            return key, float(value)
    raise PretrainlabError(
        f"study.extend_from needs a declared budget (study.budget.tokens or .flops) in both "
        f"studies; pretraining job {job.run_dir} has none."
    )


def _source_of(job: Job, source: Path, by_key: dict[tuple[str, int], Job]) -> Job:
    old = by_key.get((job.arm, job.seed))
    if old is None or not is_done(old, source):
        raise PretrainlabError(
            f"study.extend_from={source}: it has no finished run of arm {job.arm!r} seed "
            f"{job.seed} to extend; finish that study first or drop study.extend_from."
        )
    differ = sorted(
        {o for o in old.overrides if not o.startswith(BUDGET)}
        ^ {o for o in job.overrides if not o.startswith(BUDGET)}
    )
    (kind, before), (kind_now, after) = _budget(old), _budget(job)
    if differ or kind != kind_now or before >= after:
        why = f"overrides differ: {', '.join(differ)}" if differ else (
            f"its budget {kind}={before:g} is not smaller than {kind_now}={after:g}"
        )  # fmt: skip
        raise PretrainlabError(
            f"study.extend_from={source}: run {old.run_dir} cannot be extended to "
            f"{job.run_dir} ({why}); extend only the same experiment to a larger budget."
        )
    return old


def extend_runs(jobs: list[Job], study_dir: Path, source: Path) -> int:
    """Copy into each pretraining folder not yet started the finished SOURCE run of its arm
    and seed (checkpoint, history, run.json, W&B run; not hf/ or metrics.json), so the
    pretraining phase resumes it to this study's budget. Returns how many were copied; every
    check runs before the first copy."""
    if not (source / "plan.json").is_file():
        raise PretrainlabError(
            f"study.extend_from={source} is not a study directory (no plan.json)."
        )
    pretrain = [j for j in jobs if j.kind == "pretrain" and not j.path(study_dir).exists()]
    for job in pretrain:
        schedule = [o for o in job.overrides if o.lstrip("+").startswith(SCHEDULE)]
        if schedule[-1:] != [CONSTANT]:
            raise PretrainlabError(
                f"study.extend_from needs {CONSTANT} in study.pretrain_overrides: under a "
                f"decaying schedule a resumed run is not the longer run ({job.run_dir} has "
                f"{schedule[-1] if schedule else 'the default schedule'})."
            )
    old_jobs = [Job(**j) for j in read_json(source / "plan.json")["jobs"]]
    by_key = {(j.arm, j.seed): j for j in old_jobs if j.kind == "pretrain"}
    pairs = [(job, _source_of(job, source, by_key)) for job in pretrain]
    for job, old in pairs:
        origin = old.path(source)
        copy_run(origin, job.path(study_dir), NOT_COPIED, status="extending",
                 extended_from=str(origin.resolve()))  # fmt: skip
    return len(pairs)
