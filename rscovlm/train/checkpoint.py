"""Resumable checkpoints of the training loop, and the final model export.

``<output_dir>/checkpoints/step_<k>/`` holds ``train_state.pt`` (model, optimizer and schedule
states, written by rank 0), ``rank<r>.pt`` (each rank's RNG states and data-stream position)
and ``state.json`` (the step; written last, so a directory without it is incomplete and
ignored). ``<output_dir>/final`` is a plain checkpoint directory that
:func:`rscovlm.model.load_checkpoint` reads.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "export_model",
    "latest_checkpoint",
    "prune_checkpoints",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) generator states of this process."""
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or ``None``."""
    found = sorted(
        (p for p in (output_dir / "checkpoints").glob("step_*") if (p / "state.json").is_file()),
        key=lambda p: int(p.name.split("_")[1]),
    )
    return found[-1] if found else None


def save_checkpoint(
    where: Path, step: int, model: Any, optimizer: Any, scheduler: Any, stream: Any, rank: int
) -> None:
    """Rank 0 writes the shared states; every rank writes its own RNG and stream position."""
    import torch

    where.mkdir(parents=True, exist_ok=True)
    torch.save({"rng": rng_state(), "stream": stream.state_dict()}, where / f"rank{rank}.pt")
    if rank == 0:
        inner = getattr(model, "module", model)
        torch.save(
            {
                "model": inner.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            where / "train_state.pt",
        )
        (where / "state.json").write_text(json.dumps({"step": step}), encoding="utf-8")


def export_model(model: Any, loaded: Any, where: Path) -> None:
    """Write a loadable checkpoint directory: weights (LoRA merged), tokenizer, processor."""
    if hasattr(model, "merge_and_unload"):  # peft: ship plain weights, adapters merged
        model = model.merge_and_unload()
    model.save_pretrained(str(where))
    loaded.tokenizer.save_pretrained(str(where))
    loaded.image_processor.save_pretrained(str(where))


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoint directories."""
    found = sorted(
        (output_dir / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1])
    )
    for old in found[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
