"""``pretrainlab <command> [hydra overrides]``: one console script, one Hydra app per command.

Hydra's own flags work after the command (``-m``, ``--cfg job``, ``hydra.run.dir=PATH``).
Bad input (:class:`PretrainlabError`) prints one paragraph and exits 2; set HYDRA_FULL_ERROR=1
for the traceback.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pretrainlab.errors import PretrainlabError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
COMMANDS = {
    "pretrain": ("pretrainlab.pretrain", "pretrain one objective on one corpus"),
    "probe": ("pretrainlab.probes.run", "probe a pretrained run (or scratch) on a task"),
    "study": ("pretrainlab.study.run", "pretrain, probe, aggregate and report an experiment"),
    "reproduce": ("pretrainlab.study.reproduce", "re-run a run directory and compare metrics"),
    "power": ("pretrainlab.study.power", "seeds a study needs to detect a named effect"),
}


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a PretrainlabError as one paragraph (no traceback) and exit with status 2."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PretrainlabError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"pretrainlab: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapped


def _usage() -> str:
    lines = ["usage: pretrainlab <command> [overrides ...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `pretrainlab <command> --help` for the command's config groups."]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(_usage())
        return
    command = sys.argv.pop(1)
    if command not in COMMANDS:
        print(
            f"pretrainlab: error: unknown command {command!r}; expected one of "
            f"{', '.join(COMMANDS)}.\n\n{_usage()}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    sys.argv[0] = f"pretrainlab {command}"
    importlib.import_module(COMMANDS[command][0]).main()
