"""Every ``>>>`` example in the package's docstrings runs as a test.

The modules are found by their text, so a module that gains an example is tested without
anyone remembering to list it, and one whose examples are all removed simply drops out.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rscovlm"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(PKG.rglob("*.py")):
        if ">>> " not in path.read_text(encoding="utf-8"):
            continue
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.append(".".join(parts))
    return names


def test_examples_are_found() -> None:
    assert "rscovlm.resolution" in _modules_with_examples()


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has '>>> ' text but no example doctest runs"
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"
