"""Labelled classification / pair tasks from the user's own CSV, TSV or JSON-lines files.

:func:`load_text_classification` reads a train file (and optionally dev / test files), picks
the named text (and text-pair) and label columns, maps labels to ints in sorted order of the
train labels, and carves missing splits out of train with a fixed seed
(:mod:`~pretrainlab.data.tasks.splits`). The small readers here (:func:`read_table`,
:func:`cap_split`, :func:`make_split`) are shared with the GLUE loaders.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import datasets

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tasks.splits import carve_missing, carve_splits
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import json_lines, load_json

_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json")
_INT = re.compile(r"[+-]?\d+")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _fmt_columns(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns) or "(none)"


def _require(
    names: Sequence[str], present: Sequence[str], where: str, noun: str, advice: str = ""
) -> None:
    """Refuse a file (header, record) that lacks some of ``names`` (columns, fields)."""
    missing = [c for c in names if c not in present]
    if missing:
        raise PretrainlabError(
            f"{where} has no {noun} {_fmt_columns(missing)}; its {noun}s are "
            f"{_fmt_columns(present)}.{advice}"
        )


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
        advice = " Name columns that exist in the file's header row."
        _require(columns, header, f"{what} {path!r}", "column", advice)
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
            expected = "one JSON object per line, or one array of objects"
            numbered = list(enumerate(load_json(f, f"{what} {path!r}", expected), 1))
            where = "item"
        else:
            numbered = list(json_lines(f, f"{what} {path!r}"))
            where = "line"
    rows: list[dict] = []
    lines: list[int] = []
    for n, record in numbered:
        if not isinstance(record, dict):
            raise PretrainlabError(
                f"{what} {path!r} {where} {n} is a {type(record).__name__}; expected a JSON "
                "object with named fields."
            )
        _require(columns, list(record), f"{what} {path!r} {where} {n}", "field")
        rows.append({c: record[c] for c in columns})
        lines.append(n)
    return rows, lines


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

    rest, carved, notes = carve_missing(
        train_file, len(train_keys), loaded, dev_size, test_size, seed
    )

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
    for split in ("dev", "test"):
        if split in loaded:
            splits[split] = take(*loaded[split], None)
        else:
            splits[split] = take(train, train_keys, carved[split])
    return ProbeTask(
        name=name,
        kind="pair" if pair else "classification",
        splits={k: splits[k] for k in ("train", "dev", "test")},
        label_names=label_names,
        notes=notes,
    )
