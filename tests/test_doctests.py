"""The ``Examples:`` in the docstrings of the pure layers run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import rscovlm

PURE_PREFIXES = (
    "rscovlm.geometry",
    "rscovlm.resolution",
    "rscovlm.formats",
    "rscovlm.eval.metrics",
)


def _pure_modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(rscovlm.__path__, prefix="rscovlm.")
        if info.name.startswith(PURE_PREFIXES)
    ]
    return sorted(names)


@pytest.mark.parametrize("name", _pure_modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"
