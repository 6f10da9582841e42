"""What a bag-of-words logistic regression scores on the embedded probe tasks.

Trains scikit-learn's CountVectorizer + LogisticRegression on each task's train split and prints
test accuracy (pair examples as "A [SEP] B" text). A reference point, not a test: sentiment is
meant to stay well below perfect because negation and contrast defeat word counts.

    .venv/bin/python benchmarks/bow_sentiment.py [--seed 0] [--train-size 2000] [--test-size 1000]
"""

from __future__ import annotations

import argparse
import time

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from pretrainlab.embedded.tasks import load_embedded_task


def _texts(split) -> list[str]:
    if "text_pair" in split.column_names:
        return [f"{a} [SEP] {b}" for a, b in zip(split["text"], split["text_pair"], strict=True)]
    return list(split["text"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=1000)
    args = parser.parse_args()

    print(
        f"bag-of-words logistic regression, seed {args.seed}, "
        f"train {args.train_size}, test {args.test_size}"
    )
    for name in ("sentiment", "topic", "pair"):
        start = time.perf_counter()
        task = load_embedded_task(
            name, seed=args.seed, train_size=args.train_size, dev_size=1, test_size=args.test_size
        )
        train, test = task.splits["train"], task.splits["test"]
        model = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=2000))
        model.fit(_texts(train), train["label"])
        accuracy = model.score(_texts(test), test["label"])
        majority = max(test["label"].count(k) for k in range(task.num_labels)) / len(test)
        print(
            f"{name:>9}: test accuracy {accuracy:.3f} (majority baseline {majority:.3f}, "
            f"{task.num_labels} labels, {time.perf_counter() - start:.1f}s)"
        )


if __name__ == "__main__":
    main()
