"""The layout rules a newcomer relies on, checked on the source: no import circle inside the
package, objective knowledge inside ``objectives/`` only, one short ``pretrain()``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch

import pretrainlab
from pretrainlab.objectives import DISPLAY_ORDER

PKG = Path(pretrainlab.__file__).resolve().parent
MODULES = {
    ".".join(f.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): f
    for f in PKG.rglob("*.py")
}


def _runtime_imports(tree: ast.AST) -> list[ast.AST]:
    """Import nodes anywhere in a module (lazy ones included), less ``if TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    kinds = (ast.Import, ast.ImportFrom)
    return [n for n in ast.walk(tree) if isinstance(n, kinds) and id(n) not in skipped]


def _edges(module: str, tree: ast.AST) -> set[str]:
    out = set()
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in MODULES}
        elif node.module in MODULES:  # `from pkg import sub` depends on pkg.sub, else on pkg
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
            out |= subs or {node.module}
    return out - {module}


def test_no_import_circle() -> None:
    graph = {m: _edges(m, ast.parse(f.read_text())) for m, f in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def _objective_names() -> set[str]:
    names = set(DISPLAY_ORDER)
    for f in (PKG / "objectives").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            named = isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets]
            if named == ["name"] and isinstance(node.value, ast.Constant):
                names.add(node.value.value)
    return names


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants less docstrings."""
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docs.add(id(body[0].value))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_objective_named_outside_objectives() -> None:
    names = _objective_names()
    assert {"mlm", "clm", "nsp", "mlm_nsp"} <= names
    found = [
        f"{f.relative_to(PKG)}:{line}: {text!r}"
        for m, f in MODULES.items()
        if not m.startswith("pretrainlab.objectives")
        for line, text in _strings(ast.parse(f.read_text()))
        if set(re.findall(r"[a-z_]+", text)) & names
    ]
    assert not found, "objective names outside objectives/:\n" + "\n".join(found)


def test_pretrain_reads_in_one_sitting() -> None:
    tree = ast.parse((PKG / "pretrain.py").read_text())
    lengths = {
        n.name: n.end_lineno - n.lineno + 1
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and n.name in ("pretrain", "_pretrain", "_fit")
    }
    assert set(lengths) == {"pretrain", "_pretrain", "_fit"}
    assert sum(lengths.values()) <= 110, lengths


def test_seeds_are_derived_in_seeds_py_only() -> None:
    """No magic offset (``seed + 1``, ``seed * 100_003 + epoch``) seeds an RNG outside
    pretrainlab.seeds: each stream is named there, so two never collide unnoticed."""
    rng_calls = {"manual_seed", "Random", "default_rng", "seed", "Generator"}
    found = []
    for module, f in MODULES.items():
        if module == "pretrainlab.seeds":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            derived = [
                a for a in node.args if isinstance(a, ast.BinOp) and "seed" in ast.unparse(a)
            ]
            if name in rng_calls and derived:
                found.append(f"{f.relative_to(PKG)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "seeds derived outside pretrainlab.seeds:\n" + "\n".join(found)


def test_seed_streams_differ() -> None:
    from pretrainlab import seeds

    seed = 7
    orders = {
        "data_order": torch.randperm(1000, generator=seeds.data_order(seed, 0)),
        "loader": torch.randperm(1000, generator=seeds.loader(seed)),
        "masking": torch.randperm(1000, generator=seeds.masking(seed, (0, 0))),
        "masking_next_epoch": torch.randperm(1000, generator=seeds.masking(seed, (1, 0))),
    }
    names = sorted(orders)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.equal(orders[a], orders[b]), (a, b)
    assert seeds.masking(seed, (1, 5), dynamic=False).initial_seed() == (
        seeds.masking(seed, 5).initial_seed()
    )  # static masks: keyed by the index alone, whatever the epoch
    assert seeds.training(seed) != seed and seeds.pairs(seed, "train") != seeds.pairs(
        seed, "validation"
    )


def test_a_config_saved_before_a_target_moved_still_builds() -> None:
    """Run folders keep the ``_target_`` they were made with: ``reproduce`` of a probe run
    from before the embedded tasks left ``data/`` builds the same task."""
    from omegaconf import OmegaConf

    from pretrainlab.config import MOVED_TARGETS, build

    old = next(k for k, v in MOVED_TARGETS.items() if v.endswith(".load_embedded_task"))
    fields = {"name": "sentiment", "seed": 3, "train_size": 40, "dev_size": 20, "test_size": 20}
    new_task = build(OmegaConf.create({"_target_": MOVED_TARGETS[old], **fields}))
    old_task = build(OmegaConf.create({"_target_": old, **fields}))
    assert old_task.splits["train"]["text"] == new_task.splits["train"]["text"]
