"""Real corpora through ``build_corpus``: WikiText release files and .txt/.jsonl/.parquet files
into the Arrow cache, cache hits, and bad input that leaves no cache entry behind.

Fixtures are written here in each release format; the real WikiText-2 under ``../shared/data``
(or ``$PRETRAINLAB_DATA_ROOT``) is used when present and skipped when absent.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pretrainlab.data.corpus import (
    Corpus,
    TextFilesCorpus,
    WikiTextCorpus,
    _in_validation,
    build_corpus,
)
from pretrainlab.errors import PretrainlabError

DATA_ROOT = Path(
    os.environ.get("PRETRAINLAB_DATA_ROOT")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def wikitext(articles: list[tuple[str, list[tuple[str | None, list[str]]]]]) -> str:
    """WikiText release layout: ` = Title = ` and ` = = Section = = ` lines between blank
    lines, one paragraph a line, each line with a leading and trailing space."""
    lines = [" "]
    for title, sections in articles:
        lines += [f" = {title} = ", " "]
        for heading, paragraphs in sections:
            if heading:
                lines += [f" = = {heading} = = ", " "]
            for paragraph in paragraphs:
                lines += [f" {paragraph} ", " "]
    return "\n".join(lines) + "\n"


def test_wikitext_fixture_documents_and_cache(tmp_path, monkeypatch):
    root = tmp_path / "wikitext-fixture"
    write(
        root / "wiki.train.tokens",
        wikitext(
            [
                (
                    "Alpha",
                    [
                        (None, ["Alpha is a letter . It comes first ."]),
                        ("History", ["The Greeks used it . So did others ."]),
                    ],
                ),
                ("Beta", [(None, ["Beta is second ."]), ("Uses", ["It is in beta tests ."])]),
                ("Empty", [("Only a heading", [])]),
                ("Gamma", [(None, ["Gamma is third . The end ."])]),
            ]
        ),
    )
    write(root / "wiki.valid.tokens", wikitext([("Delta", [(None, ["Delta is held out ."])])]))
    corpus = WikiTextCorpus(path=str(root))
    dd = build_corpus(corpus, tmp_path / "cache")
    assert dd["train"]["doc_id"] == ["Alpha", "Beta", "Gamma"]  # "Empty" has no text
    assert dd["train"][0]["sentences"] == [
        "Alpha is a letter .",
        "It comes first .",
        "The Greeks used it .",
        "So did others .",
    ]
    assert not any(s.startswith("= ") for doc in dd["train"]["sentences"] for s in doc)
    assert dd["validation"]["doc_id"] == ["Delta"]
    # a second build loads the cache; a changed release file is a new entry
    monkeypatch.setattr(WikiTextCorpus, "documents", lambda self, split: pytest.fail("rebuilt"))
    assert build_corpus(WikiTextCorpus(path=str(root)), tmp_path / "cache")["train"].num_rows == 3
    monkeypatch.undo()
    with open(root / "wiki.train.tokens", "a", encoding="utf-8") as f:
        f.write(wikitext([("Epsilon", [(None, ["Epsilon is new ."])])]))
    assert build_corpus(WikiTextCorpus(path=str(root)), tmp_path / "cache")["train"].num_rows == 4


def test_real_wikitext2_counts_and_cache_hit(tmp_path, monkeypatch):
    root = DATA_ROOT / "wikitext-2"
    if not root.is_dir():
        pytest.skip(f"real data not available at {root}")
    dd = build_corpus(WikiTextCorpus(path=str(root)), tmp_path)
    assert (len(dd["train"]), len(dd["validation"])) == (600, 60)
    assert len(set(dd["train"]["doc_id"])) == 600
    monkeypatch.setattr(WikiTextCorpus, "documents", lambda self, split: pytest.fail("rebuilt"))
    t = time.perf_counter()
    again = build_corpus(WikiTextCorpus(path=str(root)), tmp_path)
    assert time.perf_counter() - t < 2.0
    assert again["validation"]["doc_id"] == dd["validation"]["doc_id"]


def test_text_files_txt_jsonl_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 20
    write(tmp_path / "a.txt", "".join(f"Text doc {i} starts. It ends here.\n\n" for i in range(n)))
    write(
        tmp_path / "b.jsonl",
        "".join(json.dumps({"body": f"Json doc {i}. Second sentence."}) + "\n" for i in range(n)),
    )
    pq.write_table(
        pa.table({"body": [f"Parquet doc {i}. More." for i in range(n)]}),
        tmp_path / "c.parquet",
        row_group_size=7,
    )
    corpus = TextFilesCorpus(
        paths=[str(tmp_path / "a.txt"), str(tmp_path / "*.jsonl"), str(tmp_path / "c.parquet")],
        text_field="body",
        val_fraction=0.3,
        seed=1,
    )
    dd = build_corpus(corpus, tmp_path / "cache")
    assert len(dd["train"]) + len(dd["validation"]) == 3 * n
    assert len(dd["train"]) > 0 and len(dd["validation"]) > 0
    held_out = [i for i in range(3 * n) if _in_validation(i, 1, 0.3)]
    assert len(dd["validation"]) == len(held_out)
    ids = set(dd["train"]["doc_id"]) | set(dd["validation"]["doc_id"])
    assert {"a.txt:1", "b.jsonl:1", "c.parquet:0", f"c.parquet:{n - 1}"} <= ids
    rows = {r["doc_id"]: r["sentences"] for split in dd.values() for r in split}
    assert rows["a.txt:1"] == ["Text doc 0 starts.", "It ends here."]
    assert rows["b.jsonl:2"] == ["Json doc 1.", "Second sentence."]
    assert rows["c.parquet:7"] == ["Parquet doc 7.", "More."]
    # the order of the files decides which documents are held out: it is part of the key
    swapped = TextFilesCorpus(paths=[str(tmp_path / "c.parquet"), str(tmp_path / "a.txt")])
    same = TextFilesCorpus(paths=[str(tmp_path / "a.txt"), str(tmp_path / "c.parquet")])
    assert swapped.cache_key() != same.cache_key()


@pytest.mark.parametrize(
    "case",
    [
        "glob_matches_nothing",
        "missing_file",
        "empty_txt",
        "malformed_jsonl",
        "wikitext_without_text",
        "nothing_held_out",
        "wikitext_without_validation",
    ],
)
def test_bad_input_is_clear_and_caches_nothing(tmp_path, case):
    files = tmp_path / "files"
    corpus: Corpus
    if case == "glob_matches_nothing":
        corpus, match = TextFilesCorpus(paths=str(files / "*.txt")), r"matched no files"
    elif case == "missing_file":
        corpus, match = TextFilesCorpus(paths=str(files / "gone.txt")), r"does not exist"
    elif case == "empty_txt":
        write(files / "blank.txt", "\n   \n\n")
        corpus, match = TextFilesCorpus(paths=str(files / "blank.txt")), r"corpus is empty"
    elif case == "malformed_jsonl":
        write(
            files / "bad.jsonl",
            "".join(json.dumps({"text": f"Fine doc {i}."}) + "\n" for i in range(50))
            + '{"text": oops\n',
        )
        corpus, match = TextFilesCorpus(paths=str(files / "bad.jsonl")), r"bad\.jsonl.*line 51"
    elif case == "nothing_held_out":  # 20 documents, none drawn for validation at 5%
        write(files / "a.txt", "".join(f"Doc {i}.\n\n" for i in range(20)))
        assert not any(_in_validation(i, 0, 0.05) for i in range(20))
        corpus, match = TextFilesCorpus(paths=str(files / "a.txt")), r"val_fraction=0.05"
    elif case == "wikitext_without_text":
        write(files / "wiki.train.tokens", wikitext([("Only", [("Headings", [])])]))
        write(files / "wiki.valid.tokens", wikitext([("Also", [(None, ["Some text ."])])]))
        corpus, match = WikiTextCorpus(path=str(files)), r"is empty"
    else:
        write(files / "wiki.train.tokens", wikitext([("Text", [(None, ["Some text ."])])]))
        write(files / "wiki.valid.tokens", wikitext([("Only", [("Headings", [])])]))
        corpus, match = WikiTextCorpus(path=str(files)), r"no validation document.*wiki\.valid"
    cache = tmp_path / "cache"
    with pytest.raises(PretrainlabError, match=match):
        build_corpus(corpus, cache)
    leftovers = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    entries = [p for p in (cache / "corpus").glob("*") if p.is_dir()] if cache.exists() else []
    assert leftovers == [] and entries == []
