"""The house of DESIGN.md, checked on the import statements of every module.

Lower floors never import upper ones; ``data/`` and ``eval/metrics/`` never import torch or any
model stack, so the data engine and the metrics run on a core install.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rscovlm"

# Floor of each top-level part; a module may import parts whose floor is <= its own.
FLOORS = {
    "errors": 0,
    "_optional": 0,
    "geometry": 1,
    "resolution": 1,
    "imaging": 1,
    "formats": 2,
    "data": 3,
    "model": 4,
    "train": 5,
    "eval": 5,
    "cli": 6,
    "__main__": 7,
}
MODEL_STACKS = ("torch", "transformers", "vllm", "deepspeed", "accelerate", "peft")


def _part_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []
    package_parts = path.relative_to(PKG.parent).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((name, node.lineno))
    return found


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_upward_imports(path: Path) -> None:
    own = _part_of(path)
    assert own in FLOORS, f"{own} is not placed on a floor in tests/test_layering.py"
    for name, line in _imports(path):
        if not name.startswith("rscovlm."):
            continue
        target = name.split(".")[1]
        if target not in FLOORS:
            continue
        assert FLOORS[target] <= FLOORS[own], f"{path.name}:{line} imports upper floor {name}"


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if _part_of(p) in ("geometry", "resolution", "formats", "data")]
    + [p for p in MODULES if "metrics" in p.relative_to(PKG).parts],
    ids=lambda p: str(p.relative_to(PKG)),
)
def test_torch_free_floors(path: Path) -> None:
    for name, line in _imports(path):
        assert name.split(".")[0] not in MODEL_STACKS, f"{path.name}:{line} imports {name}"
