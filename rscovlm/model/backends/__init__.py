"""Inference backends behind one :class:`Backend` protocol: ``hf``, ``vllm``, ``openai``, and
``replay`` (scripted, for tests). :func:`make_backend` builds one by name."""

from __future__ import annotations

from typing import Any

from rscovlm.errors import InputError
from rscovlm.model.backends.base import (
    Backend,
    Generation,
    GenerationParams,
    GenerationPolicy,
    ImageLists,
    Usage,
    check_inputs,
)
from rscovlm.model.backends.replay import ReplayBackend

__all__ = [
    "BACKENDS",
    "Backend",
    "Generation",
    "GenerationParams",
    "GenerationPolicy",
    "ImageLists",
    "ReplayBackend",
    "Usage",
    "check_inputs",
    "make_backend",
]

BACKENDS = ("hf", "vllm", "openai", "replay")


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """Backend ``name`` over ``model`` (a checkpoint directory or a hub id in the local Hugging
    Face cache, see :func:`rscovlm.model.hub.resolve_model`; for ``openai`` the served model
    name, with ``base_url=`` among the options; for ``replay`` a predictions JSONL).

    Raises:
        InputError: Unknown backend name.
    """
    if name == "hf":
        from rscovlm.model.backends.hf import HFBackend
        from rscovlm.model.hub import resolve_model

        return HFBackend(str(resolve_model(model)), **options)
    if name == "vllm":
        from rscovlm.model.backends.vllm import VLLMBackend
        from rscovlm.model.hub import resolve_model

        return VLLMBackend(str(resolve_model(model)), **options)
    if name == "openai":
        from rscovlm.model.backends.openai import OpenAIBackend

        base_url = options.pop("base_url", None)
        if not base_url:
            raise InputError("the openai backend needs base_url")
        return OpenAIBackend(base_url, model, **options)
    if name == "replay":
        return ReplayBackend.from_file(model, **options)
    raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
