"""Atomic writes and content hashes: a kill at any moment leaves the old file or the new one.
Also the readers' shared pieces of an input error: invalid JSON, what a folder holds."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pretrainlab.errors import PretrainlabError

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
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)  # a failed write() names no file: name the target
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_json(f: IO[str], what: str, expected: str) -> Any:
    """``json.load(f)`` of a user's file; invalid JSON is a PretrainlabError naming ``what``
    (the file, e.g. ``"SQuAD file 'x.json'"``), the line and what the file should hold."""
    try:
        return json.load(f)
    except json.JSONDecodeError as e:
        raise PretrainlabError(
            f"{what} is not valid JSON (line {e.lineno}: {e.msg}); expected {expected}."
        ) from None


def json_lines(f: Iterable[str], what: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of a JSON Lines file; an invalid line is
    a PretrainlabError naming ``what`` (the file) and the line."""
    for lineno, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise PretrainlabError(
                f"{what} line {lineno} is not valid JSON ({e.msg}); expected one JSON object "
                "per line."
            ) from None
        yield lineno, value


def json_keys(value: Any) -> list[str] | str:
    """What an error says a JSON value holds: an object's sorted keys, else its type's name."""
    return sorted(value) if isinstance(value, dict) else type(value).__name__


def folder_listing(folder: str | os.PathLike, most: int = 20) -> list[str]:
    """The first ``most`` names in ``folder``, sorted: what an error says the folder holds."""
    return sorted(p.name for p in Path(folder).iterdir())[:most]


def _discard(path: Path) -> None:
    """Remove a folder without a window where a half-deleted copy sits under its name: rename
    it aside first (atomic), then delete. Gone already (another process did it) is fine."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old.tmp")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it into place only on success.

    A reader either sees no folder or a complete one; a failed build leaves nothing behind.
    When the folder already exists (another process finished the same build first) the
    existing one is kept, unless ``replace``: then the new folder takes its place (the old one
    is renamed aside, the new one renamed in, the old one deleted).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
        if replace:
            _discard(path)
        try:
            os.rename(tmp, path)
        except OSError as err:  # lost a race: the other build is complete, keep it
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def content_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of a JSON-able object (sorted keys), used as a cache key."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


MANIFEST = "_manifest.json"
HASH_LIMIT = 64 << 20  # files up to this size are hashed in the manifest, larger ones sized


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST]


def _manifest(folder: Path) -> dict[str, Any]:
    """``relative path -> {"size", "sha256"}`` (sha256 only for files up to HASH_LIMIT)."""
    out: dict[str, Any] = {}
    for p in _files(folder):
        size = p.stat().st_size
        out[str(p.relative_to(folder))] = (
            {"size": size, "sha256": file_sha256(p)} if size <= HASH_LIMIT else {"size": size}
        )
    return out


def verify_manifest(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` does not match its manifest (missing, extra, resized or changed files),
    or None when it does. Manifests of older versions (``path -> size``) are checked by size."""
    folder = Path(folder)
    try:
        expected = read_json(folder / MANIFEST)
    except (OSError, ValueError) as err:
        return f"no readable manifest ({err})"
    if not isinstance(expected, dict):
        return "the manifest is not a mapping"
    present = {str(p.relative_to(folder)): p for p in _files(folder)}
    if set(present) != set(expected):
        missing = sorted(set(expected) - set(present))
        extra = sorted(set(present) - set(expected))
        return f"files differ from the manifest (missing {missing[:3]}, extra {extra[:3]})"
    for name, entry in expected.items():
        entry = {"size": entry} if isinstance(entry, int) else entry
        if not isinstance(entry, dict) or present[name].stat().st_size != entry.get("size"):
            return f"{name} has the wrong size"
        if "sha256" in entry and file_sha256(present[name]) != entry["sha256"]:
            return f"{name} has the wrong content hash"
    return None


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``.<name>.lock`` beside the entry: concurrent builders of the
    same entry (parallel study jobs) wait for the first instead of building it twice. Where
    the file system has no locks, builds still cannot clobber each other (atomic_dir)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def cached_folder(
    target: str | os.PathLike, build: Callable[[Path], None], load: Callable[[Path], T]
) -> T:
    """Return ``load(target)``, building the folder first on a miss.

    The build runs in a temporary folder renamed into place on success, and leaves a manifest
    of file sizes and content hashes; an entry that does not match it (truncated, edited,
    half-deleted) or that fails to load is removed and rebuilt once, never read. Processes
    building the same entry at once take turns (a file lock); the second one loads the first
    one's build.
    """
    target = Path(target)
    for attempt in range(2):
        if verify_manifest(target) is not None:
            with _build_lock(target):
                if verify_manifest(target) is not None:  # nobody fixed it while we waited
                    _discard(target)
                    with atomic_dir(target) as tmp:
                        build(tmp)
                        atomic_write_json(tmp / MANIFEST, _manifest(tmp))
        identity = _identity(target)
        try:
            return load(target)
        except Exception:
            if attempt:
                raise
            with _build_lock(target):
                if _identity(target) == identity:  # not replaced by another process meanwhile
                    _discard(target)
    raise AssertionError("unreachable")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
