"""Loaders for real data in native release formats: probe tasks and raw corpora.

The first part writes small fixtures in each release format with ``tmp_path``; the last part
reads the real copies under ``../shared/data`` (or ``$PRETRAINLAB_DATA_ROOT``) and skips when
they are absent.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path

import pytest

from pretrainlab.data.readers import (
    hub_documents,
    iter_text_files,
    iter_wikitext,
    split_sentences,
)
from pretrainlab.data.tasks.generic import load_text_classification
from pretrainlab.data.tasks.glue import load_mrpc, load_rte, load_sst2
from pretrainlab.data.tasks.squad import load_squad
from pretrainlab.errors import PretrainlabError

BOM = "\ufeff"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# Sentence splitting
# ------------------------------------------------------------------------------------------
def test_split_sentences_prose_keeps_abbreviations():
    text = (
        "Dr. Smith moved to the U.S. Army base in 1998. He left, e.g. at noon!  Did he? "
        '"Yes." 42 people saw it. Mr. and Mrs. Jones stayed.'
    )
    assert split_sentences(text) == [
        "Dr. Smith moved to the U.S. Army base in 1998.",
        "He left, e.g. at noon!",
        "Did he?",
        '"Yes."',
        "42 people saw it.",
        "Mr. and Mrs. Jones stayed.",
    ]


def test_split_sentences_tokenized_style():
    text = (
        'It rained . Then it stopped . He said " hello . " The price was 3 @.@ 5 billion . '
        "H. gammarus is big ."
    )
    assert split_sentences(text) == [
        "It rained .",
        "Then it stopped .",
        'He said " hello . "',
        "The price was 3 @.@ 5 billion .",
        "H. gammarus is big .",
    ]


def test_split_sentences_edge_cases():
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []
    assert split_sentences("no terminator here") == ["no terminator here"]
    # lowercase after a period is not a boundary
    assert split_sentences("It was approx. ten. ok then.") == ["It was approx. ten. ok then."]


# ------------------------------------------------------------------------------------------
# WikiText
# ------------------------------------------------------------------------------------------
# release layout: every line is space-padded, blank lines hold one space
WIKITEXT_LINES = [
    "",
    "= First Article =",
    "",
    "Alpha is a letter . It comes first .",
    "",
    "= = History = =",
    "",
    "Alpha was used by the Greeks .",
    "Key : Pld",
    "= Played , W =",
    "Wins , L",
    "= Ties , NR =",
    "",
    "= = = Details = = =",
    "",
    "More text here .",
    "",
    "= Pts ; GA =",
    "Still details .",
    "",
    "= Second Article =",
    "",
    "Beta is second .",
    "",
    "= Empty Article =",
    "",
    "= = Only a section = =",
    "",
    "= First Article =",
    "",
    "A repeated title .",
    "",
]
WIKITEXT = "".join(f" {line} \n" if line else " \n" for line in WIKITEXT_LINES)


def test_iter_wikitext_documents_and_headings(tmp_path):
    write(tmp_path / "wiki.valid.tokens", WIKITEXT)
    docs = iter_wikitext(str(tmp_path), "validation")
    assert inspect.isgenerator(docs)
    assert list(docs) == [
        {
            "doc_id": "First Article",
            "sentences": [
                "Alpha is a letter .",
                "It comes first .",
                "Alpha was used by the Greeks .",
                "Key : Pld",
                "= Played , W =",  # table row between text lines: not a heading
                "Wins , L",
                "= Ties , NR =",  # after a text line: not a heading either
                "More text here .",
                "= Pts ; GA =",  # followed by a text line: not a heading
                "Still details .",
            ],
        },
        {"doc_id": "Second Article", "sentences": ["Beta is second ."]},
        # "Empty Article" has no text: skipped
        {"doc_id": "First Article (2)", "sentences": ["A repeated title ."]},
    ]


def test_text_files_mix_a_wikitext_release_file_with_json_lines(tmp_path):
    wiki = write(tmp_path / "wiki.train.tokens", WIKITEXT)
    reviews = write(tmp_path / "unsup.jsonl", json.dumps({"text": "Good film. Saw it twice."}))
    docs = list(iter_text_files([str(wiki), str(reviews)]))
    assert [d["doc_id"] for d in docs] == [
        "wiki.train.tokens:First Article", "wiki.train.tokens:Second Article",
        "wiki.train.tokens:First Article (2)", "unsup.jsonl:1",
    ]  # fmt: skip
    assert docs[1]["sentences"] == ["Beta is second ."]  # articles, headings dropped
    assert docs[-1]["sentences"] == ["Good film.", "Saw it twice."]


def test_iter_wikitext_raw_file_and_split_names(tmp_path):
    write(tmp_path / "wiki.test.raw", " \n = T = \n \n Some text. More text.\n")
    write(tmp_path / "wiki.train.tokens", " \n = U = \n \n Train text .\n")
    assert [d["doc_id"] for d in iter_wikitext(str(tmp_path), "test")] == ["T"]
    assert list(iter_wikitext(str(tmp_path), "test"))[0]["sentences"] == [
        "Some text.",
        "More text.",
    ]
    assert [d["doc_id"] for d in iter_wikitext(str(tmp_path), "train")] == ["U"]
    # a file path works directly
    assert [d["doc_id"] for d in iter_wikitext(str(tmp_path / "wiki.train.tokens"), "x")] == ["U"]


def test_iter_wikitext_errors(tmp_path):
    write(tmp_path / "wiki.train.tokens", " = U = \n")
    with pytest.raises(PretrainlabError, match="bogus"):
        list(iter_wikitext(str(tmp_path), "bogus"))
    with pytest.raises(PretrainlabError, match=r"wiki\.valid\.tokens"):
        list(iter_wikitext(str(tmp_path), "valid"))
    with pytest.raises(PretrainlabError, match="nowhere"):
        list(iter_wikitext(str(tmp_path / "nowhere"), "train"))


# ------------------------------------------------------------------------------------------
# Generic text files
# ------------------------------------------------------------------------------------------
def test_txt_blank_line_boundary(tmp_path):
    f = write(
        tmp_path / "a.txt",
        "\nFirst doc line one.\nstill first doc. Second sentence.\n\n\nSecond doc!\n\n",
    )
    assert list(iter_text_files(str(f))) == [
        {
            "doc_id": "a.txt:2",
            "sentences": ["First doc line one. still first doc.", "Second sentence."],
        },
        {"doc_id": "a.txt:6", "sentences": ["Second doc!"]},
    ]


def test_txt_line_boundary(tmp_path):
    f = write(tmp_path / "a.txt", "One. Two.\n\nThree.\n")
    assert list(iter_text_files([str(f)], doc_boundary="line")) == [
        {"doc_id": "a.txt:1", "sentences": ["One.", "Two."]},
        {"doc_id": "a.txt:3", "sentences": ["Three."]},
    ]


def test_txt_regex_boundary(tmp_path):
    f = write(
        tmp_path / "a.txt",
        "preamble text.\n# Doc A\nA one.\n\nA two.\n# Doc B\nB one.\n",
    )
    docs = list(iter_text_files(str(f), doc_boundary="regex:^# "))
    assert docs == [
        {"doc_id": "a.txt:1", "sentences": ["preamble text."]},
        {"doc_id": "a.txt:2", "sentences": ["# Doc A A one.", "A two."]},
        {"doc_id": "a.txt:6", "sentences": ["# Doc B B one."]},
    ]


def test_jsonl_and_parquet_and_glob_order(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write(
        tmp_path / "b.jsonl",
        json.dumps({"body": "Jay one. Jay two."}) + "\n\n" + json.dumps({"body": "Jay three."}),
    )
    pq.write_table(
        pa.table({"body": ["Par one.", None, "Par two. Par three."], "n": [1, 2, 3]}),
        tmp_path / "c.parquet",
        row_group_size=1,
    )
    write(tmp_path / "a.txt", "Tee one.\n")
    docs = list(iter_text_files(str(tmp_path / "*"), text_field="body"))
    assert docs == [
        {"doc_id": "a.txt:1", "sentences": ["Tee one."]},
        {"doc_id": "b.jsonl:1", "sentences": ["Jay one.", "Jay two."]},
        {"doc_id": "b.jsonl:3", "sentences": ["Jay three."]},
        {"doc_id": "c.parquet:0", "sentences": ["Par one."]},
        {"doc_id": "c.parquet:2", "sentences": ["Par two.", "Par three."]},
    ]


def test_text_files_is_lazy(tmp_path):
    write(tmp_path / "a.txt", "One.\n\nTwo.\n")
    write(tmp_path / "b.jsonl", "{not json\n")
    docs = iter_text_files([str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl")])
    assert inspect.isgenerator(docs)
    assert next(docs)["sentences"] == ["One."]  # the bad file is not read yet
    assert next(docs)["sentences"] == ["Two."]
    with pytest.raises(PretrainlabError, match=r"b\.jsonl.*line 1"):
        next(docs)


def test_text_files_errors(tmp_path):
    write(tmp_path / "blank.txt", "\n  \n\n")
    write(tmp_path / "bad.jsonl", '{"text": "ok."}\n{"text": broken\n')
    write(tmp_path / "nofield.jsonl", '{"text": "ok."}\n{"body": "x"}\n')
    write(tmp_path / "doc.md", "text")
    cases = [
        (str(tmp_path / "nothing_*.txt"), {}, r"nothing_\*\.txt.*matched no files"),
        (str(tmp_path / "missing.txt"), {}, r"missing\.txt.*does not exist"),
        (str(tmp_path / "blank.txt"), {}, "corpus is empty"),
        (str(tmp_path / "bad.jsonl"), {}, r"bad\.jsonl.*line 2"),
        (str(tmp_path / "nofield.jsonl"), {}, r"nofield\.jsonl.*line 2.*'text'"),
        (str(tmp_path / "doc.md"), {}, r"doc\.md.*extension"),
        (str(tmp_path / "blank.txt"), {"doc_boundary": "para"}, "'para'"),
        (str(tmp_path / "blank.txt"), {"doc_boundary": "regex:(["}, "invalid regular"),
        (str(tmp_path), {}, "folder"),
    ]
    for paths, kwargs, pattern in cases:
        with pytest.raises(PretrainlabError, match=pattern):
            list(iter_text_files(paths, **kwargs))


def test_parquet_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["x."]}), tmp_path / "c.parquet")
    with pytest.raises(PretrainlabError, match=r"c\.parquet.*'text'.*'body'"):
        list(iter_text_files(str(tmp_path / "c.parquet")))


def test_hub_documents_success_and_failure(monkeypatch):
    import datasets

    def fake_ok(name, config, split, streaming):
        assert streaming is True
        return iter([{"text": "One. Two."}, {"text": ""}, {"text": "Three."}])

    monkeypatch.setattr(datasets, "load_dataset", fake_ok)
    assert list(hub_documents("some/corpus", None, "train")) == [
        {"doc_id": "some/corpus/train/0", "sentences": ["One.", "Two."]},
        {"doc_id": "some/corpus/train/2", "sentences": ["Three."]},
    ]

    def fake_fail(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", fake_fail)
    with pytest.raises(PretrainlabError, match=r"some/corpus.*local path"):
        list(hub_documents("some/corpus", "cfg", "train"))


# ------------------------------------------------------------------------------------------
# GLUE
# ------------------------------------------------------------------------------------------
def sst2_dir(tmp_path: Path, bom: bool) -> Path:
    d = tmp_path / "glue" / "SST-2"
    rows = [f"sentence number {i} is {'good' if i % 2 else 'bad'} \t{i % 2}" for i in range(20)]
    rows[3] = "a stray \" quote with it 's tab-free text \t1"
    write(d / "train.tsv", (BOM if bom else "") + "sentence\tlabel\n" + "\n".join(rows) + "\n")
    write(d / "dev.tsv", 'sentence\tlabel\nfine " film\t1\nbad film\t0\n')
    return d


@pytest.mark.parametrize("bom", [False, True])
def test_sst2_local(tmp_path, bom):
    d = sst2_dir(tmp_path, bom)
    task = load_sst2(str(d), dev_size=4, seed=1)
    assert task.kind == "classification"
    assert task.label_names == ["negative", "positive"]
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 16, "dev": 4, "test": 2}
    assert task.splits["test"][0] == {"text": 'fine " film', "label": 1}
    assert task.splits["test"]["label"] == [1, 0]
    got = task.splits["train"].to_list() + task.splits["dev"].to_list()
    assert len({r["text"] for r in got}) == 20  # train and dev are disjoint and complete
    quoted = [r for r in got if "stray" in r["text"]]
    assert quoted == [{"text": "a stray \" quote with it 's tab-free text", "label": 1}]
    for r in got:
        n = r["text"].split()[2]
        if n.isdigit():
            assert r["label"] == int(n) % 2


def test_glue_dev_carve_is_seeded_and_clamped(tmp_path):
    sst2_dir(tmp_path, bom=False)
    root = str(tmp_path / "glue")  # the GLUE root works too
    a = load_sst2(root, dev_size=5, seed=0).splits["dev"]["text"]
    b = load_sst2(root, dev_size=5, seed=0).splits["dev"]["text"]
    c = load_sst2(root, dev_size=5, seed=3).splits["dev"]["text"]
    assert a == b and a != c
    big = load_sst2(root, dev_size=500)  # 20 train rows: clamped to a quarter
    assert len(big.splits["dev"]) == 5 and len(big.splits["train"]) == 15
    assert any("clamped" in n for n in big.notes)


def test_glue_train_size_caps_train_only(tmp_path):
    sst2_dir(tmp_path, bom=False)
    full = load_sst2(str(tmp_path / "glue"), dev_size=4, seed=1)
    capped = load_sst2(str(tmp_path / "glue"), dev_size=4, seed=1, train_size=6)
    assert len(capped.splits["train"]) == 6
    assert set(capped.splits["train"]["text"]) < set(full.splits["train"]["text"])
    assert capped.splits["dev"]["text"] == full.splits["dev"]["text"]  # dev and test untouched
    assert capped.splits["test"]["text"] == full.splits["test"]["text"]
    assert "train_size=6: 6 of 16 rows kept" in capped.notes
    roomy = load_sst2(str(tmp_path / "glue"), dev_size=4, seed=1, train_size=100)
    assert roomy.splits["train"]["text"] == full.splits["train"]["text"]  # a cap, not a demand
    with pytest.raises(PretrainlabError, match=r"train_size=0 is not valid.*integer >= 1"):
        load_sst2(str(tmp_path / "glue"), train_size=0)


def test_mrpc_local_with_bom(tmp_path):
    d = tmp_path / "MRPC"
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = "".join(f'{i % 2}\t{i}\t{i + 100}\tleft {i} .\tright " {i} .\n' for i in range(12))
    write(d / "train.tsv", BOM + header + rows)
    write(d / "dev.tsv", BOM + header + "0\t1\t2\tA .\tB .\n1\t3\t4\tC .\tD .\n")
    task = load_mrpc(str(d), dev_size=3)
    assert task.kind == "pair"
    assert task.label_names == ["not_equivalent", "equivalent"]
    assert task.splits["test"].to_list() == [
        {"text": "A .", "text_pair": "B .", "label": 0},
        {"text": "C .", "text_pair": "D .", "label": 1},
    ]
    assert len(task.splits["dev"]) == 3 and len(task.splits["train"]) == 9
    for r in task.splits["train"].to_list() + task.splits["dev"].to_list():
        i = int(r["text"].split()[1])
        assert r == {"text": f"left {i} .", "text_pair": f'right " {i} .', "label": i % 2}


def test_rte_local_label_strings(tmp_path):
    d = tmp_path / "RTE"
    header = "index\tsentence1\tsentence2\tlabel\n"
    labels = ["entailment", "not_entailment"]
    rows = "".join(f"{i}\tPremise {i}.\tHypo {i}.\t{labels[i % 2]}\n" for i in range(8))
    write(d / "train.tsv", header + rows)
    write(d / "dev.tsv", header + "0\tP.\tH.\tnot_entailment\n")
    task = load_rte(str(d), dev_size=2)
    assert task.label_names == ["entailment", "not_entailment"]
    assert task.splits["test"].to_list() == [{"text": "P.", "text_pair": "H.", "label": 1}]
    for r in task.splits["train"].to_list():
        assert r["label"] == int(r["text"].split()[1].rstrip(".")) % 2

    write(d / "dev.tsv", header + "0\tP.\tH.\tcontradiction\n")
    with pytest.raises(PretrainlabError, match=r"'contradiction'.*entailment"):
        load_rte(str(d))


def test_glue_errors(tmp_path):
    d = tmp_path / "SST-2"
    write(d / "train.tsv", "text\tgold\nx\t1\n")
    write(d / "dev.tsv", "sentence\tlabel\nx\t1\n")
    with pytest.raises(PretrainlabError, match=r"train\.tsv.*'sentence'.*'text', 'gold'"):
        load_sst2(str(d))
    with pytest.raises(PretrainlabError, match="nowhere"):
        load_sst2(str(tmp_path / "nowhere"))
    with pytest.raises(PretrainlabError, match=r"train\.tsv and dev\.tsv"):
        load_mrpc(str(tmp_path))
    write(d / "train.tsv", "sentence\tlabel\n")
    with pytest.raises(PretrainlabError, match=r"train\.tsv.*empty"):
        load_sst2(str(d))


def test_glue_hub_failure_is_clear(monkeypatch):
    import datasets

    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(
        PretrainlabError, match=r"(?i)could not reach the Hugging Face hub.*data_dir"
    ):
        load_rte()
    assert calls == [("nyu-mll/glue", "rte")]


def test_glue_hub_path_converts_columns(monkeypatch):
    import datasets

    def fake(name, config):
        assert (name, config) == ("nyu-mll/glue", "mrpc")
        split = {"sentence1": ["a ", "b", "c", "d"], "sentence2": ["w", "x", "y", "z"]}
        train = datasets.Dataset.from_dict({**split, "label": [0, 1, 0, 1], "idx": [0, 1, 2, 3]})
        val = datasets.Dataset.from_dict(
            {"sentence1": ["q"], "sentence2": ["r"], "label": [1], "idx": [0]}
        )
        return datasets.DatasetDict({"train": train, "validation": val})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    task = load_mrpc(dev_size=1)
    assert task.splits["test"].to_list() == [{"text": "q", "text_pair": "r", "label": 1}]
    assert len(task.splits["train"]) == 3 and len(task.splits["dev"]) == 1


# ------------------------------------------------------------------------------------------
# SQuAD
# ------------------------------------------------------------------------------------------
def squad_json(n_articles: int, prefix: str = "T") -> dict:
    data = []
    for a in range(n_articles):
        context = f"Article {a} is about the colour blue and the number {a}."
        qas = [
            {
                "id": f"{prefix}{a}-0",
                "question": "What colour?",
                "answers": [{"text": "blue", "answer_start": context.index("blue")}],
            },
            {
                "id": f"{prefix}{a}-1",
                "question": "Which article?",
                "answers": [{"text": f"Article {a}", "answer_start": 0}],
            },
        ]
        data.append({"title": f"{prefix}{a}", "paragraphs": [{"context": context, "qas": qas}]})
    # article 0: one answer with a wrong offset (relocated), one question whose only
    # answer is not in the context (dropped), one question keeping 1 of 2 answers
    data[0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    data[0]["paragraphs"][0]["qas"].append(
        {
            "id": f"{prefix}0-2",
            "question": "Missing?",
            "answers": [{"text": "red", "answer_start": 1}],
        }
    )
    data[0]["paragraphs"][0]["qas"][1]["answers"].append({"text": "green", "answer_start": 0})
    return {"version": "1.1", "data": data}


def check_squad_rows(task):
    titles = {}
    for split, ds in task.splits.items():
        titles[split] = set(ds["title"])
        for r in ds:
            assert r["answers"]["text"], r
            for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"], strict=True):
                assert r["context"][s : s + len(t)] == t
    assert not titles["train"] & titles["dev"]
    assert not titles["train"] & titles["test"]
    assert not titles["dev"] & titles["test"]
    return titles


def test_squad_single_file_split_by_article(tmp_path):
    write(tmp_path / "dev-v1.1.json", json.dumps(squad_json(10)))
    task = load_squad(str(tmp_path), dev_fraction=0.2, test_fraction=0.3, seed=0)
    assert task.kind == "qa" and task.primary_metric == "f1"
    titles = check_squad_rows(task)
    assert [len(titles[s]) for s in ("train", "dev", "test")] == [5, 2, 3]
    assert set().union(*titles.values()) == {f"T{a}" for a in range(10)}
    n_rows = sum(len(ds) for ds in task.splits.values())
    assert n_rows == 20  # 21 questions, 1 dropped
    assert "2 answers not found in their context (dropped)" in task.notes
    assert "1 questions left without an answer (dropped)" in task.notes
    assert "1 answers relocated to where their text occurs" in task.notes
    rows = {r["id"]: r for ds in task.splits.values() for r in ds}
    assert rows["T0-0"]["answers"] == {"text": ["blue"], "answer_start": [30]}
    assert rows["T0-1"]["answers"] == {"text": ["Article 0"], "answer_start": [0]}
    assert "T0-2" not in rows
    again = load_squad(str(tmp_path), dev_fraction=0.2, test_fraction=0.3, seed=0)
    other = load_squad(str(tmp_path), dev_fraction=0.2, test_fraction=0.3, seed=5)
    assert again.splits["test"]["id"] == task.splits["test"]["id"]
    assert other.splits["test"]["id"] != task.splits["test"]["id"]


def test_squad_question_caps_keep_articles_apart(tmp_path):
    write(tmp_path / "dev-v1.1.json", json.dumps(squad_json(10)))
    full = load_squad(str(tmp_path), dev_fraction=0.2, test_fraction=0.3, seed=0)
    capped = load_squad(
        str(tmp_path), dev_fraction=0.2, test_fraction=0.3, seed=0, train_size=3, dev_size=2
    )
    assert [len(capped.splits[s]) for s in ("train", "dev")] == [3, 2]
    assert set(capped.splits["train"]["id"]) < set(full.splits["train"]["id"])
    assert capped.splits["test"]["id"] == full.splits["test"]["id"]
    assert not set(capped.splits["train"]["title"]) & set(capped.splits["test"]["title"])
    assert any(n.startswith("train_size=3: 3 of") for n in capped.notes)


def test_squad_train_and_eval_files(tmp_path):
    train = write(tmp_path / "tr.json", json.dumps(squad_json(10, "Tr")))
    ev = write(tmp_path / "ev.json", json.dumps(squad_json(3, "Ev")))
    task = load_squad(train_file=str(train), eval_file=str(ev), dev_fraction=0.2)
    titles = check_squad_rows(task)
    assert titles["test"] == {"Ev0", "Ev1", "Ev2"}
    assert len(titles["dev"]) == 2 and len(titles["train"]) == 8
    assert all(t.startswith("Tr") for t in titles["train"] | titles["dev"])


def test_squad_errors(tmp_path, monkeypatch):
    bad = write(tmp_path / "broken.json", '{"data": [')
    with pytest.raises(PretrainlabError, match=r"broken\.json.*not valid JSON.*\"data\""):
        load_squad(eval_file=str(bad))
    nodata = write(tmp_path / "nodata.json", json.dumps({"articles": []}))
    with pytest.raises(PretrainlabError, match=r"nodata\.json.*\"data\".*'articles'"):
        load_squad(eval_file=str(nodata))
    shape = write(tmp_path / "shape.json", json.dumps({"data": [{"title": "x"}]}))
    with pytest.raises(PretrainlabError, match=r"shape\.json.*paragraphs"):
        load_squad(eval_file=str(shape))
    small = write(tmp_path / "small.json", json.dumps(squad_json(2)))
    with pytest.raises(PretrainlabError, match=r"small\.json.*2 article"):
        load_squad(eval_file=str(small))
    with pytest.raises(PretrainlabError, match=r"gone\.json"):
        load_squad(eval_file=str(tmp_path / "gone.json"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(PretrainlabError, match=r"dev-v1\.1\.json"):
        load_squad(str(empty_dir))

    import datasets

    def fake(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(
        PretrainlabError, match=r"(?i)could not reach the Hugging Face hub.*data_dir"
    ):
        load_squad()


# ------------------------------------------------------------------------------------------
# Generic CSV / TSV / JSONL classification
# ------------------------------------------------------------------------------------------
def test_csv_string_labels_carved_splits(tmp_path):
    lines = ["review,stars,sentiment"]
    for i in range(20):
        label = ["pos", "neg", "neutral"][i % 3]
        lines.append(f'"text {i}, with ""quotes""",{i},{label}')
    f = write(tmp_path / "data.csv", "\n".join(lines) + "\n")
    task = load_text_classification(str(f), "review", "sentiment", dev_size=0.2, test_size=3)
    assert task.kind == "classification"
    assert task.label_names == ["neg", "neutral", "pos"]
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 13, "dev": 4, "test": 3}
    rows = [r for ds in task.splits.values() for r in ds]
    assert sorted(int(r["text"].split()[1].rstrip(",")) for r in rows) == list(range(20))
    for r in rows:
        i = int(r["text"].split()[1].rstrip(","))
        assert r["text"] == f'text {i}, with "quotes"'
        assert task.label_names[r["label"]] == ["pos", "neg", "neutral"][i % 3]
    again = load_text_classification(str(f), "review", "sentiment", dev_size=0.2, test_size=3)
    assert again.splits["dev"]["text"] == task.splits["dev"]["text"]


