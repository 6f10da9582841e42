"""DDP with 2 CPU processes (gloo) matches one process on the same global batch."""

import pytest

from pretrainlab.pretrain import pretrain


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_single_process(pretrain_cfg, tmp_path):
    common = [
        "trainer.max_steps=6",
        "trainer.val_check_interval=6",
        "threads=1",
        "optim.warmup_steps=2",
        "checkpoint_every=6",
    ]
    single = pretrain(pretrain_cfg(*common, "data.batch_size=16"), tmp_path / "single")
    ddp = pretrain(
        pretrain_cfg(
            *common,
            "trainer=ddp",
            "trainer.strategy=ddp_spawn",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "data.batch_size=8",
        ),
        tmp_path / "ddp",
    )
    # the same 16 examples (and masks, keyed by example) form each global batch: only the
    # order of floating-point reductions differs
    for key in ("val/loss", "val/mlm_acc"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-3, abs=1e-4), key
