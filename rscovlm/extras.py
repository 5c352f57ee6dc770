"""Lazy imports of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from rscovlm.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Call it where the object that needs the module is built, so a missing extra fails early
    and with an actionable message instead of deep inside a run.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"{module!r} is not installed; install it with: pip install 'rscovlm[{extra}]'"
        ) from exc


def is_available(module: str) -> bool:
    """True when ``module`` can be imported (used by tests and optional code paths)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
