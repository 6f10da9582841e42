"""Token tagging from CoNLL-2003-format files (``conf/probe/conll.yaml``).

One token a line, whitespace-separated columns with the word first and the tag last (CoNLL-2003
itself: word, POS, chunk, NER), a blank line between sentences, ``-DOCSTART-`` lines skipped.
Every token line of a file has the same number of columns (at least 2). Tags are ``O`` or
``PREFIX-TYPE`` in one of the schemes of :data:`SCHEMES` (``tag_scheme: auto`` detects it per
file: E-/S- prefixes mean BIOES, an I- that starts an entity means IOB1, else IOB2); all are
converted to IOB2, which the probe trains and scores (seqeval, entity level). Any deviation is
one :class:`PretrainlabError` naming the file, the line and the value, before any model work.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import datasets

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tasks.splits import file_splits
from pretrainlab.errors import PretrainlabError

SCHEMES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}  # scheme -> accepted prefixes
_TAG = re.compile(r"O|([A-Z])-(\S+)")
ACCEPTED = (
    "tags 'O' or PREFIX-TYPE (e.g. B-PER, I-LOC) in IOB1, IOB2 (prefixes B, I) or BIOES "
    "(prefixes B, I, E, S)"
)


@dataclass(frozen=True)
class Token:
    word: str
    prefix: str  # "" for O
    type: str  # "" for O
    line: int


def _split(line: str, lineno: int, path: str, width: int | None) -> list[str]:
    fields = line.split()
    if len(fields) < 2 or (width is not None and len(fields) != width):
        expected = f"{width}, as its first token line has" if width else "at least 2"
        raise PretrainlabError(
            f"CoNLL file {path!r} line {lineno} has {len(fields)} column(s) ({line.strip()!r}); "
            f"expected {expected}: whitespace-separated columns, the word first and the tag "
            "last, the same number on every token line, a blank line between sentences."
        )
    return fields


def _token(fields: list[str], lineno: int, path: str, scheme: str) -> Token:
    tag = fields[-1]
    m = _TAG.fullmatch(tag)
    prefixes = "BIES" if scheme == "auto" else SCHEMES[scheme]
    if not m or (m.group(1) and m.group(1) not in prefixes):
        raise PretrainlabError(
            f"CoNLL file {path!r} line {lineno} has the tag {tag!r}, which tag_scheme={scheme} "
            f"does not accept: expected {ACCEPTED} in the last column. Convert the file, or set "
            "probe.task.tag_scheme to the scheme it uses (auto detects it)."
        )
    return Token(fields[0], m.group(1) or "", m.group(2) or "", lineno)


def read_sentences(path: str, scheme: str = "auto") -> list[list[Token]]:
    """The sentences of one file, tags as written (see :func:`to_iob2`)."""
    if not os.path.isfile(path):
        raise PretrainlabError(f"CoNLL file {path!r} does not exist (or is not a file).")
    sentences: list[list[Token]] = [[]]
    width = None
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("-DOCSTART-"):
                if sentences[-1]:
                    sentences.append([])
                continue
            fields = _split(line, lineno, path, width)
            width = len(fields)
            sentences[-1].append(_token(fields, lineno, path, scheme))
    sentences = [s for s in sentences if s]
    if not sentences:
        raise PretrainlabError(f"CoNLL file {path!r} has no token lines.")
    return sentences


def detect_scheme(sentences: list[list[Token]]) -> str:
    """BIOES if any E-/S- prefix, IOB1 if any I- starts an entity, else IOB2."""
    if any(t.prefix in ("E", "S") for s in sentences for t in s):
        return "bioes"
    return "iob1" if any(_starts(s, i) for s in sentences for i in range(len(s))) else "iob2"


def _starts(sentence: list[Token], i: int) -> bool:
    """An I- (or E-) tag that does not continue an entity of its type."""
    t = sentence[i]
    prev = sentence[i - 1] if i else None
    continues = prev is not None and prev.type == t.type and prev.prefix in ("B", "I")
    return t.prefix in ("I", "E") and not continues


def to_iob2(sentences: list[list[Token]], scheme: str, path: str) -> list[list[str]]:
    """IOB2 tags of every sentence; an IOB2 or BIOES entity that does not start with B- (S-)
    is an error naming its line."""
    out = []
    for s in sentences:
        tags = []
        for i, t in enumerate(s):
            if scheme != "iob1" and _starts(s, i):
                raise PretrainlabError(
                    f"CoNLL file {path!r} line {t.line}: the tag {t.prefix}-{t.type} does not "
                    f"continue a {t.type} entity, which {scheme.upper()} requires. If the file "
                    "is IOB1 (entities may start with I-), set probe.task.tag_scheme=iob1."
                )
            prefix = "B" if t.prefix == "S" or (scheme == "iob1" and _starts(s, i)) else t.prefix
            tags.append("O" if not t.prefix else f"{'I' if prefix == 'E' else prefix}-{t.type}")
        out.append(tags)
    return out


def load_conll(
    train_file: str,
    dev_file: str | None = None,
    test_file: str | None = None,
    tag_scheme: str = "auto",
    dev_size: int | float = 0.1,
    test_size: int | float = 0.1,
    seed: int = 0,
    name: str = "conll",
) -> ProbeTask:
    """A ``tagging`` task from CoNLL-format files; a missing dev / test file is carved out of
    train (``dev_size`` / ``test_size``: a count or a fraction of its sentences)."""
    if tag_scheme not in ("auto", *SCHEMES):
        raise PretrainlabError(
            f"probe.task.tag_scheme={tag_scheme!r} is not valid: expected auto, "
            f"{', '.join(SCHEMES)}."
        )
    schemes: dict[str, str] = {}

    def read(path: str) -> list[tuple[list[str], list[str]]]:
        sentences = read_sentences(path, tag_scheme)
        scheme = detect_scheme(sentences) if tag_scheme == "auto" else tag_scheme
        schemes[path] = scheme
        tags = to_iob2(sentences, scheme, path)
        return [([t.word for t in s], tg) for s, tg in zip(sentences, tags, strict=True)]

    splits, notes = file_splits(read, train_file, dev_file, test_file, dev_size, test_size, seed)
    types = sorted({t[2:] for _, tags in splits["train"] for t in tags if t != "O"})
    label_names = ["O", *(f"{p}-{t}" for t in types for p in ("B", "I"))]
    index = {n: i for i, n in enumerate(label_names)}
    data = {}
    for split, rows in splits.items():
        unseen = sorted({t for _, tags in rows for t in tags} - set(index))
        if unseen:
            raise PretrainlabError(
                f"The {split} split has tags {unseen} that the train file {train_file!r} lacks "
                f"(train's: {label_names}); every dev/test entity type must occur in train."
            )
        columns = {"tokens": [w for w, _ in rows], "tags": [[index[t] for t in g] for _, g in rows]}
        data[split] = datasets.Dataset.from_dict(columns)
    read_as = ", ".join(f"{path}: {scheme}" for path, scheme in schemes.items())
    notes.append(f"tag schemes read (converted to IOB2): {read_as}")
    return ProbeTask(name, "tagging", data, label_names, notes)
