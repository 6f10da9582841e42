"""The MDL probe (online code length, Voita & Titov 2020) beside a linear probe's accuracy:
the code against a hand computation, learnable against random labels, ``probe.mdl`` input
checks, and ``result.json`` / the logged metrics of a real linear probe."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json
from pretrainlab.probes.linear import Labelled, fit_classifier
from pretrainlab.probes.mdl import online_code_length, timesteps
from pretrainlab.probes.run import probe

EPOCHS, LR, WD, SEED = 40, 0.05, 0.1, 3


def _blobs(n: int, labels: int, dim: int, seed: int, spread: float = 3.0):
    """``labels`` Gaussian blobs in ``dim`` dimensions, ``n`` rows in random order."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, labels, (n,), generator=g)
    centres = torch.randn(labels, dim, generator=g) * spread
    return centres[y] + torch.randn(n, dim, generator=g), y


def test_timesteps_are_powers_of_two_fractions_rounded_down():
    assert timesteps(150) == [2, 4, 9, 18, 37, 75, 150]
    assert timesteps(200) == [3, 6, 12, 25, 50, 100, 200]
    assert timesteps(10) == [1, 2, 5, 10]  # 10/64 .. 10/16 round to 0: at least 1, once
    assert timesteps(1) == [1]
    with pytest.raises(ValueError):
        timesteps(0)


def test_log_probs_are_the_heads_distribution():
    x, y = _blobs(40, 3, 4, 0)
    head = fit_classifier(Labelled(x, y, x, y, 3), SEED, EPOCHS, LR, WD)
    logp = head.log_probs(x)
    assert logp.shape == (40, 3)
    assert torch.allclose(logp.exp().sum(1), torch.ones(40, dtype=logp.dtype))
    assert torch.equal(logp.argmax(1), head.predict(x))


