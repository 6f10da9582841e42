"""``experiment=bert_ablation_gpu`` (BERT's Table 5 on one GPU) resolves, and runs on the CPU
with a tiny override: the experiment's own overrides (mixed WikiText + JSON-lines corpus, all
three objectives, fine-tuned GLUE probes) against small files in the release formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from pretrainlab.study.run import study
from tests.conftest import compose_config
from tests.test_real_data import WIKITEXT, write

# the GPU recipe's settings a CPU test replaces (key -> value), the rest of its overrides kept
TINY = {
    "trainer": "cpu", "encoder": "tiny", "tokenizer.vocab_size": "600", "data.seq_len": "64",
    "data.batch_size": "8", "data.num_workers": "0", "optim.warmup_steps": "2",
    "trainer.val_check_interval": "5", "checkpoint_every": "5",
}  # fmt: skip
DROPPED = ("encoder.hidden", "encoder.heads", "encoder.ffn")


def _data_root(root: Path) -> Path:
    write(root / "wikitext-2" / "wiki.train.tokens", WIKITEXT * 20)
    reviews = [
        {"id": f"unsup/{i}_0.txt", "text": f"This film number {i} was {w}. I would watch it "
         f"again.<br /><br />The actors were {w} and the plot was {w} too."}
        for i, w in enumerate(["good", "bad", "dull", "great", "fine"] * 60)
    ]  # fmt: skip
    write(root / "imdb-unsup" / "unsup.jsonl", "".join(json.dumps(r) + "\n" for r in reviews))
    rows = [f"the film was {'good' if i % 2 else 'bad'} number {i}\t{i % 2}" for i in range(400)]
    write(root / "glue" / "SST-2" / "train.tsv", "sentence\tlabel\n" + "\n".join(rows) + "\n")
    write(root / "glue" / "SST-2" / "dev.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\n")
    return root


def test_the_gpu_recipe_resolves():
    out = subprocess.run(
        [sys.executable, "-m", "pretrainlab", "study", "experiment=bert_ablation_gpu",
         "--cfg", "job", "--resolve"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    cfg = OmegaConf.create(out.stdout)
    assert cfg.study.objectives == ["mlm", "mlm_nsp", "clm"] and cfg.study.budget.flops == 3e15
    assert "trainer=gpu" in cfg.study.pretrain_overrides


def test_the_gpu_recipe_runs_on_the_cpu_with_a_tiny_override(tmp_path, cache_dir):
    root, out = _data_root(tmp_path / "data"), tmp_path / "study"
    cfg = compose_config(
        "study",
        ["experiment=bert_ablation_gpu", f"data_root={root}", "study.name=gpu_smoke",
         f"study.dir={out}", "study.pretrain_seeds=[0]", "study.tasks=[sst2]",
         "study.budgets=[40]", "study.budget.flops=null", "study.budget.tokens=5120",
         "study.wandb=false"],
    )  # fmt: skip
    kept = [o for o in cfg.study.pretrain_overrides if not o.startswith(DROPPED)]
    pre = [f"{k}={TINY.get(k, v)}" for k, _, v in (o.partition("=") for o in kept)]
    pre += [f"paths.cache_dir={cache_dir}", "logger=none", "trainer.limit_val_batches=2",
            "data.max_val_examples=16"]  # fmt: skip
    cfg.study.pretrain_overrides = pre
    cfg.study.probe_overrides = [
        *cfg.study.probe_overrides, "logger=none", f"paths.cache_dir={cache_dir}",
        "probe.finetune.max_steps=4", "probe.finetune.eval_every=2", "probe.max_length=64",
    ]  # fmt: skip
    study(cfg, out, [], {})
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["objective"]) == ["clm", "mlm", "mlm_nsp", "scratch"]
    assert (results["status"] == "ok").all(), results[["objective", "error"]]
    runs = [json.loads(p.read_text()) for p in (out / "pretrain").glob("*/run.json")]
    assert {r["compute"]["tokens"] for r in runs} == {5120}  # 10 steps of 8 x 64, each arm
    assert all(r["corpus"] == "text_files" for r in runs)
