"""Lazy imports of optional dependencies with an error that names the extra to install.

A core install (``pip install rscovlm``) has no torch: the data engine, the formats, the metrics
and every ``--help`` work without it. What needs the model stack imports it through
:func:`require` (or :func:`require_torch` at the entry points that run a model), so a missing
stack ends in one line naming the extra, never in a ``ModuleNotFoundError`` deep inside a run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rscovlm.errors import MissingExtraError

__all__ = ["MODEL_STACK", "is_available", "require", "require_torch"]

MODEL_STACK = ("torch", "transformers")
"""What every model-running entry point needs together (extra ``[train]``)."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Call it where the object that needs the module is built, so a missing extra fails early
    and with an actionable message instead of deep inside a run.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is not installed; install it with: pip install 'rscovlm[{extra}]'"
        ) from exc


def require_torch(extra: str = "train") -> ModuleType:
    """``torch``, once the whole :data:`MODEL_STACK` imports.

    The entry points that run a model (the trainer, checkpoint loading, the ``hf`` backend,
    the full demo) call this first: checking transformers here too means a half-installed stack
    fails before any work starts, and the bare ``import torch`` lines below an entry point can
    stay bare because they only run after it.
    """
    torch = require("torch", extra)
    for module in MODEL_STACK[1:]:
        require(module, extra)
    return torch


def is_available(module: str) -> bool:
    """True when ``module`` can be imported (used by tests and optional code paths)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
