"""A tiny study end to end through the sequential and joblib launchers; re-runs skip finished
work; a failing run is recorded while the rest complete; reproduce matches."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pretrainlab.errors import PretrainlabError
from pretrainlab.recipe import Recipe
from pretrainlab.study.plan import expand
from pretrainlab.study.reproduce import reproduce
from pretrainlab.study.run import study
from tests.conftest import TINY, compose_config


def _study_cfg(tmp: Path, cache: Path, *extra: str):
    pre = [o for o in TINY if not o.startswith("logger")] + [
        f"paths.cache_dir={cache}",
        "logger=none",
    ]
    probe = [
        "logger=none",
        f"paths.cache_dir={cache}",
        "probe.task.train_size=200",
        "probe.task.dev_size=60",
        "probe.task.test_size=60",
    ]
    quoted = lambda xs: "[" + ",".join(f'"{x}"' for x in xs) + "]"  # noqa: E731
    return compose_config(
        "study",
        [
            "study.name=tiny",
            f"study.dir={tmp}",
            "study.pretrain_seeds=[0,1]",
            "study.tasks=[topic]",
            "study.modes=[linear]",
            "study.budgets=[100]",
            "study.objectives=[mlm,clm]",
            "study.wandb=false",
            f"study.pretrain_overrides={quoted(pre)}",
            "study.budget.flops=null",  # not the flagship's budget: max_steps decides
            f"study.probe_overrides={quoted(probe)}",
            *extra,
        ],
    )


def _mtimes(study_dir: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in study_dir.rglob("result.json")}


def test_every_experiment_expands(tmp_path):
    for name in ("mlm_vs_clm", "fact_recall", "nsp_ablation", "mask_rate", "task_weighting",
                 "objective_zoo", "mlm_vs_clm_tagging", "simcse_similarity"):  # fmt: skip
        cfg = compose_config("study", [f"experiment={name}", f"study.name={name}"])
        jobs = expand(cfg)
        assert {j.kind for j in jobs} == {"pretrain", "probe"}
        for job in jobs:  # every job's overrides compose into a valid config
            if job.id < 3 or job.kind == "pretrain":
                job_cfg = compose_config(job.kind, job.overrides)
            if job.kind == "pretrain" and job.seed == jobs[0].seed:  # and pass validation
                assert Recipe.from_cfg(job_cfg).cfg.trainer.max_steps > 0


def test_a_zero_shot_task_is_probed_once_per_checkpoint():
    cfg = compose_config(
        "study",
        [
            "study.name=z",
            "study.tasks=[facts,topic]",
            "study.objectives=[mlm]",
            "study.modes=[linear,finetune]",
            "study.budgets=[200,1000]",
        ],
    )
    probes = [j for j in expand(cfg) if j.kind == "probe"]
    facts = [j for j in probes if j.task == "facts"]
    assert {(j.mode, j.budget) for j in facts} == {("zeroshot", 0)}
    assert len(facts) == 2 * 3  # mlm and scratch x 3 seeds, once each
    assert len(probes) - len(facts) == 2 * 3 * 2 * 2  # topic: x 2 modes x 2 budgets


def test_task_modes_override_the_study_modes_per_task():
    cfg = compose_config(
        "study",
        [
            "study.name=m",
            "study.tasks=[lexical,direction]",
            "study.objectives=[mlm]",
            "study.pretrain_seeds=[0]",
            "study.budgets=[500]",
            "+study.task_modes.direction=[finetune]",
        ],
    )
    probes = [j for j in expand(cfg) if j.kind == "probe"]
    assert {(j.task, j.mode) for j in probes} == {
        ("lexical", "linear"),
        ("lexical", "finetune"),
        ("direction", "finetune"),
    }
    assert len(probes) == 2 * 3  # mlm and scratch


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("+study.task_modes.topc=[finetune]", "'topc', which is no probe task"),
        ("+study.task_modes.topic=[]", "study.task_modes.topic=[] is not valid"),
    ],
)
def test_bad_task_modes_name_the_value(override, fragment):
    cfg = compose_config("study", ["study.name=m", "study.tasks=[topic]", override])
    with pytest.raises(PretrainlabError, match=re.escape(fragment)):
        expand(cfg)


def test_task_modes_of_tasks_the_study_does_not_run_are_ignored():
    cfg = compose_config("study", ["study.name=m", "study.tasks=[topic]", "study.modes=[linear]"])
    assert {j.mode for j in expand(cfg) if j.kind == "probe"} == {"linear"}


def test_tiny_study_sequential_then_resume(tmp_path, cache_dir):
    cfg = _study_cfg(
        tmp_path, cache_dir, '+study.variants.bad=["objective=mlm","objective.mask_rate=2.0"]'
    )
    out = study(cfg, tmp_path, [], {})
    for name in (
        "results.csv",
        "summary.csv",
        "comparisons.csv",
        "report.md",
        "report.html",
        "plan.json",
        "plots/pretraining_curves.png",
        "plots/probe_scores.png",
    ):
        assert (tmp_path / name).is_file(), name
    results = pd.read_csv(tmp_path / "results.csv")
    ok = results[results.status == "ok"]
    assert set(ok.objective) == {"mlm", "clm", "scratch"} and len(ok) == 6
    bad = results[results.objective == "bad"]
    assert len(bad) == 2 and set(bad.status) == {"missing"}
    assert (bad.error.str.contains("did not finish")).all()
    assert (
        "mask_rate" in (tmp_path / "report.md").read_text()
        or "bad" in (tmp_path / "report.md").read_text()
    )
    assert len(out["summary"]) == 3
    timings = json.loads((tmp_path / "timings.json").read_text())["invocations"]
    assert len(timings) == 1 and timings[0]["pretrain"]["jobs"] == 6
    assert timings[0]["probe"]["jobs"] == 8 and timings[0]["probe"]["wall_s"] > 0
    assert "pretrain " in (tmp_path / "report.md").read_text()  # the phase times are reported
    before = _mtimes(tmp_path)
    study(cfg, tmp_path, [], {})  # everything finished is skipped
    assert _mtimes(tmp_path) == before
    again = json.loads((tmp_path / "timings.json").read_text())["invocations"]
    assert again[0] == timings[0]  # the first invocation's record is kept
    assert again[1]["pretrain"]["jobs"] == 2  # only the failed variant is tried again


def test_tiny_study_joblib_launcher(tmp_path, cache_dir):
    cfg = _study_cfg(tmp_path, cache_dir)
    study(cfg, tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], {"n_jobs": 2})
    results = pd.read_csv(tmp_path / "results.csv")
    assert (results.status == "ok").all() and len(results) == 6


def test_reproduce_matches_within_tolerance(pretrained):
    rows, changes = reproduce(pretrained["mlm"], rtol=0.01, atol=1e-4)
    assert rows and all(r["ok"] for r in rows) and changes == []


def test_reproduce_names_a_machine_that_differs_from_the_original(pretrained, tmp_path, capsys):
    """A run recorded on another CPU kernel set with 3 threads (run.json edited to say so)
    reproduces with 3 threads and a warning naming the kernel set; reproduce.json keeps it."""
    import shutil

    from pretrainlab.io import atomic_write_json, read_json
    from pretrainlab.study.reproduce import _main

    run = tmp_path / "run"
    shutil.copytree(pretrained["mlm"], run, ignore=shutil.ignore_patterns("reproduce"))
    info = read_json(run / "run.json")
    info["machine"] = {**info["machine"], "cpu_capability": "AVX2-elsewhere", "torch_threads": 3}
    atomic_write_json(run / "run.json", info)
    assert _main([str(run)]) == 0  # the metrics still agree on this tiny run
    (out,) = (run / "reproduce").iterdir()
    now = read_json(out / "run.json")["machine"]
    assert now["torch_threads"] == 3  # the original's thread count, not this process's
    err = capsys.readouterr().err
    assert f"machine.cpu_capability: AVX2-elsewhere -> {now['cpu_capability']}" in err
    assert read_json(out / "reproduce.json")["environment_changes"] == [
        f"machine.cpu_capability: AVX2-elsewhere -> {now['cpu_capability']}"
    ]


def test_environment_changes_of_a_run_older_than_the_record():
    from pretrainlab.study.reproduce import environment_changes

    now = {"versions": {"torch": "2.13.0"}, "machine": {"cpu_capability": "AVX512"}}
    assert environment_changes(now, now) == []
    assert environment_changes({"versions": {"torch": "2.13.0"}}, now) == [
        "machine.cpu_capability: not recorded -> AVX512"
    ]


def _axes_cfg(*extra: str):
    return compose_config(
        "study",
        ["study.name=axes", "study.tasks=[topic]", "study.modes=[linear]", "study.budgets=[100]",
         "study.objectives=[mlm,clm]", "study.pretrain_seeds=[0,1]", *extra],
    )  # fmt: skip


def test_probe_seeds_and_a_twin_expand_as_two_axes():
    jobs = expand(_axes_cfg("study.probe_seeds=[5,6]", "study.control_twin=true"))
    pre = [j for j in jobs if j.kind == "pretrain"]
    assert [(j.arm, j.seed) for j in pre] == [
        ("mlm", 0), ("mlm", 1), ("clm", 0), ("clm", 1), ("mlm_twin", 2), ("mlm_twin", 3)
    ]  # fmt: skip
    twin = [j for j in pre if j.arm == "mlm_twin"]
    assert [j.meta["pairs_with_seed"] for j in twin] == [0, 1]
    assert twin[0].overrides[:-1] == pre[0].overrides[:-1] and "seed=2" in twin[0].overrides
    probes = [j for j in jobs if j.kind == "probe"]
    assert len(probes) == 4 * 2 * 2  # (mlm, clm, twin, scratch) x pretraining x probe seeds
    assert {(j.seed, j.probe_seed) for j in probes if j.arm == "scratch"} == {
        (0, 5), (0, 6), (1, 5), (1, 6)
    }  # fmt: skip
    assert all(f"seed={j.probe_seed}" in j.overrides for j in probes)
    # without probe seeds a twin probes with the seed of the run it pairs with
    plain = [j for j in expand(_axes_cfg("study.control_twin=clm")) if j.kind == "probe"]
    assert {(j.seed, j.probe_seed) for j in plain if j.arm == "clm_twin"} == {(2, 0), (3, 1)}
    both = [j for j in expand(_axes_cfg("study.control_twin=[mlm,clm]")) if j.kind == "pretrain"]
    assert [(j.arm, j.seed) for j in both][4:] == [
        ("mlm_twin", 2), ("mlm_twin", 3), ("clm_twin", 2), ("clm_twin", 3)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("+study.seeds=[0,1]", "study.seeds was split in two"),
        ("study.probe_seeds=[]", "study.probe_seeds is empty"),
        ("study.probe_seeds=[1,1]", "study.probe_seeds=[1, 1] repeats a seed"),
        ("study.control_twin=nsp", "study.control_twin='nsp' is not valid"),
        ("study.control_twin=[mlm,mlm]", "study.control_twin=['mlm', 'mlm'] is not valid"),
    ],
)
def test_bad_seed_axes_name_the_value(override, fragment):
    with pytest.raises(PretrainlabError, match=re.escape(fragment)):
        expand(_axes_cfg(override))


def test_tiny_study_with_probe_seeds_and_a_twin_then_power(tmp_path, cache_dir, capsys):
    cfg = _study_cfg(
        tmp_path, cache_dir, "study.objectives=[mlm]", "study.probe_seeds=[0,1]",
        "study.control_twin=true",
    )  # fmt: skip
    study(cfg, tmp_path, [], {})
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 3 * 2 * 2 and (results.status == "ok").all()
    assert sorted(results.seed.unique()) == [0, 1]  # probe seeds, beside the pretraining seeds
    for col in ("chance_score", "bow_score", "mdl_bits"):  # references and MDL reach the table
        assert results[col].notna().all(), col
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["var_probe"].notna().all() and (summary["n_probe"] == 2).all()
    family = pd.read_csv(tmp_path / "comparisons.csv")
    assert set(family.objective_a) | set(family.objective_b) == {"mlm", "scratch"}
    twins = pd.read_csv(tmp_path / "twin_comparisons.csv")
    assert len(twins) == 1 and twins.n_pairs.item() == 2
    assert not twins.significant.any()  # the negative control: no difference after correction
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Answer") < md.index("## Summary") and "## Negative control" in md
    assert "before correction" in md and "sd probe" in md and "## MDL" in md
    from pretrainlab.study.power import run

    table = run([str(tmp_path), "--effect", "0.05"])
    assert "seeds needed" in capsys.readouterr().out.replace("_", " ")
    assert len(table) == len(family) and not table["seeds_needed"].isin([0, 1]).any()
    with pytest.raises(SystemExit):
        run([str(tmp_path), "--effect", "-1"])
    assert "--effect -1.0 is not valid" in capsys.readouterr().err
