"""Reach the Qwen-VL module inside the wrappers training puts around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# DDP / DeepSpeed keep the model in ``.module``, peft in ``.base_model``, and a
# ``*ForConditionalGeneration`` its base model in ``.model``.
_WRAPPER_ATTRS = ("module", "base_model", "model")


def find_wrapped(model: Any, wanted: Callable[[Any], bool], max_depth: int = 6) -> Any | None:
    """The first module, from ``model`` inward through its wrappers, for which ``wanted`` holds."""
    seen = model
    for _ in range(max_depth):
        if wanted(seen):
            return seen
        for name in _WRAPPER_ATTRS:
            inner = getattr(seen, name, None)
            if inner is not None and inner is not seen:
                seen = inner
                break
        else:
            return None
    return None
