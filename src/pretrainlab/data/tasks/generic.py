"""Labelled classification / pair tasks from the user's own CSV, TSV or JSON-lines files.

:func:`load_text_classification` reads a train file (and optionally dev / test files), picks
the named text (and text-pair) and label columns, maps labels to ints in sorted order of the
train labels, and carves missing splits out of train with a fixed seed. The small readers
here (:func:`read_table`, :func:`carve_splits`, :func:`make_split`) are shared with the GLUE
loaders.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.errors import PretrainlabError

_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json")
_INT = re.compile(r"[+-]?\d+")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _fmt_columns(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns) or "(none)"


def read_table(path: str | os.PathLike, columns: Sequence[str], what: str = "Data file"):
    """Rows of a CSV / TSV / JSON-lines file as dicts holding ``columns``, plus line numbers.

    Returns ``(rows, line_numbers)``. CSV uses standard quoting; TSV is read with quoting off
    (GLUE-style TSVs contain unbalanced quote characters), UTF-8 with or without a BOM.
    ``.jsonl`` / ``.json`` hold one JSON object per line (a ``.json`` file holding one JSON
    array of objects is accepted too). Every error is a :class:`PretrainlabError` naming the
    file and what was expected.
    """
    path = str(path)
    if not os.path.exists(path):
        raise PretrainlabError(f"{what} {path!r} does not exist.")
    if os.path.isdir(path):
        raise PretrainlabError(f"{what} {path!r} is a folder; expected a file.")
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS:
        raise PretrainlabError(
            f"{what} {path!r} has an unsupported extension {ext!r}; accepted: "
            f"{', '.join(_EXTENSIONS)} (.json/.jsonl: one JSON object per line)."
        )
    if ext in (".csv", ".tsv"):
        rows, lines = _read_delimited(path, ext, columns, what)
    else:
        rows, lines = _read_json_lines(path, columns, what)
    if not rows:
        raise PretrainlabError(f"{what} {path!r} is empty: it has no data rows.")
    return rows, lines


def _read_delimited(path: str, ext: str, columns: Sequence[str], what: str):
    kwargs = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if ext == ".tsv" else {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, **kwargs)
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)  # leading blank lines
        if header is None:
            raise PretrainlabError(f"{what} {path!r} is empty: it has no header row.")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise PretrainlabError(
                f"{what} {path!r} has no column {_fmt_columns(missing)}; its columns are "
                f"{_fmt_columns(header)}. Name columns that exist in the file's header row."
            )
        index = {c: header.index(c) for c in columns}
        need = max(index.values(), default=-1) + 1
        rows: list[dict] = []
        lines: list[int] = []
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if len(fields) < need:
                raise PretrainlabError(
                    f"{what} {path!r} line {reader.line_num} has {len(fields)} fields but the "
                    f"header has {len(header)} ({_fmt_columns(header)})."
                )
            rows.append({c: fields[i] for c, i in index.items()})
            lines.append(reader.line_num)
    return rows, lines


def _read_json_lines(path: str, columns: Sequence[str], what: str):
    with open(path, encoding="utf-8-sig") as f:
        first = ""
        for chunk in iter(lambda: f.read(1), ""):
            if not chunk.isspace():
                first = chunk
                break
        f.seek(0)
        if first == "[":  # a .json file holding one array of objects
            try:
                records = json.load(f)
            except json.JSONDecodeError as e:
                raise PretrainlabError(
                    f"{what} {path!r} is not valid JSON (line {e.lineno}: {e.msg}); expected "
                    "one JSON object per line, or one array of objects."
                ) from None
            numbered = list(enumerate(records, 1))
            where = "item"
        else:
            numbered = []
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    numbered.append((lineno, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise PretrainlabError(
                        f"{what} {path!r} line {lineno} is not valid JSON ({e.msg}); expected "
                        "one JSON object per line."
                    ) from None
            where = "line"
    rows: list[dict] = []
    lines: list[int] = []
    for n, record in numbered:
        if not isinstance(record, dict):
            raise PretrainlabError(
                f"{what} {path!r} {where} {n} is a {type(record).__name__}; expected a JSON "
                "object with named fields."
            )
        missing = [c for c in columns if c not in record]
        if missing:
            raise PretrainlabError(
                f"{what} {path!r} {where} {n} has no field {_fmt_columns(missing)}; its fields "
                f"are {_fmt_columns(list(record))}."
            )
        rows.append({c: record[c] for c in columns})
        lines.append(n)
    return rows, lines


def resolve_size(size: int | float, n: int, what: str) -> int:
    """A split size given as a count (int >= 0) or a fraction (0 <= float < 1) of ``n``."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise PretrainlabError(f"{what}={size!r} must be a count (int) or a fraction (float).")
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise PretrainlabError(f"{what}={size!r}: a fraction must be in [0, 1).")
        return int(round(size * n))
    if size < 0:
        raise PretrainlabError(f"{what}={size!r}: a count must be >= 0.")
    return size


def carve_splits(n: int, sizes: Sequence[int], seed: int) -> tuple[list[int], list[list[int]]]:
    """Fixed-seed disjoint samples of ``sizes`` indices out of ``range(n)``.

    Returns ``(rest, samples)``; every list is in original order.
    """
    perm = np.random.default_rng(seed).permutation(n)
    samples: list[list[int]] = []
    offset = 0
    for size in sizes:
        samples.append(sorted(int(i) for i in perm[offset : offset + size]))
        offset += size
    rest = sorted(int(i) for i in perm[offset:])
    return rest, samples


