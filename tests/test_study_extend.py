"""``study.extend_from``: a study at a larger budget resumes the runs of a smaller one, and the
extended runs are the runs the larger budget gives from step 0 (constant schedule)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import atomic_write_json
from pretrainlab.study.extend import extend_runs
from pretrainlab.study.plan import expand
from pretrainlab.study.run import study
from tests.conftest import TINY, compose_config
from tests.test_study import _study_cfg

STEP_TOKENS = 16 * 64  # TINY: batch 16 x seq_len 64


def _cfg(tmp: Path, cache: Path, steps: int, *extra: str, pre: tuple[str, ...] = ()):
    """A one-run study (MLM, seed 0) of the tiny encoder at ``steps`` steps' worth of tokens."""
    base = [o for o in TINY if not o.startswith(("logger", "trainer.max_steps"))]
    over = [*base, "logger=none", f"paths.cache_dir={cache}", "optim.schedule=constant", *pre]
    return _study_cfg(
        tmp,
        cache,
        "study.objectives=[mlm]",
        "study.pretrain_seeds=[0]",
        "study.baseline=false",
        f"study.budget.tokens={steps * STEP_TOKENS}",
        "study.pretrain_overrides=[" + ",".join(f'"{o}"' for o in over) + "]",
        *extra,
    )


def _run(study_dir: Path, name: str) -> Path:
    (run,) = (study_dir / "pretrain").glob(f"{name}-*")
    return run


def test_an_extended_study_equals_the_longer_run(tmp_path, cache_dir):
    """10 steps, then extended to 20: the run equals one pretrained for 20 from step 0 with the
    same overrides (the job's own), and it keeps the short run's history."""
    from pretrainlab.pretrain import pretrain

    short, long = tmp_path / "short", tmp_path / "long"
    study(_cfg(short, cache_dir, 10), short, [], {})
    cfg = _cfg(long, cache_dir, 20, f"study.extend_from={short}")
    study(cfg, long, [], {})
    (job,) = [j for j in expand(cfg) if j.kind == "pretrain"]
    ext, ref = job.path(long), tmp_path / "direct"
    info = json.loads((ext / "run.json").read_text())
    threads = f"threads={info['machine']['torch_threads']}"  # CPU sums depend on it
    pretrain(compose_config("pretrain", [*job.overrides, threads]), ref)
    assert info["resumed_from_step"] == 10 and info["compute"]["steps"] == 20
    assert info["extended_from"] == str(_run(short, "mlm-s0").resolve())
    got, want = (json.loads((r / "metrics.json").read_text()) for r in (ext, ref))
    for key in ("val/loss", "val/mlm_acc", "val/ppl"):
        assert got[key] == want[key], key  # the same run, bit for bit
    rows = [pd.read_csv(r / "history.csv").sort_values(["step", "name"]) for r in (ext, ref)]
    assert rows[0][["step", "name"]].values.tolist() == rows[1][["step", "name"]].values.tolist()
    loss = [r[r["name"] == "val/loss"]["value"].tolist() for r in rows]
    assert loss[0] == loss[1] and len(loss[0]) >= 2  # the short run's rows kept, none repeated
    assert "extended_from" in (long / "report.md").read_text()
    assert (pd.read_csv(long / "results.csv")["status"] == "ok").all()


def _fake_source(tmp: Path, cfg, done: bool = True) -> Path:
    jobs = expand(cfg)
    atomic_write_json(tmp / "plan.json", {"study": "src", "jobs": [j.to_dict() for j in jobs]})
    for job in jobs:
        if job.kind == "pretrain":
            job.path(tmp).mkdir(parents=True)
            atomic_write_json(job.path(tmp) / "run.json", {"status": "completed"})
            if done:
                atomic_write_json(job.path(tmp) / "metrics.json", {"val/loss": 1.0})
    return tmp


@pytest.mark.parametrize(
    ("source_steps", "target_extra", "pre", "done", "fragment"),
    [
        (20, [], (), True, "is not smaller than"),
        (10, [], ("optim.schedule=linear",), True, "needs optim.schedule=constant"),
        (10, [], (), False, "no finished run of arm 'mlm' seed 0"),
        (10, ["study.pretrain_seeds=[7]"], (), True, "no finished run of arm 'mlm' seed 7"),
        (10, [], ("objective.mask_rate=0.2",), True, "overrides differ: objective.mask_rate=0.2"),
    ],
)
def test_bad_extensions_name_the_reason_before_copying(
    tmp_path, cache_dir, source_steps, target_extra, pre, done, fragment
):
    source = _fake_source(tmp_path / "src", _cfg(tmp_path / "src", cache_dir, source_steps), done)
    cfg = _cfg(tmp_path / "dst", cache_dir, 20, *target_extra, pre=pre)
    with pytest.raises(PretrainlabError, match=fragment):
        extend_runs(expand(cfg), tmp_path / "dst", source)
    assert not (tmp_path / "dst" / "pretrain").exists()  # nothing copied


def test_extend_from_a_folder_that_is_not_a_study(tmp_path, cache_dir):
    with pytest.raises(PretrainlabError, match="is not a study directory"):
        extend_runs(expand(_cfg(tmp_path, cache_dir, 20)), tmp_path, tmp_path / "nowhere")
