"""Raw pretraining corpora in their release formats, read as streams of documents.

Every reader yields documents as ``{"doc_id": str, "sentences": list[str]}`` from a generator:
files are read line by line (or in row batches for parquet), so memory stays bounded by the
largest single document, never by the corpus.

- :func:`iter_wikitext`: the WikiText release files (``wiki.{train,valid,test}.tokens`` or
  ``.raw``); article titles start documents, section headings are dropped.
- :func:`iter_text_files`: ``.txt`` (blank line / line / regex document boundaries), ``.jsonl``
  and ``.parquet`` files, given as paths or globs.
- :func:`hub_documents`: the online path (``datasets.load_dataset(..., streaming=True)``).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pretrainlab.errors import PretrainlabError
from pretrainlab.io import folder_listing, json_keys, json_lines

# --------------------------------------------------------------------------------------------
# Sentence splitting
# --------------------------------------------------------------------------------------------
# Hand-written on purpose: the usual splitters need a model download (nltk's punkt data,
# spaCy / stanza pipelines, a sentencepiece model), which is not allowed here and would make
# a corpus depend on network state. A regex with an abbreviation list is deterministic, fast,
# and good enough to cut documents into sentence units for NSP-style pair sampling.
#
# It handles two styles:
# - ordinary prose: "It rained. Then it stopped."  (terminator glued to the word)
# - tokenized releases (WikiText): "It rained . Then it stopped ."  (spaces around punctuation)
# A boundary is a run of . ! ? (optionally followed by closing quotes / brackets), then
# whitespace, then a capital letter, digit, opening quote or bracket. A "." right after a
# known abbreviation ("Dr.", "e.g.", "etc." is NOT one since it usually ends sentences) or
# after dotted initials ("U.S.", "J.", "H.") is not a boundary. In tokenized text a closing
# quote after the period stays with its sentence when the sentence has an unbalanced quote.
# WikiText's "@.@" number separator never matches because it is not followed by whitespace.

_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "rev",
        "fr",
        "gen",
        "col",
        "lt",
        "maj",
        "capt",
        "cpt",
        "cmdr",
        "adm",
        "sgt",
        "cpl",
        "pvt",
        "gov",
        "sen",
        "rep",
        "pres",
        "hon",
        "messrs",
        "mme",
        "mlle",
        "no",
        "nos",
        "vol",
        "vols",
        "fig",
        "figs",
        "pp",
        "ch",
        "sec",
        "art",
        "approx",
        "ca",
        "cf",
        "vs",
        "viz",
        "al",
        "dept",
        "est",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
_BOUNDARY = re.compile(r"""([.!?]+["'\u201d\u2019)\]]*)\s+(?=(?:["'\u201c\u2018(\[] ?)?[A-Z0-9])""")
_DOTTED_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_LAST_TOKEN = re.compile(r"(\S*)$")


def _is_abbreviation(before: str, terminator: str) -> bool:
    """Whether the "." ending ``before + terminator`` belongs to an abbreviation."""
    if not terminator.startswith(".") or terminator.startswith(".."):
        return False  # "!", "?", "..." always end a sentence
    token = _LAST_TOKEN.search(before).group(1)  # type: ignore[union-attr]
    if not token:
        return False  # tokenized style: " . " stands alone, a real sentence end
    token = token.lstrip("\"'(\u201c\u2018[")
    return token.lower() in _ABBREVIATIONS or bool(_DOTTED_INITIALS.fullmatch(token))


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (stripped, non-empty), keeping common abbreviations."""
    text = " ".join(text.split())
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.start() < start or _is_abbreviation(text[start : m.start()], m.group(1)):
            continue
        end, next_start = m.end(1), m.end()
        # Tokenized style puts a closing quote after the period (' " hello . " The'): when
        # the sentence so far has an unbalanced '"', the quote that follows closes it.
        if text[start:end].count('"') % 2 == 1:
            closing = re.match(r'"(\s+|$)', text[next_start:])
            if closing:
                end, next_start = next_start + 1, next_start + closing.end()
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = next_start
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# --------------------------------------------------------------------------------------------
# WikiText
# --------------------------------------------------------------------------------------------
_WIKITEXT_SPLITS = {"train": "train", "validation": "valid", "valid": "valid", "test": "test"}
# " = Title = " (level 1), " = = Section = = " (level 2), ... The same shape in .tokens and .raw.
_HEADING = re.compile(r"((?:= )+)(?!=)(.*?\S)((?: =)+)")


def _heading_level(stripped: str) -> tuple[int, str] | None:
    m = _HEADING.fullmatch(stripped)
    if not m:
        return None
    level = m.group(1).count("=")
    if m.group(3).count("=") != level or m.group(2).endswith("="):
        return None
    return level, m.group(2)


def _wikitext_file(path: str, split: str) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    if split not in _WIKITEXT_SPLITS:
        raise PretrainlabError(
            f"WikiText split {split!r} is not known; accepted: {sorted(_WIKITEXT_SPLITS)}."
        )
    if not p.is_dir():
        raise PretrainlabError(
            f"WikiText path {path!r} does not exist; pass the folder holding "
            "wiki.{train,valid,test}.tokens (or .raw), or one of those files."
        )
    stem = _WIKITEXT_SPLITS[split]
    for suffix in (".tokens", ".raw"):
        candidate = p / f"wiki.{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise PretrainlabError(
        f"WikiText folder {path!r} has no wiki.{stem}.tokens or wiki.{stem}.raw for split "
        f"{split!r}; it holds {folder_listing(p)}. Accepted: the WikiText release layout "
        "wiki.{train,valid,test}.{tokens,raw}."
    )


def _lookahead(lines: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """Yield (line, next_line) pairs; next_line is None at the end."""
    it = iter(lines)
    prev = next(it, None)
    for line in it:
        yield prev, line  # type: ignore[misc]
        prev = line
    if prev is not None:
        yield prev, None


def iter_wikitext(path: str, split: str) -> Iterator[dict]:
    """Documents of a WikiText release file: one per article, section headings dropped.

    ``path`` is the folder holding ``wiki.{train,valid,test}.tokens`` (or ``.raw``), or one
    such file (then ``split`` only names the documents). A heading line counts as one only
    when it stands between blank lines, as in the release; WikiText also has table rows that
    look like `` = Played , W = `` inside paragraphs, which stay text. With this rule
    WikiText-2 gives 600 / 60 / 60 articles for train / valid / test.
    """
    file = _wikitext_file(path, split)
    seen: dict[str, int] = {}
    doc_id: str | None = None
    sentences: list[str] = []
    prev_blank = True
    untitled = 0

    def finish() -> dict | None:
        if doc_id is None or not sentences:
            return None
        return {"doc_id": doc_id, "sentences": list(sentences)}

    with open(file, encoding="utf-8") as f:
        for raw, nxt in _lookahead(f):
            stripped = raw.strip()
            if not stripped:
                prev_blank = True
                continue
            heading = _heading_level(stripped)
            is_heading = heading is not None and prev_blank and (nxt is None or not nxt.strip())
            prev_blank = False
            if is_heading:
                level, title = heading  # type: ignore[misc]
                if level == 1:
                    doc = finish()
                    if doc is not None:
                        yield doc
                    n = seen.get(title, 0) + 1
                    seen[title] = n
                    doc_id = title if n == 1 else f"{title} ({n})"
                    sentences = []
                continue  # section headings are not text
            if doc_id is None:  # text before the first title
                doc_id = f"untitled-{untitled}"
                untitled += 1
            sentences.extend(split_sentences(stripped))
    doc = finish()
    if doc is not None:
        yield doc


# --------------------------------------------------------------------------------------------
# Generic text files
# --------------------------------------------------------------------------------------------
_WIKITEXT_SUFFIXES = (".tokens", ".raw")  # a WikiText release file: one document an article
_TEXT_SUFFIXES = (".txt", ".jsonl", ".parquet", *_WIKITEXT_SUFFIXES)


def _expand_paths(paths: list[str] | str) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise PretrainlabError("No corpus files given; pass a file path or a glob.")
    files: list[str] = []
    for p in paths:
        p = str(p)
        if os.path.isdir(p):
            raise PretrainlabError(
                f"Corpus path {p!r} is a folder; pass files or a glob such as "
                f"{os.path.join(p, '*.txt')!r}."
            )
        if os.path.isfile(p):
            files.append(p)
            continue
        if glob.has_magic(p):
            matches = sorted(m for m in glob.glob(p, recursive=True) if os.path.isfile(m))
            if not matches:
                raise PretrainlabError(f"Corpus glob {p!r} matched no files.")
            files.extend(matches)
        else:
            raise PretrainlabError(f"Corpus file {p!r} does not exist.")
    for f in files:
        if not f.endswith(_TEXT_SUFFIXES):
            raise PretrainlabError(
                f"Corpus file {f!r} has an unsupported extension; accepted: "
                f"{', '.join(_TEXT_SUFFIXES)}."
            )
    return files


def _parse_boundary(doc_boundary: str) -> tuple[str, re.Pattern[str] | None]:
    if doc_boundary in ("blank_line", "line"):
        return doc_boundary, None
    if doc_boundary.startswith("regex:"):
        pattern = doc_boundary[len("regex:") :]
        try:
            return "regex", re.compile(pattern)
        except re.error as e:
            raise PretrainlabError(
                f"doc_boundary {doc_boundary!r} has an invalid regular expression ({e})."
            ) from None
    raise PretrainlabError(
        f"doc_boundary {doc_boundary!r} is not known; accepted: 'blank_line' (a blank line "
        "separates documents), 'line' (one document per line), 'regex:<pattern>' (a line "
        "matching the pattern starts a new document)."
    )


def _paragraph_sentences(paragraphs: list[list[str]]) -> list[str]:
    out: list[str] = []
    for lines in paragraphs:
        out.extend(split_sentences(" ".join(lines)))
    return out


def _iter_txt(file: str, mode: str, pattern: re.Pattern[str] | None) -> Iterator[dict]:
    name = os.path.basename(file)

    def make(start: int | None, paragraphs: list[list[str]]) -> dict | None:
        sentences = _paragraph_sentences(paragraphs)
        if start is None or not sentences:
            return None
        return {"doc_id": f"{name}:{start}", "sentences": sentences}

    with open(file, encoding="utf-8-sig") as f:
        if mode == "line":
            for lineno, line in enumerate(f, 1):
                sentences = split_sentences(line)
                if sentences:
                    yield {"doc_id": f"{name}:{lineno}", "sentences": sentences}
            return
        # "blank_line": a block of non-blank lines is one document (lines joined by spaces).
        # "regex": a matching line starts a new document and is its first line; blank lines
        # inside a document separate its paragraphs.
        start: int | None = None
        paragraphs: list[list[str]] = []
        current: list[str] = []
        for lineno, line in enumerate(f, 1):
            stripped = line.strip()
            if mode == "regex" and pattern.search(line.rstrip("\r\n")):  # type: ignore[union-attr]
                doc = make(start, [*paragraphs, current])
                if doc is not None:
                    yield doc
                start, paragraphs, current = lineno, [], []
            if not stripped:
                if mode == "blank_line":
                    doc = make(start, [current])
                    if doc is not None:
                        yield doc
                    start, current = None, []
                elif current:
                    paragraphs.append(current)
                    current = []
                continue
            if start is None:
                start = lineno
            current.append(stripped)
        doc = make(start, [*paragraphs, current])
        if doc is not None:
            yield doc


def _iter_jsonl(file: str, text_field: str) -> Iterator[dict]:
    name = os.path.basename(file)
    with open(file, encoding="utf-8-sig") as f:
        for lineno, record in json_lines(f, f"Corpus file {file!r}"):
            if not isinstance(record, dict) or text_field not in record:
                raise PretrainlabError(
                    f"Corpus file {file!r} line {lineno} has no field {text_field!r} (it has "
                    f"{json_keys(record)}); pass text_field= naming the field that holds the text."
                )
            text = record[text_field]
            if text is None:
                continue
            if not isinstance(text, str):
                raise PretrainlabError(
                    f"Corpus file {file!r} line {lineno}: field {text_field!r} is a "
                    f"{type(text).__name__}, expected a string."
                )
            sentences = split_sentences(text)
            if sentences:
                yield {"doc_id": f"{name}:{lineno}", "sentences": sentences}


def _iter_parquet(file: str, text_field: str, batch_size: int = 1024) -> Iterator[dict]:
    import pyarrow.parquet as pq

    name = os.path.basename(file)
    try:
        pf = pq.ParquetFile(file)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise PretrainlabError(
            f"Corpus file {file!r} is not a readable parquet file ({e})."
        ) from None
    columns = pf.schema_arrow.names
    if text_field not in columns:
        raise PretrainlabError(
            f"Corpus file {file!r} has no column {text_field!r} (it has {columns}); pass "
            "text_field= naming the column that holds the text."
        )
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size, columns=[text_field]):
        for text in batch.column(0).to_pylist():
            if isinstance(text, str):
                sentences = split_sentences(text)
                if sentences:
                    yield {"doc_id": f"{name}:{row}", "sentences": sentences}
            elif text is not None:
                raise PretrainlabError(
                    f"Corpus file {file!r} row {row}: column {text_field!r} holds "
                    f"{type(text).__name__}, expected strings."
                )
            row += 1


def _readable(file: str, docs: Iterator[dict]) -> Iterator[dict]:
    """``docs`` with an unreadable or non-UTF-8 file reported as one PretrainlabError."""
    try:
        yield from docs
    except UnicodeDecodeError as e:
        raise PretrainlabError(
            f"Corpus file {file!r} is not UTF-8 text ({e.reason} at byte {e.start}); convert "
            "it to UTF-8 or leave it out of corpus.paths."
        ) from None
    except OSError as e:
        raise PretrainlabError(
            f"Corpus file {file!r} cannot be read ({e.strerror or e}); check its permissions."
        ) from None


def iter_text_files(
    paths: list[str] | str, doc_boundary: str = "blank_line", text_field: str = "text"
) -> Iterator[dict]:
    """Documents from ``.txt``, ``.jsonl``, ``.parquet`` and WikiText release files
    (``wiki.*.tokens`` / ``.raw``, one document an article: :func:`iter_wikitext`), given as
    paths or globs, so one corpus can mix them.

    Globs are expanded and sorted; a glob matching nothing is an error. ``doc_boundary``
    applies to ``.txt``: ``"blank_line"`` (blank lines separate documents), ``"line"`` (one
    document per line) or ``"regex:<pattern>"`` (a line matching the pattern starts a new
    document, as its first line). ``.jsonl`` holds one document per line in ``text_field``;
    ``.parquet`` is read in row batches from the column ``text_field``. ``doc_id`` is
    ``"<file name>:<line>"`` (first line of the document) or ``"<file name>:<row>"``.
    Documents without any sentence are skipped; no document at all is an error.
    """
    files = _expand_paths(paths)
    mode, pattern = _parse_boundary(doc_boundary)
    count = 0
    for file in files:
        if file.endswith(".txt"):
            docs = _iter_txt(file, mode, pattern)
        elif file.endswith(".jsonl"):
            docs = _iter_jsonl(file, text_field)
        elif file.endswith(_WIKITEXT_SUFFIXES):
            name = Path(file).name
            docs = ({**d, "doc_id": f"{name}:{d['doc_id']}"} for d in iter_wikitext(file, "train"))
        else:
            docs = _iter_parquet(file, text_field)
        for doc in _readable(file, docs):
            count += 1
            yield doc
    if count == 0:
        raise PretrainlabError(
            f"The corpus is empty: {files} hold no text (doc_boundary={doc_boundary!r}, "
            f"text_field={text_field!r})."
        )


# --------------------------------------------------------------------------------------------
# Hub (online)
# --------------------------------------------------------------------------------------------
def hub_documents(
    name: str, config: str | None, split: str, text_field: str = "text"
) -> Iterator[dict]:
    """Documents streamed from the Hugging Face hub (one document per row of ``text_field``).

    Needs network access; any failure to load becomes a :class:`PretrainlabError` telling
    the user to pass a local path instead.
    """
    import datasets

    def unreachable(e: BaseException) -> PretrainlabError:
        return PretrainlabError(
            f"Could not stream corpus {name!r} (config={config!r}, split={split!r}) from the "
            f"Hugging Face hub ({type(e).__name__}: {e}). Without network access, pass a local "
            "path instead (WikiText release files or .txt/.jsonl/.parquet files)."
        )

    try:
        stream = datasets.load_dataset(name, config, split=split, streaming=True)
        rows = iter(stream)
    except Exception as e:
        raise unreachable(e) from e
    i = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as e:
            raise unreachable(e) from e
        if text_field not in row:
            raise PretrainlabError(
                f"Hub corpus {name!r} has no field {text_field!r} (it has {sorted(row)}); "
                "pass text_field= naming the text field."
            )
        text = row[text_field]
        sentences = split_sentences(text) if isinstance(text, str) else []
        if sentences:
            yield {"doc_id": f"{name}/{split}/{i}", "sentences": sentences}
        i += 1
