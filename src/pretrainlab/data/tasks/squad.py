"""SQuAD v1.1 as an extractive-QA probe task, from the release JSON files or the hub.

Splits are always made BY ARTICLE (title), never by question: questions on one article share
its paragraphs, so splitting questions would leak contexts from train into eval.

- Only one file (e.g. just ``dev-v1.1.json``): its articles are split into train / dev / test
  (``dev_fraction`` / ``test_fraction`` of the articles, fixed seed).
- Train and eval files: train = the train file minus a by-article dev carve-out
  (``dev_fraction``), test = the eval file.
- ``train_size`` / ``dev_size`` cap the questions of those splits (a seeded sample of the
  split's questions; the articles stay apart), so a linear probe does not encode thousands
  of windows a small label budget never uses.
- Nothing given: the hub (``rajpurkar/squad``), train / validation treated like the two files.

Rows have the SQuAD columns ``id``, ``title``, ``question``, ``context``, ``answers``
(``{"text": [...], "answer_start": [...]}``); ``title`` names the article. An answer whose
text is not at its ``answer_start`` is relocated to the nearest occurrence of its text in the
context; answers that cannot be found are dropped (and counted in ``task.notes``), as are
questions left without any answer.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tasks.generic import cap_split
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import folder_listing, json_keys, load_json

TRAIN_NAMES = ("train-v1.1.json", "train.json")
EVAL_NAMES = ("dev-v1.1.json", "dev.json", "validation.json")
_EXPECTED = (
    'SQuAD v1.1 JSON: {"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": '
    '[{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}]}'
)

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "question": datasets.Value("string"),
        "context": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)


class _Stats:
    def __init__(self) -> None:
        self.questions = 0
        self.relocated = 0
        self.answers_dropped = 0
        self.questions_dropped = 0


def _fix_answers(
    context: str, texts: list[str], starts: list[int], stats: _Stats
) -> tuple[list[str], list[int]]:
    """Answers that slice correctly out of ``context``; relocate or drop the others."""
    out_t: list[str] = []
    out_s: list[int] = []
    for text, start in zip(texts, starts, strict=True):
        if text and context[start : start + len(text)] == text:
            out_t.append(text)
            out_s.append(start)
            continue
        found = None
        for candidate in (text, text.strip()):
            if not candidate:
                continue
            positions = []
            pos = context.find(candidate)
            while pos != -1:
                positions.append(pos)
                pos = context.find(candidate, pos + 1)
            if positions:
                found = (candidate, min(positions, key=lambda p: abs(p - start)))
                break
        if found is None:
            stats.answers_dropped += 1
        else:
            stats.relocated += 1
            out_t.append(found[0])
            out_s.append(found[1])
    return out_t, out_s


def _row(qid, title, question, context, texts, starts, stats: _Stats) -> dict | None:
    stats.questions += 1
    texts, starts = _fix_answers(context, texts, starts, stats)
    if not texts:
        stats.questions_dropped += 1
        return None
    return {
        "id": str(qid),
        "title": title,
        "question": question,
        "context": context,
        "answers": {"text": texts, "answer_start": starts},
    }


def _read_file(path: Path, stats: _Stats) -> dict[str, list[dict]]:
    """Rows of a SQuAD JSON file grouped by article title, in file order."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            payload = load_json(f, f"SQuAD file {str(path)!r}", _EXPECTED)
    except UnicodeDecodeError as e:
        raise PretrainlabError(
            f"SQuAD file {str(path)!r} is not UTF-8 text ({e.reason}); expected {_EXPECTED}."
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise PretrainlabError(
            f'SQuAD file {str(path)!r} has no top-level "data" list (found {json_keys(payload)}); '
            f"expected {_EXPECTED}."
        )
    articles: dict[str, list[dict]] = {}
    for a, article in enumerate(payload["data"]):
        try:
            title = str(article.get("title") or f"article-{a}")
            rows = articles.setdefault(title, [])
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    answers = qa.get("answers") or []
                    row = _row(
                        qa["id"],
                        title,
                        qa["question"],
                        context,
                        [str(x["text"]) for x in answers],
                        [int(x["answer_start"]) for x in answers],
                        stats,
                    )
                    if row is not None:
                        rows.append(row)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise PretrainlabError(
                f"SQuAD file {str(path)!r}: article {a} is malformed ({type(e).__name__}: {e}); "
                f"expected {_EXPECTED}."
            ) from None
    if not articles:
        raise PretrainlabError(f"SQuAD file {str(path)!r} holds no articles; expected {_EXPECTED}.")
    return articles


def _read_hub(stats: _Stats) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    try:
        ds = datasets.load_dataset("rajpurkar/squad")
        parts = []
        for split in ("train", "validation"):
            articles: dict[str, list[dict]] = {}
            for r in ds[split]:
                row = _row(
                    r["id"],
                    r["title"],
                    r["question"],
                    r["context"],
                    list(r["answers"]["text"]),
                    [int(s) for s in r["answers"]["answer_start"]],
                    stats,
                )
                if row is not None:
                    articles.setdefault(r["title"], []).append(row)
            parts.append(articles)
    except Exception as e:
        raise PretrainlabError(
            f"Could not reach the Hugging Face hub to load SQuAD (rajpurkar/squad): "
            f"{type(e).__name__}: {e}. Without network access, pass data_dir= (a folder with "
            "train-v1.1.json and/or dev-v1.1.json) or train_file= / eval_file=."
        ) from e
    return parts[0], parts[1]


def _resolve(data_dir: str | None, file: str | None, names: tuple[str, ...]) -> Path | None:
    if file is not None:
        p = Path(file)
        if not p.is_file() and data_dir is not None and (Path(data_dir) / file).is_file():
            p = Path(data_dir) / file
        if not p.is_file():
            raise PretrainlabError(f"SQuAD file {file!r} does not exist.")
        return p
    if data_dir is None:
        return None
    for name in names:
        if (Path(data_dir) / name).is_file():
            return Path(data_dir) / name
    return None


def _split_titles(
    titles: list[str], fractions: list[float], seed: int, source: str
) -> list[list[str]]:
    """Shuffle article titles with ``seed``; cut ``fractions`` of them off (>= 1 each)."""
    n = len(titles)
    counts = [max(1, int(round(f * n))) if f > 0 else 0 for f in fractions]
    if sum(counts) >= n:
        raise PretrainlabError(
            f"SQuAD {source} has {n} article(s): too few to split by article into train and "
            f"{len(counts)} held-out part(s) of {counts} article(s). Pass a file with more "
            "articles, or smaller dev_fraction / test_fraction."
        )
    order = [titles[i] for i in np.random.default_rng(seed).permutation(n)]
    parts: list[list[str]] = []
    offset = 0
    for c in counts:
        parts.append(order[offset : offset + c])
        offset += c
    return [order[offset:], *parts]


def _dataset(articles: dict[str, list[dict]], titles: list[str]) -> datasets.Dataset:
    keep = set(titles)
    rows = [r for t, rs in articles.items() if t in keep for r in rs]  # file order
    return datasets.Dataset.from_list(rows, features=FEATURES)


def load_squad(
    data_dir: str | None = None,
    train_file: str | None = None,
    eval_file: str | None = None,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.3,
    seed: int = 0,
    train_size: int | None = None,
    dev_size: int | None = None,
) -> ProbeTask:
    """SQuAD v1.1 QA probe task, split by article (see the module docstring)."""
    for label, value in (("dev_fraction", dev_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise PretrainlabError(f"{label}={value!r} must be a fraction in [0, 1).")
    if dev_fraction + test_fraction >= 1:
        raise PretrainlabError(
            f"dev_fraction + test_fraction = {dev_fraction + test_fraction} leaves no training "
            "articles; their sum must be below 1."
        )
    if data_dir is not None and not Path(data_dir).is_dir():
        raise PretrainlabError(f"SQuAD data_dir {data_dir!r} is not a folder.")
    train_path = _resolve(data_dir, train_file, TRAIN_NAMES)
    eval_path = _resolve(data_dir, eval_file, EVAL_NAMES)
    stats = _Stats()
    notes: list[str] = []

    if data_dir is not None and train_path is None and eval_path is None:
        raise PretrainlabError(
            f"SQuAD data_dir {data_dir!r} has none of {list(TRAIN_NAMES + EVAL_NAMES)} (it "
            f"holds {folder_listing(data_dir)}); pass train_file= / eval_file= naming SQuAD "
            "JSON files."
        )
    if train_path is None and eval_path is None:
        train_articles, eval_articles = _read_hub(stats)
        source = "hub rajpurkar/squad"
    elif train_path is not None and eval_path is not None:
        train_articles = _read_file(train_path, stats)
        eval_articles = _read_file(eval_path, stats)
        source = f"{train_path.name} + {eval_path.name}"
    else:
        only = train_path or eval_path
        train_articles, eval_articles = _read_file(only, stats), None  # type: ignore[arg-type]
        source = only.name  # type: ignore[union-attr]

    if eval_articles is None:
        train_t, dev_t, test_t = _split_titles(
            list(train_articles), [dev_fraction, test_fraction], seed, source
        )
        splits = {
            "train": _dataset(train_articles, train_t),
            "dev": _dataset(train_articles, dev_t),
            "test": _dataset(train_articles, test_t),
        }
        notes.append(
            f"split {source} by article (seed {seed}): {len(train_t)} train / {len(dev_t)} dev "
            f"/ {len(test_t)} test articles"
        )
    else:
        train_t, dev_t = _split_titles(list(train_articles), [dev_fraction], seed, source)
        splits = {
            "train": _dataset(train_articles, train_t),
            "dev": _dataset(train_articles, dev_t),
            "test": _dataset(eval_articles, list(eval_articles)),
        }
        notes.append(
            f"{source}: train file split by article (seed {seed}) into {len(train_t)} train / "
            f"{len(dev_t)} dev articles; test = the eval file ({len(eval_articles)} articles)"
        )
    for split, size in (("train", train_size), ("dev", dev_size)):
        splits[split], capped = cap_split(splits[split], size, seed, f"{split}_size")
        notes += [f"{capped} (questions)"] if capped else []
    if stats.relocated:
        notes.append(f"{stats.relocated} answers relocated to where their text occurs")
    if stats.answers_dropped:
        notes.append(f"{stats.answers_dropped} answers not found in their context (dropped)")
    if stats.questions_dropped:
        notes.append(f"{stats.questions_dropped} questions left without an answer (dropped)")
    notes.append(f"{stats.questions} questions read, {stats.questions_dropped} dropped")
    return ProbeTask(name="squad", kind="qa", splits=splits, label_names=[], notes=notes)