def test_tsv_int_labels_numeric_order_and_stray_quote(tmp_path):
    rows = "".join(f'say " {i}\t{[2, 10, 1][i % 3]}\n' for i in range(9))
    f = write(tmp_path / "d.tsv", BOM + "text\tlabel\n" + rows)
    task = load_text_classification(str(f), "text", "label", dev_size=0, test_size=0)
    assert task.label_names == ["1", "2", "10"]
    assert task.splits["train"][0] == {"text": 'say " 0', "label": 1}
    assert task.splits["train"]["label"] == [1, 2, 0] * 3
    assert len(task.splits["dev"]) == 0 and len(task.splits["test"]) == 0


def test_jsonl_pair_with_given_splits(tmp_path):
    def jl(rows):
        return "\n".join(json.dumps(r) for r in rows) + "\n"

    train = write(
        tmp_path / "train.jsonl",
        jl([{"a": f"p{i}", "b": f"h{i}", "y": i % 2, "extra": None} for i in range(6)]),
    )
    dev = write(tmp_path / "dev.json", jl([{"a": "dp", "b": "dh", "y": 1}]))
    test = write(tmp_path / "test.jsonl", jl([{"a": "tp", "b": "th", "y": "0"}]))
    task = load_text_classification(
        str(train),
        "a",
        "y",
        dev_file=str(dev),
        test_file=str(test),
        text_pair_column="b",
        name="nli",
    )
    assert task.name == "nli" and task.kind == "pair"
    assert task.label_names == ["0", "1"]
    assert len(task.splits["train"]) == 6
    assert task.splits["train"][3] == {"text": "p3", "text_pair": "h3", "label": 1}
    assert task.splits["dev"].to_list() == [{"text": "dp", "text_pair": "dh", "label": 1}]
    assert task.splits["test"].to_list() == [{"text": "tp", "text_pair": "th", "label": 0}]


