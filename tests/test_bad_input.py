"""Bad input stops before any expensive work, with one clear message naming the value."""

import os
import subprocess
import sys

import pytest

from pretrainlab.config import pretrain_parts
from pretrainlab.errors import PretrainlabError
from pretrainlab.pretrain import pretrain

CLI = [sys.executable, "-m", "pretrainlab"]


def _cli(*args, cwd, env=None):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["data.seq_len=512"], r"data.seq_len=512 is longer than the encoder's max positions"),
        (["objective.mask_rate=0"], r"objective.mask_rate=0 is not valid"),
        (["objective.mask_rate=1.5"], r"objective.mask_rate=1.5 is not valid"),
        (["objective=mlm_nsp", "objective.weights.nsp=-1"], r"objective.weights=.* is not valid"),
        (["encoder.heads=3"], r"encoder.heads=3 is not valid"),
        (["encoder.layers=0"], r"encoder.layers=0 is not valid"),
        (["optim.lr=0"], r"optim.lr=0 is not valid"),
        (["optim.schedule=sometimes"], r"optim.schedule='sometimes' is not valid"),
        (["data.batch_size=0"], r"data.batch_size=0 is not valid"),
        (["trainer.max_steps=0"], r"trainer.max_steps=0 is not valid"),
        (["tokenizer.kind=morfessor"], r"tokenizer.kind='morfessor' is not valid"),
        (["corpus.num_words=10"], r"corpus.num_words=10 is not valid"),
    ],
)
def test_config_rules_name_the_bad_value(pretrain_cfg, overrides, match):
    with pytest.raises(PretrainlabError, match=match):
        pretrain_parts(pretrain_cfg(*overrides))


def test_corpus_too_small_for_one_batch(pretrain_cfg, tmp_path):
    cfg = pretrain_cfg("corpus.num_words=2000", "data.batch_size=64", "data.seq_len=128")
    with pytest.raises(PretrainlabError, match="too small for one batch"):
        pretrain(cfg, tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_nsp_on_data_without_boundaries(pretrain_cfg, tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("\n".join(f"line number {i} has some words in it" for i in range(3000)))
    cfg = pretrain_cfg("objective=nsp", "corpus=text_files", f"corpus.paths=[{text}]",
                       "corpus.doc_boundary=line", "tokenizer.vocab_size=200")
    with pytest.raises(PretrainlabError, match="NSP needs documents with sentence boundaries"):
        pretrain(cfg, tmp_path / "run")


def test_cli_prints_one_paragraph_and_exits_2(tmp_path):
    out = _cli("pretrain", "data.seq_len=4096", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert out.returncode == 2
    assert "data.seq_len=4096 is longer than the encoder's max positions" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_unknown_group_option_lists_choices(tmp_path):
    out = _cli("pretrain", "objective=elmo", cwd=tmp_path)
    assert out.returncode != 0
    assert "elmo" in out.stderr and "mlm" in out.stderr and "clm" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_unknown_command(tmp_path):
    out = _cli("pretrian", cwd=tmp_path)
    assert out.returncode == 2 and "unknown command 'pretrian'" in out.stderr
