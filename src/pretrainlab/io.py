"""Atomic writes and content hashes: a kill at any moment leaves the old file or the new one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it into place only on success.

    A reader either sees no folder or a complete one; a failed build leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():  # another process finished the same build first: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def content_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of a JSON-able object (sorted keys), used as a cache key."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


MANIFEST = "_manifest.json"


def _sizes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def cached_folder(target: str | os.PathLike, build: Callable[[Path], None],
                  load: Callable[[Path], T]) -> T:
    """Return ``load(target)``, building the folder first on a miss.

    The build runs in a temporary folder renamed into place on success, and leaves a manifest
    of file sizes; an entry whose files no longer match it (truncated, half-deleted) or that
    fails to load is removed and rebuilt once, never read.
    """
    target = Path(target)
    for attempt in range(2):
        if not (target / MANIFEST).exists():
            shutil.rmtree(target, ignore_errors=True)
            with atomic_dir(target) as tmp:
                build(tmp)
                atomic_write_json(tmp / MANIFEST, _sizes(tmp))
        try:
            if read_json(target / MANIFEST) != _sizes(target):
                raise OSError(f"cache entry {target} does not match its manifest")
            return load(target)
        except Exception:
            if attempt:
                raise
            shutil.rmtree(target, ignore_errors=True)
    raise AssertionError("unreachable")
