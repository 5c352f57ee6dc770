"""Where a ``--model`` comes from: a local directory, or a Hugging Face hub id already cached.

rscovlm never reaches the network on its own. A model reference is a checkpoint directory or a
hub id (``Qingyun/RSCoVLM-7B-2512``) that is already in the local Hugging Face cache; fetching
one is a separate, explicit step (:func:`download_model`, ``rscovlm model download ID``), so a
run on a cluster node without internet never stalls on a download it did not ask for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.extras import require

__all__ = ["RELEASED_MODELS", "download_model", "resolve_model"]

RELEASED_MODELS: dict[str, str] = {
    "Qingyun/RSCoVLM-7B-2512": "multi-task (classification, VQA, captions, grounding, "
    "detection, Zoom-in Chain), Qwen2.5-VL-7B based",
    "Qingyun/RSCoVLM-det-7B-2512": "detection only, Qwen2.5-VL-7B based",
}
"""The released RSCoVLM checkpoints (WIRE_FORMATS.md; arXiv 2511.21272) and what they do."""


def _looks_like_hub_id(ref: str) -> bool:
    """``owner/name`` with no path syntax: what the hub could hold."""
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "~"))


def resolve_model(ref: str | os.PathLike[str]) -> Path:
    """The local directory of ``ref``: itself when it is a directory, else the cached snapshot.

    A path that is not a hub id is returned as given: the loader, after its check that the
    model stack is installed, says what is wrong with it.

    Raises:
        InputError: Neither a directory nor a hub id in the local cache; the message says how
            to fetch it.
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    text = str(ref)
    if path.exists() or not _looks_like_hub_id(text):
        return path
    hub: Any = require("huggingface_hub", "train")
    try:
        return Path(hub.snapshot_download(text, local_files_only=True))
    except Exception as exc:  # every miss of the cache means the same to the user
        raise InputError(
            f"--model {text}: not a directory and not in the local Hugging Face cache; "
            f"fetch it once with `rscovlm model download {text}` (needs internet)"
        ) from exc


def download_model(repo_id: str, out: str | os.PathLike[str] | None = None) -> Path:
    """Fetch ``repo_id`` from the hub into ``out`` (default: the Hugging Face cache).

    Resumable: files already complete are kept and a partial one continues (the hub client's
    own behaviour), so a re-run after an interruption fetches only what is missing.

    Raises:
        MissingExtraError: ``huggingface_hub`` is not installed.
        InputError: Not a hub id, offline (``HF_HUB_OFFLINE=1`` or no network), or the hub
            refused (unknown id, gated model): one line saying which.
    """
    hub: Any = require("huggingface_hub", "train")
    constants: Any = require("huggingface_hub.constants", "train")
    if not _looks_like_hub_id(repo_id):
        raise InputError(f"{repo_id!r} is not a hub id (owner/name)")
    if constants.HF_HUB_OFFLINE:
        raise InputError(
            f"cannot download {repo_id}: HF_HUB_OFFLINE is set (unset it where there is internet)"
        )
    try:
        local = hub.snapshot_download(repo_id, local_dir=None if out is None else str(out))
    except Exception as exc:  # network, auth and 404 all end the same way
        raise InputError(f"cannot download {repo_id}: {type(exc).__name__}: {exc}") from exc
    return Path(local)
