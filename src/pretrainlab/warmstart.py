"""``init_from=RUN``: start a pretraining run from another run's encoder, for continued
pretraining (SimCSE on an MLM encoder, as the SimCSE paper trains it, or any objective after
any other).

Only the shared body (embeddings and transformer layers) is copied; the new objective's heads
start fresh, and so do the optimiser and the schedule. The source must be a finished run of
the same encoder, tokenizer and corpus (its config.yaml's nodes equal this run's), checked
before any data or model work. A glob naming exactly one run is accepted, so a study arm can
name the same seed's run of another arm
(``init_from='outputs/studies/NAME/pretrain/mlm-s${seed}-*'``). run.json's ``compute`` adds
``prior_tokens`` / ``prior_flops``, what the source (and its own sources) spent, so a
comparison can declare every arm's total.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import read_json

SAME_NODES = ("encoder", "tokenizer", "corpus")  # what decides the body's shape and vocabulary


def source_run(cfg: DictConfig) -> Path | None:
    """The finished run ``cfg.init_from`` names, checked against ``cfg``; None without one."""
    spec = cfg.get("init_from")
    if not spec:
        return None
    matches = sorted(glob.glob(str(spec)))  # a plain path is a glob that matches itself
    if len(matches) != 1:
        found = f": {', '.join(matches[:4])}" if matches else ""
        raise PretrainlabError(
            f"init_from={spec!r} names {len(matches)} directories{found}; expected exactly "
            "one finished pretraining run directory (it holds run.json and hf/)."
        )
    run = Path(matches[0])
    status = read_json(run / "run.json").get("status") if (run / "run.json").is_file() else None
    if status != "completed" or not (run / "hf" / "config.json").is_file():
        raise PretrainlabError(
            f"init_from={spec!r}: {run} is not a finished pretraining run (run.json status "
            f"{status!r}, hf/config.json {'present' if (run / 'hf').is_dir() else 'absent'}); "
            "finish that run first, or name one whose run.json says 'completed'."
        )
    theirs = OmegaConf.load(run / "config.yaml")
    differ = [k for k in SAME_NODES if _plain(theirs.get(k)) != _plain(cfg.get(k))]
    if differ:
        raise PretrainlabError(
            f"init_from={spec!r}: {run} was trained with another {' / '.join(differ)} than this "
            f"run ({', '.join(f'{k}={_plain(theirs.get(k))}' for k in differ)}); a body is "
            "copied only between runs of the same encoder, tokenizer and corpus."
        )
    return run


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def load_body(model: Any, run: Path) -> None:
    """Copy ``run``'s exported body into ``model``'s (a transformers model with any head)."""
    from transformers import AutoModel

    body = AutoModel.from_pretrained(str(run / "hf"))
    missing, unexpected = model.base_model.load_state_dict(body.state_dict(), strict=False)
    left = [k for k in (*missing, *unexpected) if not k.startswith("pooler.")]
    if left:  # the nodes matched, so this is an export of another shape: say which weights
        raise PretrainlabError(
            f"init_from={run}: its body does not fit this run's encoder ({len(left)} weights "
            f"differ, e.g. {left[0]}); name a run of the same encoder."
        )


def prior_compute(run: Path | None) -> dict[str, float]:
    """What ``run`` and the runs it started from spent (run.json ``compute``)."""
    if run is None:
        return {}
    spent = read_json(run / "run.json").get("compute") or {}
    return {
        "prior_tokens": spent.get("tokens", 0) + spent.get("prior_tokens", 0),
        "prior_flops": spent.get("flops", 0.0) + spent.get("prior_flops", 0.0),
    }
