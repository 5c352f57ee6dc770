"""Loading checkpoint files of a run folder without running code from them.

A run folder is writable by whoever shares the cluster; ``torch.load(weights_only=False)`` runs
any pickle planted in it on the next resume. Every checkpoint file rscovlm reads goes through
:func:`load_plain`, which unpickles only tensors and plain data (``weights_only=True``), and
DeepSpeed's own files — which DeepSpeed itself unpickles without that guard — are first
checked by :func:`check_deepspeed_files`, which lists the globals a file would import without
unpickling it, and refuses any outside a small set of plain-data types DeepSpeed writes.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError

__all__ = ["DEEPSPEED_GLOBALS", "check_deepspeed_files", "load_plain"]

DEEPSPEED_GLOBALS = frozenset(
    {
        "argparse.Namespace",  # the launcher's arguments, when DeepSpeed was given them
        "deepspeed.runtime.fp16.loss_scaler.LossScaler",
        "deepspeed.runtime.zero.config.ZeroStageEnum",
        "deepspeed.utils.tensor_fragment.fragment_address",
    }
)
"""Globals DeepSpeed 0.19's ZeRO-1/2/3 checkpoint files import beyond torch's own safe set:
plain-data containers and enums (listed from real checkpoints of tests/train/test_engines.py)."""


def load_plain(path: Path, map_location: Any = None) -> Any:
    """``torch.load`` of a file that may hold only tensors and plain data.

    Raises:
        InputError: The file is missing, damaged, or holds other objects (it is not unpickled:
            nothing in it runs).
    """
    import torch

    if not path.is_file():
        raise InputError(f"checkpoint file {path} is missing")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else ""
        raise InputError(
            f"checkpoint file {path} holds objects other than tensors and plain data; refusing "
            f"to load it (a planted or foreign pickle?){': ' + first if first else ''}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"checkpoint file {path} is damaged: {first}") from None


def check_deepspeed_files(folder: Path) -> None:
    """Refuse a DeepSpeed checkpoint folder whose files would import anything unexpected.

    Raises:
        InputError: A file is not a torch checkpoint, or would import a global outside
            :data:`DEEPSPEED_GLOBALS` (named in the message).
    """
    import torch

    for path in sorted(folder.rglob("*.pt")):
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "unreadable"
            raise InputError(f"checkpoint file {path} is damaged: {first}") from None
        unexpected = sorted(set(names) - DEEPSPEED_GLOBALS)
        if unexpected:
            raise InputError(
                f"checkpoint file {path} would import {', '.join(unexpected[:3])}; refusing to "
                "load it (a planted or foreign pickle?)"
            )
