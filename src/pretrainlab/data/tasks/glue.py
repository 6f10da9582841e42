"""GLUE SST-2, MRPC and RTE as probe tasks, from the release TSVs or the hub.

GLUE's test files carry no labels, so the probe splits are:
- ``test`` = GLUE ``dev.tsv`` (the labelled held-out set everyone reports on),
- ``dev`` = a fixed-seed sample of ``dev_size`` rows carved out of ``train.tsv`` (at most a
  quarter of train when train is small),
- ``train`` = the rest of ``train.tsv`` (at most ``train_size`` rows of it, a seeded sample,
  when set: a linear probe encodes its whole train split once per checkpoint).

``data_dir`` is the task folder holding ``train.tsv`` and ``dev.tsv`` (or the GLUE root
holding ``SST-2/``, ``MRPC/``, ``RTE/``). With ``data_dir=None`` the task is loaded from the
hub (``nyu-mll/glue``), which needs network access.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pretrainlab.data.tasks.base import ProbeTask
from pretrainlab.data.tasks.generic import cap_split, make_split, read_table
from pretrainlab.data.tasks.splits import carve_splits
from pretrainlab.errors import PretrainlabError
from pretrainlab.io import folder_listing

MAX_DEV_FRACTION = 0.25  # dev carve-out never takes more than this share of train


@dataclass(frozen=True)
class _Spec:
    name: str  # probe task name
    folder: str  # folder in the GLUE release
    hub_config: str  # config of nyu-mll/glue
    text: str  # release column -> text
    text_pair: str | None  # release column -> text_pair
    label: str  # release column -> label
    label_values: tuple[str, ...]  # release label strings; position = label id
    label_names: tuple[str, ...]
    hub_text: str
    hub_text_pair: str | None


_SPECS = {  # one task a row, the fields in _Spec's order
    spec.name: spec
    for spec in (
        _Spec("sst2", "SST-2", "sst2", "sentence", None, "label", ("0", "1"),
              ("negative", "positive"), "sentence", None),
        _Spec("mrpc", "MRPC", "mrpc", "#1 String", "#2 String", "Quality", ("0", "1"),
              ("not_equivalent", "equivalent"), "sentence1", "sentence2"),
        _Spec("rte", "RTE", "rte", "sentence1", "sentence2", "label",
              ("entailment", "not_entailment"), ("entailment", "not_entailment"), "sentence1",
              "sentence2"),
    )
}  # fmt: skip


def _task_dir(spec: _Spec, data_dir: str) -> Path:
    root = Path(data_dir)
    if not root.is_dir():
        raise PretrainlabError(
            f"GLUE {spec.folder} data_dir {data_dir!r} is not a folder; pass the folder holding "
            f"train.tsv and dev.tsv (or the GLUE root holding {spec.folder}/)."
        )
    for candidate in (root, root / spec.folder, root / spec.folder.lower()):
        if (candidate / "train.tsv").is_file() and (candidate / "dev.tsv").is_file():
            return candidate
    raise PretrainlabError(
        f"GLUE {spec.folder}: no train.tsv and dev.tsv in {data_dir!r} or {spec.folder}/ "
        f"under it (it holds {folder_listing(root)}). Pass the folder of the GLUE release "
        f"for {spec.folder}."
    )


def _read_release_tsv(spec: _Spec, path: Path) -> dict[str, list]:
    columns = [spec.text] + ([spec.text_pair] if spec.text_pair else []) + [spec.label]
    rows, lines = read_table(path, columns, what=f"GLUE {spec.folder} file")
    out: dict[str, list] = {"text": [], "text_pair": [], "label": []}
    to_id = {value: i for i, value in enumerate(spec.label_values)}
    for row, line in zip(rows, lines, strict=True):
        label = to_id.get(row[spec.label].strip())
        if label is None:
            raise PretrainlabError(
                f"GLUE {spec.folder} file {str(path)!r} line {line}: label column "
                f"{spec.label!r} holds {row[spec.label]!r}; accepted: {list(spec.label_values)}."
            )
        out["text"].append(row[spec.text].strip())
        if spec.text_pair:
            out["text_pair"].append(row[spec.text_pair].strip())
        out["label"].append(label)
    return out


def _read_hub(spec: _Spec) -> tuple[dict[str, list], dict[str, list]]:
    import datasets

    try:
        ds = datasets.load_dataset("nyu-mll/glue", spec.hub_config)
        parts = []
        for split in ("train", "validation"):
            d = ds[split]
            parts.append(
                {
                    "text": [t.strip() for t in d[spec.hub_text]],
                    "text_pair": [t.strip() for t in d[spec.hub_text_pair]]
                    if spec.hub_text_pair
                    else [],
                    "label": [int(x) for x in d["label"]],
                }
            )
    except Exception as e:
        raise PretrainlabError(
            f"Could not reach the Hugging Face hub to load GLUE {spec.folder} "
            f"(nyu-mll/glue, {spec.hub_config}): {type(e).__name__}: {e}. Without network "
            f"access, pass data_dir= the folder holding the release train.tsv and dev.tsv."
        ) from e
    return parts[0], parts[1]


def _subset(cols: dict[str, list], idx: list[int]) -> dict[str, list]:
    return {k: [v[i] for i in idx] if v else [] for k, v in cols.items()}


def _load(
    spec: _Spec, data_dir: str | None, dev_size: int, seed: int, train_size: int | None
) -> ProbeTask:
    if isinstance(dev_size, bool) or not isinstance(dev_size, int) or dev_size < 1:
        raise PretrainlabError(f"dev_size={dev_size!r} must be an int >= 1 (rows of train.tsv).")
    if data_dir is None:
        train, test = _read_hub(spec)
        source = f"hub nyu-mll/glue {spec.hub_config}"
    else:
        folder = _task_dir(spec, data_dir)
        train = _read_release_tsv(spec, folder / "train.tsv")
        test = _read_release_tsv(spec, folder / "dev.tsv")
        source = str(folder)
    n = len(train["label"])
    n_dev = min(dev_size, int(n * MAX_DEV_FRACTION))
    if n_dev < 1:
        raise PretrainlabError(
            f"GLUE {spec.folder} train set from {source} has {n} rows: too few to carve a dev "
            "split out of it."
        )
    rest, (dev_idx,) = carve_splits(n, [n_dev], seed)
    pair = spec.text_pair is not None
    notes = [
        f"test = GLUE dev set ({len(test['label'])} rows); dev = {n_dev} rows carved out of "
        f"GLUE train (seed {seed}); train = the other {len(rest)} rows; source: {source}"
    ]
    if n_dev < dev_size:
        notes.append(f"dev_size {dev_size} clamped to {n_dev} ({MAX_DEV_FRACTION:.0%} of train)")
    train_split, capped = cap_split(
        make_split(_subset(train, rest), pair), train_size, seed, "train_size"
    )
    notes += [capped] if capped else []
    return ProbeTask(
        name=spec.name,
        kind="pair" if pair else "classification",
        splits={
            "train": train_split,
            "dev": make_split(_subset(train, dev_idx), pair),
            "test": make_split(test, pair),
        },
        label_names=list(spec.label_names),
        notes=notes,
    )


def load_glue(
    task: str,
    data_dir: str | None = None,
    dev_size: int = 500,
    seed: int = 0,
    train_size: int | None = None,
) -> ProbeTask:
    """GLUE ``task`` (sst2: sentence -> negative/positive; mrpc: sentence pair ->
    not_equivalent/equivalent, from ``Quality``; rte: sentence pair ->
    entailment/not_entailment) from the release folder or the hub."""
    spec = _SPECS.get(task)
    if spec is None:
        raise PretrainlabError(f"GLUE task {task!r} is not known: accepted: {sorted(_SPECS)}.")
    return _load(spec, data_dir, dev_size, seed, train_size)


# The config targets (conf/probe/{sst2,mrpc,rte}.yaml): load_glue with the task fixed.
load_sst2 = partial(load_glue, "sst2")
load_mrpc = partial(load_glue, "mrpc")
load_rte = partial(load_glue, "rte")