def test_generic_errors(tmp_path):
    good = write(tmp_path / "good.csv", "text,label\na,x\nb,y\nc,x\nd,y\ne,x\n")
    cols = write(tmp_path / "cols.tsv", "sentence\tgold\na\t1\n")
    empty = write(tmp_path / "empty.csv", "")
    header_only = write(tmp_path / "header.csv", "text,label\n")
    badjson = write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n\n{"text": oops}\n')
    unseen = write(tmp_path / "unseen.csv", "text,label\na,x\nb,zebra\nc,alpha\n")
    xml = write(tmp_path / "data.xml", "<a/>")
    cases = [
        (dict(train_file=str(tmp_path / "missing.csv")), r"missing\.csv.*does not exist"),
        (dict(train_file=str(xml)), r"data\.xml.*extension.*\.csv"),
        (dict(train_file=str(cols)), r"cols\.tsv.*'text', 'label'.*'sentence', 'gold'"),
        (dict(train_file=str(empty)), r"empty\.csv.*empty"),
        (dict(train_file=str(header_only)), r"header\.csv.*empty"),
        (dict(train_file=str(badjson)), r"bad\.jsonl.*line 3"),
        (dict(train_file=str(good), dev_file=str(unseen)), r"unseen\.csv.*\['alpha', 'zebra'\]"),
        (dict(train_file=str(good), test_size=5), r"good\.csv.*5 rows"),
        (dict(train_file=str(good), dev_size=1.5), "dev_size=1.5"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(PretrainlabError, match=pattern):
            load_text_classification(text_column="text", label_column="label", **kwargs)


# ------------------------------------------------------------------------------------------
# The real release files (skipped when ../shared/data is absent)
# ------------------------------------------------------------------------------------------
DATA_ROOT = Path(
    os.environ.get("PRETRAINLAB_DATA_ROOT")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def need(rel: str) -> Path:
    path = DATA_ROOT / rel
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


@pytest.mark.parametrize(
    "loader, folder, n_train, n_test",
    [
        (load_sst2, "SST-2", 67349, 872),
        (load_mrpc, "MRPC", 3668, 408),
        (load_rte, "RTE", 2490, 277),
    ],
)
def test_real_glue(loader, folder, n_train, n_test):
    task = loader(str(need(f"glue/{folder}")))
    sizes = {k: len(v) for k, v in task.splits.items()}
    assert sizes == {"train": n_train - 500, "dev": 500, "test": n_test}
    assert set(task.splits["test"]["label"]) == {0, 1}
    assert all(task.splits["train"]["text"])
    if task.kind == "pair":
        assert all(task.splits["test"]["text_pair"])


def test_real_squad_dev():
    task = load_squad(str(need("squad")))
    titles = check_squad_rows(task)
    assert len(set().union(*titles.values())) == 48
    kept = sum(len(ds) for ds in task.splits.values())
    counts = [re.fullmatch(r"(\d+) questions read, (\d+) dropped", n) for n in task.notes]
    read, dropped = next((int(m[1]), int(m[2])) for m in counts if m)
    assert read == 10570
    assert kept + dropped == 10570
    assert all(len(ds) > 0 for ds in task.splits.values())


def test_real_wikitext2():
    root = need("wikitext-2")
    expected = {"train": 600, "validation": 60, "test": 60}  # the release's article counts
    for split, n_docs in expected.items():
        docs = list(iter_wikitext(str(root), split))
        assert len(docs) == n_docs
        assert len({d["doc_id"] for d in docs}) == n_docs
        n_sent = sum(len(d["sentences"]) for d in docs)
        assert 10 * n_docs < n_sent < 200 * n_docs
        for d in docs:
            assert d["sentences"] and all(s.strip() == s and s for s in d["sentences"])
            assert not any(s.startswith("= = ") for s in d["sentences"])
