"""A read-only, full or forbidden output folder is one clear error before work (or where a
write fails), not a traceback; files already there stay as they were."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pretrainlab.errors import PretrainlabError

DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def check_writable(run_dir: Path) -> None:
    """Fail before any work when the run folder cannot be created or written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as err:
        raise _disk_error(err, run_dir) from None


def _disk_error(err: OSError, where: Path | str | None = None) -> PretrainlabError:
    reason = DISK_ERRNOS.get(err.errno or -1, err.strerror or str(err))
    place = err.filename or where
    return PretrainlabError(
        f"cannot write the run's files to {str(place)!r}: {reason} ({err.strerror or err}). "
        "Files already there are unchanged (every write goes to a temporary file first). Free "
        "space or pick a writable hydra.run.dir, then run the same command again."
    )


_DISK_MESSAGES = {
    "No space left on device": errno.ENOSPC,
    "os error 28": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
}


def _disk_cause(err: BaseException) -> OSError | None:
    """The full-disk / read-only / permission OSError behind ``err`` (libraries wrap it: torch
    in RuntimeError, safetensors in its own error), or None."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            return seen
        for text, code in _DISK_MESSAGES.items():
            if text in str(seen):
                return OSError(code, os.strerror(code))
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def disk_errors(run_dir: Path) -> Iterator[None]:
    """Turn a full, read-only or forbidden output folder into one :class:`PretrainlabError`."""
    try:
        yield
    except PretrainlabError:
        raise
    except Exception as err:
        cause = _disk_cause(err)
        if cause is None:
            raise
        raise _disk_error(cause, run_dir) from err


def preflight_output_dir(argv: list[str], also: tuple[str, ...] = ()) -> None:
    """Hydra creates the run folder and writes .hydra/ before ``_run`` starts, and reports a
    failure there as a traceback: check the output folder first and say it in one line.

    The folders checked: ``hydra.run.dir`` (``hydra.sweep.dir`` with ``-m``) when given, else
    the default under the working directory (``outputs/``); and each ``key=`` override named
    in ``also`` that is given (``study.dir``). A given ``also`` folder holds the default run
    folder (the study's ``${study.dir}/.hydra_study``), so then ``outputs/`` is not checked:
    the command does not write there."""
    if any(a in ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i") for a in argv):
        return  # prints a config or help: writes nothing
    sweep = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    given = {k: _override(argv, k) for k in (key, *also)}
    for k, value in given.items():
        if value is not None:
            _check_folder(Path(value), k)
    inside_also = not sweep and any(given[a] is not None for a in also)
    if given[key] is None and not inside_also:  # either key moves the run folder
        _check_folder(Path("outputs"), " or ".join([key, *([] if sweep else also)]))


def _override(argv: list[str], key: str) -> str | None:
    """The value of the last ``key=value`` (or ``+key=`` / ``++key=``) override, or None."""
    values = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith(f"{key}=")]
    return values[-1] if values else None


def _check_folder(folder: Path, key: str) -> None:
    folder = folder.expanduser().absolute()
    existing = folder  # the nearest part of the path that exists: where mkdir starts
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():  # a file (or a dangling link) where a folder must go
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        if err.errno == errno.ENOTDIR:
            reason = f"{str(existing)!r} is a file, not a folder"
        else:
            reason = DISK_ERRNOS.get(err.errno or -1, err.strerror or str(err))
            reason += f" ({err.strerror}, at {str(existing)!r})"
        print(
            f"pretrainlab: error: cannot create the run folder {str(folder)!r}: {reason}. "
            f"Pick a writable {key}.",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
