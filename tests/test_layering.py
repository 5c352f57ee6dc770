"""The house of DESIGN.md, checked on the import statements of every module.

Every top-level part of the package stands on a floor. A module imports only parts on floors
STRICTLY below its own: siblings on one floor (``train`` and ``eval``) never import each other,
and nothing imports upwards. Inside one part, modules import each other freely, but no two
modules anywhere form an import cycle (``TYPE_CHECKING`` imports included: a cycle hidden from
the interpreter is still a cycle in the design). ``data/``, the ground floor, ``formats/`` and
``eval/metrics/`` never import torch or any model stack, so the data engine and the metrics run
on a core install.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rscovlm"

# The floor of each top-level part (module or package). Parts on one floor are siblings.
FLOORS = {
    "errors": 0,
    "safe_read": 1,  # the one safe JSON/JSONL/YAML/text reader (limits, confinement)
    "extras": 1,  # optional-extra imports, named after the extra
    "files": 1,  # atomic writes, image suffixes
    "tables": 1,  # the one plain-text table printer (never cuts a number)
    "configs": 2,  # the one config loader and resolver of shipped files
    "geometry": 2,
    "resolution": 3,
    "imaging": 4,
    "formats": 5,
    "data": 6,
    "model": 7,
    "pipelines": 8,
    "train": 9,
    "eval": 9,
    "demo": 10,
    "cli": 11,
    "__main__": 12,
}
MODEL_STACKS = ("torch", "transformers", "vllm", "deepspeed", "accelerate", "peft")
TORCH_FREE = (
    "errors",
    "extras",
    "files",
    "safe_read",
    "tables",
    "configs",
    "geometry",
    "resolution",
    "imaging",
)
TORCH_FREE += ("formats", "data")


def _part_of(module: str) -> str:
    """``rscovlm.data.render`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path, pkg: Path) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path, pkg: Path) -> Iterator[tuple[str, int]]:
    """Every imported module name (``from a import b`` gives ``a`` and ``a.b``) with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _module_name(path, pkg).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name, node.lineno
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno


def _modules(pkg: Path) -> list[Path]:
    return sorted(p for p in pkg.rglob("*.py") if p.name != "__init__.py" or p.parent != pkg)


def upward_imports(pkg: Path) -> list[str]:
    """Every import of a part that is not on a floor strictly below the importer's."""
    bad = []
    for path in _modules(pkg):
        own = _part_of(_module_name(path, pkg))
        if own not in FLOORS:
            bad.append(f"{path.relative_to(pkg)}: part {own!r} has no floor")
            continue
        for name, line in _imports(path, pkg):
            if not name.startswith(f"{pkg.name}."):
                continue
            target = _part_of(name)
            if target == own or target not in FLOORS:
                continue
            if FLOORS[target] >= FLOORS[own]:
                kind = "sibling" if FLOORS[target] == FLOORS[own] else "upper floor"
                bad.append(f"{path.relative_to(pkg)}:{line} imports {kind} {name}")
    return sorted(set(bad))


def import_cycles(pkg: Path) -> list[list[str]]:
    """Cycles in the module import graph (each reported once, from its smallest member)."""
    paths = {_module_name(p, pkg): p for p in _modules(pkg)}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets = set()
        for name, _ in _imports(path, pkg):
            # ``from rscovlm.model import loading`` -> the module when it exists, else the package
            while name and name not in paths:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        graph[module] = targets
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                first = cycle.index(min(cycle))
                cycles.append(cycle[first:] + cycle[:first])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_every_import_goes_strictly_down() -> None:
    assert upward_imports(PKG) == []


def test_no_import_cycle_anywhere() -> None:
    assert import_cycles(PKG) == []


def test_the_check_rejects_planted_violations(tmp_path: Path) -> None:
    """A sibling import, an upward import and a cycle planted in a copy-shaped package."""
    pkg = tmp_path / "rscovlm"
    for part in ("train", "eval", "data", "formats"):
        (pkg / part).mkdir(parents=True)
        (pkg / part / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "train" / "a.py").write_text("from rscovlm.eval import b\n", encoding="utf-8")
    (pkg / "data" / "c.py").write_text("import rscovlm.train.a\n", encoding="utf-8")
    (pkg / "formats" / "d.py").write_text("from rscovlm.formats import e\n", encoding="utf-8")
    (pkg / "formats" / "e.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import d\n",
        encoding="utf-8",
    )
    bad = upward_imports(pkg)
    assert any("train/a.py:1 imports sibling rscovlm.eval" in b for b in bad), bad
    assert any("data/c.py:1 imports upper floor rscovlm.train" in b for b in bad), bad
    assert import_cycles(pkg) == [["rscovlm.formats.d", "rscovlm.formats.e"]]


@pytest.mark.parametrize(
    "path",
    [p for p in _modules(PKG) if _part_of(_module_name(p, PKG)) in TORCH_FREE]
    + [p for p in _modules(PKG) if "metrics" in p.relative_to(PKG).parts],
    ids=lambda p: str(p.relative_to(PKG)),
)
def test_torch_free_floors(path: Path) -> None:
    for name, line in _imports(path, PKG):
        assert name.split(".")[0] not in MODEL_STACKS, f"{path.name}:{line} imports {name}"