def _by_hand(x: torch.Tensor, y: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> float:
    """12 rows, 2 labels: ends 1, 3, 6, 12. Row 0 costs log2(2) = 1 bit; each later block is
    coded by a head fitted on the rows before it, its probabilities recomputed here from the
    head's weights and the prefix's own mean and std (one row: centred only)."""
    bits = 1.0
    for start, end in ((1, 3), (3, 6), (6, 12)):
        head = fit_classifier(
            Labelled(x, y, dx, dy, 2).first(start), SEED, EPOCHS, LR, WD, "loss"
        ).head
        mean = x[:start].mean(0)
        std = x[:start].std(0).clamp(min=1e-6) if start > 1 else torch.ones(x.size(1))
        with torch.no_grad():
            p = torch.softmax(head((x[start:end] - mean) / std).double(), -1)
        bits += sum(-math.log2(p[i, y[start + i]].item()) for i in range(end - start))
    return bits


def test_online_code_length_matches_a_hand_computation():
    x, y = _blobs(12, 2, 3, 1, spread=1.0)
    dx, dy = _blobs(8, 2, 3, 2, spread=1.0)
    got = online_code_length(Labelled(x, y, dx, dy, 2), SEED, WD, EPOCHS, LR)
    assert got["timesteps"] == [1, 3, 6, 12]
    assert got["uniform_bits"] == 12.0
    assert got["bits"] == pytest.approx(_by_hand(x, y, dx, dy), rel=1e-9)
    assert got["compression"] == pytest.approx(12.0 / got["bits"])


def test_learnable_labels_compress_and_random_labels_do_not():
    x, y = _blobs(640, 3, 8, 4)  # one draw: train and dev share the blobs' centres
    x, y, dx, dy = x[:512], y[:512], x[512:], y[512:]
    learnable = online_code_length(Labelled(x, y, dx, dy, 3), SEED, WD, EPOCHS, LR)
    assert learnable["uniform_bits"] == pytest.approx(512 * math.log2(3))
    assert learnable["compression"] > 3, learnable
    noise = torch.randint(0, 3, (512,), generator=torch.Generator().manual_seed(9))
    dev_noise = torch.randint(0, 3, (128,), generator=torch.Generator().manual_seed(10))
    rand = online_code_length(Labelled(x, noise, dx, dev_noise, 3), SEED, WD, EPOCHS, LR)
    assert rand["bits"] > 0.97 * rand["uniform_bits"], rand
    assert rand["compression"] < 1.05 < learnable["compression"]


def _one_paragraph(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < 700, text
    return text


@pytest.mark.parametrize(
    ("task", "overrides", "names"),
    [
        ("qa", ["probe.mdl=true"], ["probe.mdl=True", "'qa', a qa task"]),
        ("sentiment", ["probe.mode=finetune", "probe.mdl=true"], ["probe.mode=finetune"]),
        ("facts", ["probe.mdl=true"], ["probe.mode=zeroshot"]),
        ("sentiment", ["probe.mdl=yes"], ["probe.mdl='yes'", "expected null", "true", "false"]),
        ("sentiment", ["probe.mdl=1"], ["probe.mdl=1 is not valid", "expected null"]),
    ],
)
def test_bad_mdl_values_fail_before_any_work(
    pretrained, probe_cfg, cache_dir, tmp_path, task, overrides, names
):
    features = cache_dir / "features"
    before = sorted(features.iterdir()) if features.exists() else []
    run_dir = tmp_path / "run"
    with pytest.raises(PretrainlabError) as err:
        probe(probe_cfg(pretrained["mlm"], task, *overrides), run_dir)
    text = _one_paragraph(err)
    for name in [*names, "probe.mode=linear", "classification and pair tasks"]:
        assert name in text, text
    assert not run_dir.exists()  # nothing written: no run folder, no new cached features
    assert (sorted(features.iterdir()) if features.exists() else []) == before


def test_linear_probe_writes_and_logs_mdl(pretrained, probe_cfg, tmp_path, monkeypatch):
    import pretrainlab.probes.frozen as frozen

    calls: dict[str, tuple] = {}

    def spy(name, fn):  # record what linear_probe's head and the MDL code were given
        def wrapped(*args):
            calls[name] = args
            return fn(*args)

        monkeypatch.setattr(frozen, name, wrapped)

    spy("tune_classifier", frozen.tune_classifier)
    spy("online_code_length", frozen.online_code_length)
    common = ["probe.train_examples=150", "probe.linear.weight_decay_grid=[0.1,10.0]"]
    cfg = probe_cfg(pretrained["mlm"], "sentiment", *common, "logger=csv")
    result = probe(cfg, tmp_path / "a")
    # the MDL code: the probe's rows in a seeded shuffle (budget_indices sorts them), coded
    # with the weight decay dev chose for the accuracy head, its epochs and lr
    probe_x = calls["tune_classifier"][0].train_x
    mdl_x = calls["online_code_length"][0].train_x
    assert len(mdl_x) == 150 and not torch.equal(mdl_x, probe_x)
    assert (mdl_x[:, None] == probe_x[None]).all(-1).any(1).all()  # the same rows, reordered
    assert calls["online_code_length"][2:] == (
        result["tuning"]["chosen"]["weight_decay"],
        cfg.probe.linear.epochs,
        cfg.probe.linear.lr,
    )
    mdl = read_json(tmp_path / "a" / "result.json")["mdl"]
    assert mdl == result["mdl"] and set(mdl) == {"bits", "uniform_bits", "compression", "timesteps"}
    assert mdl["timesteps"] == [2, 4, 9, 18, 37, 75, 150]
    assert mdl["uniform_bits"] == pytest.approx(150 * math.log2(2))
    assert mdl["bits"] > 2 * 1.0  # at least the first block's 2 rows at 1 bit each
    assert mdl["compression"] == pytest.approx(mdl["uniform_bits"] / mdl["bits"])
    with (tmp_path / "a" / "csv" / "metrics.csv").open(newline="") as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["mdl/bits"]) == pytest.approx(mdl["bits"])
    assert float(last["mdl/compression"]) == pytest.approx(mdl["compression"])
    assert "mdl/timesteps" not in last
    # probe.mdl=false: no mdl, and the accuracy path is unchanged by computing it
    off = probe(probe_cfg(pretrained["mlm"], "sentiment", *common, "probe.mdl=false"), tmp_path)
    assert "mdl" not in read_json(tmp_path / "result.json")
    assert (off["dev"], off["test"], off["tuning"]) == (
        result["dev"],
        result["test"],
        result["tuning"],
    )


def test_loss_selected_heads_never_code_dev_worse_than_the_untrained_head():
    """The MDL heads keep the epoch of lowest dev cross-entropy, the untrained head included:
    on noise labels a head picked by dev accuracy can be confidently wrong."""
    g = torch.Generator().manual_seed(0)
    x, dx = torch.randn(40, 16, generator=g), torch.randn(200, 16, generator=g)
    y, dy = torch.randint(0, 2, (40,), generator=g), torch.randint(0, 2, (200,), generator=g)

    def dev_nats(head) -> float:
        return -head.log_probs(dx).gather(1, dy.unsqueeze(1)).mean().item()

    by_loss = fit_classifier(Labelled(x, y, dx, dy, 2), SEED, 300, 0.01, 0.0, select="loss")
    by_acc = fit_classifier(Labelled(x, y, dx, dy, 2), SEED, 300, 0.01, 0.0)
    torch.manual_seed(SEED)
    untrained = torch.nn.Linear(16, 2)
    assert dev_nats(by_loss) <= dev_nats(by_acc)
    scale = by_loss.scale
    with torch.no_grad():
        start = -torch.log_softmax(untrained(scale(dx)).double(), -1).gather(1, dy.unsqueeze(1))
    assert dev_nats(by_loss) <= start.mean().item() + 1e-9
