"""Is the `lexical` task's signal in the corpus? A classical check, no neural network.

Word vectors from the generated corpus (co-occurrence counts in a window inside sentences,
PPMI with context smoothing 0.75, truncated SVD); a probe text is the mean of its words'
vectors; a logistic regression fits the task's train split (seen members only) and is scored
on the test split's `heldout_words` and `seen_words` rows. Beside it, the negative controls:
bag-of-words counts (whole words, and the WordPiece pieces of the project's tokenizer trained
on this corpus), which can only know the seen members. Exits 1 unless PPMI beats whole-word
bag-of-words on held-out words by --margin and both bag-of-words models are near chance there.

    .venv/bin/python benchmarks/lexical_check.py [--window 4] [--dim 100] [--margin 0.3]
        [OVERRIDES ...]

OVERRIDES: `corpus.*` and `tokenizer.*` values of `pretrainlab pretrain`, `probe.*` values of
`pretrainlab probe probe=lexical`, and `lexical.KEY=VALUE`, which sets the word classes of
both (corpus.lexical.KEY and probe.task.lexical.KEY).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import Counter
from typing import Any

import datasets
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import randomized_svd

from pretrainlab.config import build, compose_config
from pretrainlab.data.corpus import build_corpus
from pretrainlab.data.tokenizer import train_tokenizer
from pretrainlab.embedded import generate_documents
from pretrainlab.embedded.corpus import build_lexicon
from pretrainlab.embedded.lexical import SUBSETS


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def word_vectors(sentences: list[str], window: int, dim: int) -> dict[str, np.ndarray]:
    """PPMI (context distribution smoothed by 0.75) + truncated SVD, rows L2-normalised."""
    vocab: dict[str, int] = {}
    ids, sentence_of = [], []
    for k, sentence in enumerate(sentences):
        for w in words(sentence):
            ids.append(vocab.setdefault(w, len(vocab)))
            sentence_of.append(k)
    ids, sentence_of = np.array(ids), np.array(sentence_of)
    rows, cols = [], []
    for d in range(1, window + 1):
        same = sentence_of[:-d] == sentence_of[d:]
        left, right = ids[:-d][same], ids[d:][same]
        rows += [left, right]
        cols += [right, left]
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = len(vocab)
    counts = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr().tocoo()
    row_p = np.asarray(counts.sum(1)).ravel() / counts.sum()
    col = np.asarray(counts.sum(0)).ravel() ** 0.75
    pmi = np.log(counts.data / counts.sum() / row_p[counts.row] / (col / col.sum())[counts.col])
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=(n, n))
    u, s, _ = randomized_svd(ppmi, min(dim, n - 1), random_state=0)
    vectors = u * np.sqrt(s)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-9)
    return {w: vectors[i] for w, i in vocab.items()}


def embed(texts: list[str], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Each text as the mean vector of its words that have one (zeros if none has)."""
    dim = len(next(iter(vectors.values())))
    out = np.zeros((len(texts), dim))
    for i, text in enumerate(texts):
        known = [vectors[w] for w in words(text) if w in vectors]
        if known:
            out[i] = np.mean(known, axis=0)
    return out


def subset_accuracy(model: Any, x: Any, labels: list[int], subsets: list[str]) -> dict[str, float]:
    """Accuracy of a fitted scikit-learn ``model`` on the rows of each subset."""
    right = np.asarray(model.predict(x)) == np.asarray(labels)
    return {name: float(right[np.asarray(subsets) == name].mean()) for name in SUBSETS}


def _configs(overrides: list[str]) -> tuple[Any, Any, Any]:
    lexical = [o for o in overrides if o.startswith("lexical.")]
    pretrain = [o for o in overrides if o.startswith(("corpus.", "tokenizer."))]
    probe = [o for o in overrides if o.startswith("probe.")]
    unknown = sorted(set(overrides) - set(lexical) - set(pretrain) - set(probe))
    if unknown:
        sys.exit(f"unknown overrides {unknown}: use corpus.*, tokenizer.*, probe.*, lexical.*")
    pretrain += [f"corpus.{o}" for o in lexical]
    probe += [f"probe.task.{o}" for o in lexical]
    cfg = compose_config("pretrain", pretrain)
    probe_cfg = compose_config("probe", ["probe=lexical", "checkpoint=none", *probe])
    return cfg, build(cfg.corpus), build(probe_cfg.probe.task)