def cap_split(split: datasets.Dataset, size: int | None, seed: int, name: str) -> tuple:
    """At most ``size`` rows of ``split`` (a :func:`carve_splits` sample, kept in file order),
    and a note saying so. A cap keeps large release sets (66k SST-2 sentences) cheap to
    encode when a study only probes a few hundred labels; ``None`` keeps everything."""
    if size is None:
        return split, None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise PretrainlabError(
            f"{name}={size!r} is not valid: expected null (every row) or an integer >= 1."
        )
    if size >= len(split):
        return split, None
    _, (rows,) = carve_splits(len(split), [size], seed)
    return split.select(rows), f"{name}={size}: {size} of {len(split)} rows kept"


def make_split(columns: dict[str, list], pair: bool) -> datasets.Dataset:
    """A classification (``text``, ``label``) or pair (``text``, ``text_pair``, ``label``) split."""
    features = {"text": datasets.Value("string")}
    if pair:
        features["text_pair"] = datasets.Value("string")
    features["label"] = datasets.Value("int64")
    data = {k: columns[k] for k in features}
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def _label_key(value, path: str, line: int, column: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise PretrainlabError(
            f"Data file {path!r} line {line}: label {column!r} is {value!r}; expected a "
            "string or an integer."
        )
    key = str(value).strip()
    if not key:
        raise PretrainlabError(f"Data file {path!r} line {line}: label {column!r} is empty.")
    return key


def _text(value, path: str, line: int, column: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise PretrainlabError(
            f"Data file {path!r} line {line}: text column {column!r} holds "
            f"{type(value).__name__}; expected a string."
        )
    return value


def _sorted_labels(keys: set[str]) -> list[str]:
    if all(_INT.fullmatch(k) for k in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def load_text_classification(
    train_file: str,
    text_column: str,
    label_column: str,
    dev_file: str | None = None,
    test_file: str | None = None,
    text_pair_column: str | None = None,
    dev_size: int | float = 0.1,
    test_size: int | float = 0.1,
    seed: int = 0,
    name: str = "text_classification",
) -> ProbeTask:
    """A classification (or, with ``text_pair_column``, pair) probe task from local files.

    Formats by extension: ``.csv``, ``.tsv`` (quoting off), ``.jsonl`` / ``.json`` (JSON
    lines). A missing dev or test file is carved out of train with a fixed seed (``dev_size``
    / ``test_size``: a count or a fraction of the train rows). Labels (strings or ints) map to
    ints in sorted order of the train labels (numeric order when all are integers);
    ``label_names`` holds them as strings. Labels in dev / test that train lacks are an error.
    """
    columns = [text_column] + ([text_pair_column] if text_pair_column else []) + [label_column]
    pair = text_pair_column is not None

    def read(path: str) -> tuple[dict[str, list], list[str]]:
        rows, lines = read_table(path, columns)
        out: dict[str, list] = {"text": [], "text_pair": []}
        keys: list[str] = []
        for row, line in zip(rows, lines, strict=True):
            out["text"].append(_text(row[text_column], path, line, text_column))
            if pair:
                out["text_pair"].append(
                    _text(row[text_pair_column], path, line, text_pair_column)  # type: ignore[index]
                )
            keys.append(_label_key(row[label_column], path, line, label_column))
        return out, keys

    train, train_keys = read(train_file)
    label_names = _sorted_labels(set(train_keys))
    to_id = {k: i for i, k in enumerate(label_names)}
    given = {"dev": dev_file, "test": test_file}
    loaded: dict[str, tuple[dict[str, list], list[str]]] = {}
    for split, path in given.items():
        if path is None:
            continue
        cols, keys = read(path)
        unseen = sorted(set(keys) - set(label_names))
        if unseen:
            raise PretrainlabError(
                f"Data file {path!r} ({split}) has labels {unseen} that the train file "
                f"{train_file!r} lacks; train labels are {label_names}. Every dev/test label "
                "must occur in train."
            )
        loaded[split] = (cols, keys)

    n = len(train_keys)
    sizes = {
        "test": resolve_size(test_size, n, "test_size") if test_file is None else 0,
        "dev": resolve_size(dev_size, n, "dev_size") if dev_file is None else 0,
    }
    if sizes["test"] + sizes["dev"] >= n:
        raise PretrainlabError(
            f"Train file {train_file!r} has {n} rows: too few to carve {sizes['dev']} dev and "
            f"{sizes['test']} test rows out of it and keep any for training. Pass dev_file / "
            "test_file, or smaller dev_size / test_size."
        )
    rest, (test_idx, dev_idx) = carve_splits(n, [sizes["test"], sizes["dev"]], seed)

    def take(cols: dict[str, list], keys: list[str], idx: list[int] | None) -> datasets.Dataset:
        idx = list(range(len(keys))) if idx is None else idx
        return make_split(
            {
                "text": [cols["text"][i] for i in idx],
                "text_pair": [cols["text_pair"][i] for i in idx] if pair else [],
                "label": [to_id[keys[i]] for i in idx],
            },
            pair,
        )

    splits = {"train": take(train, train_keys, rest)}
    notes: list[str] = []
    for split, idx in (("dev", dev_idx), ("test", test_idx)):
        if split in loaded:
            splits[split] = take(*loaded[split], None)
        else:
            splits[split] = take(train, train_keys, idx)
            notes.append(f"{split} split: {len(idx)} rows carved out of {train_file} (seed {seed})")
    return ProbeTask(
        name=name,
        kind="pair" if pair else "classification",
        splits={k: splits[k] for k in ("train", "dev", "test")},
        label_names=label_names,
        notes=notes,
    )
