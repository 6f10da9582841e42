"""Why does a pretrained checkpoint lose to `scratch` on a linear probe? Three checks, printed.

1. Probe strength: for each task and pooling, pretrainlab's linear probe against scikit-learn's
   L2 logistic regression with its C chosen on the dev split (the usual linear-probe protocol).
   If the two agree, the features, not the probe, set the score.
2. Pooling: the same, for [CLS] / last-token / mean pooling, so the pooling rule's share of a
   gap is visible.
3. Lexical structure: for the single-token label words of the embedded tasks (topic cues and
   sentiment words), how often a word's nearest neighbour in the input embedding shares one of
   its topics (or its polarity). A random embedding sets the floor.

Each check runs on the checkpoint and on `scratch` (same shape and tokenizer, random init).

    .venv/bin/python benchmarks/probe_diagnostics.py RUN_DIR [--tasks sentiment,topic,pair]
        [--train-size 500] [--dev-size 200] [--test-size 400] [--max-length 96] [--seed 0]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pretrainlab.embedded.lexicon import NEGATIVE, PAIR_CUES, POSITIVE
from pretrainlab.embedded.tasks import load_embedded_task
from pretrainlab.probes.checkpoint import Checkpoint, load_checkpoint
from pretrainlab.probes.features import encode_split
from pretrainlab.probes.linear import Labelled, fit_classifier

SPLITS = ("train", "dev", "test")
C_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


def sklearn_probe(
    feats: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> tuple[float, float]:
    """Test accuracy of the dev-best C, and that C."""
    scale = StandardScaler().fit(feats["train"])
    x = {s: scale.transform(feats[s]) for s in SPLITS}
    best_dev, best_c, best_model = -1.0, C_GRID[0], None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000).fit(x["train"], labels["train"])
        dev = model.score(x["dev"], labels["dev"])
        if dev > best_dev:
            best_dev, best_c, best_model = dev, c, model
    return float(best_model.score(x["test"], labels["test"])), best_c


def probe_table(
    ckpt: Checkpoint, name: str, task_names: list[str], args: argparse.Namespace
) -> None:
    for task_name in task_names:
        task = load_embedded_task(
            task_name,
            seed=args.seed,
            train_size=args.train_size,
            dev_size=args.dev_size,
            test_size=args.test_size,
        )
        labels = {s: torch.tensor(task.splits[s]["label"]) for s in SPLITS}
        for pooling in ("cls", "last", "mean"):
            feats = {
                s: encode_split(
                    ckpt.encoder,
                    ckpt.tokenizer,
                    task.splits[s],
                    pooling,
                    args.max_length,
                    ckpt.uses_segments,
                )
                for s in SPLITS
            }
            data = Labelled(
                feats["train"], labels["train"], feats["dev"], labels["dev"], task.num_labels
            )
            predict = fit_classifier(data, args.seed).predict
            ours = (predict(feats["test"]) == labels["test"]).float().mean().item()
            theirs, c = sklearn_probe(
                {s: f.numpy() for s, f in feats.items()}, {s: y.numpy() for s, y in labels.items()}
            )
            print(
                f"{name:>10} {task_name:>9} {pooling:>4}: pretrainlab {ours:.3f}   "
                f"sklearn (C={c:g}) {theirs:.3f}",
                flush=True,
            )


def lexical_structure(ckpt: Checkpoint, name: str) -> None:
    # each group of label words, named by the labels it points to (a cue's two topics)
    groups = [(frozenset(pair), cues) for pair, cues in PAIR_CUES.items()]
    groups += [(frozenset({"positive"}), POSITIVE), (frozenset({"negative"}), NEGATIVE)]
    ids, owner = [], []
    for labels, members in groups:
        for word in members:
            pieces = ckpt.tokenizer(word, add_special_tokens=False)["input_ids"]
            if len(pieces) == 1:  # multi-piece words have no single embedding row
                ids.append(pieces[0])
                owner.append(labels)
    table = ckpt.encoder.get_input_embeddings().weight.detach().float()
    x = torch.nn.functional.normalize(table[ids] - table.mean(0), dim=-1)
    sim = x @ x.T
    sim.fill_diagonal_(-2.0)
    nearest = sim.argmax(1).tolist()
    same = np.mean([owner[i] == owner[j] for i, j in enumerate(nearest)])
    shares = np.mean([bool(owner[i] & owner[j]) for i, j in enumerate(nearest)])
    print(
        f"{name:>10} lexical: {len(ids)} single-token label words; nearest neighbour in the "
        f"same cue group {same:.2f}, sharing a topic/polarity {shares:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--tasks", default="sentiment,topic,pair")
    parser.add_argument("--train-size", type=int, default=500)
    parser.add_argument("--dev-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    checkpoints = {
        "checkpoint": load_checkpoint(args.run_dir),
        "scratch": load_checkpoint("scratch", scratch_from=args.run_dir),  # seeded like the run
    }
    print(
        f"{args.run_dir}: objective {checkpoints['checkpoint'].objective}; "
        f"{args.train_size} train / {args.dev_size} dev / {args.test_size} test"
    )
    for name, ckpt in checkpoints.items():
        lexical_structure(ckpt, name)
    for name, ckpt in checkpoints.items():
        probe_table(ckpt, name, args.tasks.split(","), args)


if __name__ == "__main__":
    main()