def _describe_corpus(corpus: Any, docs: list[dict]) -> None:
    per_genre = Counter()
    for doc in docs:
        per_genre[doc["genre"]] += sum(len(s.split()) for s in doc["sentences"])
    total = sum(per_genre.values())
    spec = corpus.lexical
    print(
        f"corpus: {total:,} words; "
        + ", ".join(f"{g} {n:,} ({n / total:.1%})" for g, n in per_genre.most_common())
    )
    print(
        f"word classes: {spec.num_classes} x {spec.members_per_class} members "
        f"({spec.heldout_per_class} held out), {spec.context_words_per_class} context words"
    )


def _tokenizer_model(cfg: Any, corpus: Any, task: Any, cache_dir: str) -> Any:
    """The project's tokenizer on this corpus, the share of members it keeps whole, and a
    bag-of-pieces model trained on the task."""
    tok, _ = train_tokenizer(
        build(cfg.tokenizer), build_corpus(corpus, cache_dir), corpus.cache_key(), cache_dir
    )
    members = [w for c in build_lexicon(corpus.seed, corpus.lexical).classes for w in c.members]
    whole = sum(len(tok.tokenize(w)) == 1 for w in members)
    print(f"members that are one {cfg.tokenizer.kind} token: {whole}/{len(members)}", end="")
    print(f" (vocabulary {len(tok)})")
    pieces = make_pipeline(
        CountVectorizer(analyzer=tok.tokenize), LogisticRegression(max_iter=2000)
    )
    train = task.splits["train"]
    return pieces.fit(train["text"], train["label"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=4, help="co-occurrence window (words)")
    parser.add_argument("--dim", type=int, default=100, help="SVD dimensions")
    parser.add_argument("--margin", type=float, default=0.3, help="PPMI - BoW on held-out")
    parser.add_argument("overrides", nargs="*")
    return parser


def main() -> int:
    args = _parser().parse_args()
    datasets.disable_progress_bars()
    start = time.perf_counter()
    cfg, corpus, task = _configs(args.overrides)
    docs = generate_documents(corpus.num_words, corpus.seed, corpus.lexical_share, corpus.lexical)
    _describe_corpus(corpus, docs)
    vectors = word_vectors([s for d in docs for s in d["sentences"]], args.window, args.dim)
    train, test = task.splits["train"], task.splits["test"]
    ppmi = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    ppmi.fit(embed(train["text"], vectors), train["label"])
    bow = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=2000))
    bow.fit(train["text"], train["label"])
    pieces = _tokenizer_model(cfg, corpus, task, cfg.paths.cache_dir)
    labels, subsets = test["label"], test["subset"]
    scores = {
        "PPMI+SVD word vectors": subset_accuracy(
            ppmi, embed(test["text"], vectors), labels, subsets
        ),
        "bag of words": subset_accuracy(bow, test["text"], labels, subsets),
        "bag of WordPiece pieces": subset_accuracy(pieces, test["text"], labels, subsets),
    }
    print(f"{'logistic regression on':<26}{SUBSETS[0]:>15}{SUBSETS[1]:>12}")
    for name, acc in scores.items():
        print(f"{name:<26}{acc[SUBSETS[0]]:>15.3f}{acc[SUBSETS[1]]:>12.3f}")
    return verdict(scores, task.num_labels, subsets.count(SUBSETS[0]), args.margin, start)


def verdict(scores: dict, num_labels: int, heldout_rows: int, margin: float, start: float) -> int:
    """0 when the signal is in the corpus only: PPMI far above BoW, BoW at chance (held out)."""
    chance = 1 / num_labels
    tolerance = max(0.05, 3 * math.sqrt(chance * (1 - chance) / heldout_rows))
    ppmi, *bows = (acc[SUBSETS[0]] for acc in scores.values())
    print(
        f"chance {chance:.3f}; held-out PPMI / bag of words = {ppmi / max(bows[0], 1e-9):.1f}x "
        f"({time.perf_counter() - start:.1f}s)"
    )
    problems = []
    if ppmi - bows[0] < margin:
        problems.append(f"PPMI {ppmi:.3f} is not {margin} above bag of words {bows[0]:.3f}")
    problems += [
        f"a bag of words scores {b:.3f}, not chance" for b in bows if b > chance + tolerance
    ]
    print("FAIL: " + "; ".join(problems) if problems else "PASS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
