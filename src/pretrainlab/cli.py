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

# The configs ship inside the package (a wheel install finds them); Hydra reads them as
# ``pkg://pretrainlab.conf``. A user's own config folders join the search path through
# PRETRAINLAB_CONFIG_DIR (hydra_plugins/pretrainlab_searchpath), in every command and in a
# study's jobs; for one command Hydra's ``--config-dir DIR`` works too.
CONF_DIR = Path(__file__).resolve().parent / "conf"
CONF_PKG = "pkg://pretrainlab.conf"
USER_CONF_ENV = "PRETRAINLAB_CONFIG_DIR"
COMMANDS = {
    "pretrain": ("pretrainlab.pretrain", "pretrain one objective on one corpus"),
    "probe": ("pretrainlab.probes.run", "probe a pretrained run (or scratch) on a task"),
    "study": ("pretrainlab.study.run", "pretrain, probe, aggregate and report an experiment"),
    "reproduce": ("pretrainlab.study.reproduce", "re-run a run directory and compare metrics"),
    "power": ("pretrainlab.study.power", "seeds a study needs to detect a named effect"),
    "status": ("pretrainlab.study.status", "where a study stands: jobs, phases, means so far"),
}
VERBOSE_FLAGS = ("-v", "--verbose")  # `pretrainlab study -v`: study.verbose=true


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


def user_config_dirs() -> list[Path]:
    """The folders named by PRETRAINLAB_CONFIG_DIR (``os.pathsep``-separated), in order."""
    value = os.environ.get(USER_CONF_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def find_config(group: str, name: str) -> Path | None:
    """``GROUP/NAME.yaml`` in pretrainlab's configs or, failing that, in a user config folder."""
    for folder in (CONF_DIR, *user_config_dirs()):
        if (path := folder / group / f"{name}.yaml").is_file():
            return path
    return None


def config_names(group: str) -> list[str]:
    """The options of a config group (``GROUP/*.yaml``), pretrainlab's and the user's, A-Z."""
    folders = (CONF_DIR, *user_config_dirs())
    return sorted({p.stem for f in folders for p in (f / group).glob("*.yaml")})


def _check_user_config_dirs() -> None:
    missing = [str(d) for d in user_config_dirs() if not d.is_dir()]
    if missing:
        print(
            f"pretrainlab: error: {USER_CONF_ENV} names {', '.join(missing)}, which is not a "
            "folder: set it to one or more config folders (laid out like pretrainlab's conf/, "
            f"e.g. DIR/objective/my_objective.yaml), separated by {os.pathsep!r}, or unset it.",
            file=sys.stderr,
        )
        raise SystemExit(2)


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
    _check_user_config_dirs()
    if command == "study" and any(a in VERBOSE_FLAGS for a in sys.argv[1:]):
        sys.argv = [a for a in sys.argv if a not in VERBOSE_FLAGS] + ["study.verbose=true"]
    sys.argv[0] = f"pretrainlab {command}"
    importlib.import_module(COMMANDS[command][0]).main()
