"""Shared fixtures: the real config composed with Hydra's compose API, shrunk for CPU tests,
and one small cache of corpus/tokenizer/token ids shared by the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from pretrainlab.cli import CONF_DIR

REPO = Path(__file__).resolve().parents[1]
CONF = CONF_DIR  # inside the package (conf/ at the top is a link to it)
SHARED_DATA = Path(os.environ.get("PRETRAINLAB_DATA_ROOT", REPO.parent / "shared" / "data"))

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# A small but real setting: the embedded corpus at 60k words, a 2k vocabulary, tiny encoder.
TINY = [
    "logger=none",
    "corpus.num_words=60000",
    "tokenizer.vocab_size=2000",
    "data.seq_len=64",
    "data.batch_size=16",
    "data.max_val_examples=32",
    "trainer.max_steps=20",
    "trainer.val_check_interval=10",
    "trainer.log_every_n_steps=5",
    "trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "checkpoint_every=10",
    "optim.warmup_steps=5",
]


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def pretrain_cfg(cache_dir: Path):
    """``pretrain_cfg(*overrides)``: the tiny pretraining config with the shared cache."""

    def make(*overrides: str) -> DictConfig:
        base = TINY
        if any(o.startswith("corpus=") for o in overrides):  # another corpus: drop its knobs
            base = [o for o in TINY if not o.startswith("corpus.")]
        return compose_config("pretrain", [*base, f"paths.cache_dir={cache_dir}", *overrides])

    return make


@pytest.fixture(scope="session")
def pretrained(pretrain_cfg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny MLM and CLM runs (20 steps each), trained once per session."""
    from pretrainlab.pretrain import pretrain

    runs = {}
    for objective in ("mlm", "clm"):
        run_dir = tmp_path_factory.mktemp(f"run_{objective}")
        pretrain(pretrain_cfg(f"objective={objective}"), run_dir)
        runs[objective] = run_dir
    return runs


@pytest.fixture(scope="session")
def probe_cfg(cache_dir: Path):
    """``probe_cfg(checkpoint, task, *overrides)``: a probe config with small embedded splits."""

    def make(checkpoint: str | Path, task: str, *overrides: str) -> DictConfig:
        small = ["probe.task.train_size=200", "probe.task.dev_size=80", "probe.task.test_size=80"]
        if task in ("sst2", "mrpc", "rte", "squad", "text_classification"):
            small = []
        return compose_config(
            "probe",
            [
                f"checkpoint={checkpoint}",
                f"probe={task}",
                "logger=none",
                "progress_bar=false",
                f"paths.cache_dir={cache_dir}",
                "probe.finetune.max_epochs=1",
                *small,
                *overrides,
            ],
        )

    return make
