"""Resumable checkpoints of the training loop.

``<output_dir>/checkpoints/step_<k>/`` holds the engine's states (:mod:`rscovlm.train.engines`:
``train_state.pt`` with the model, optimizer and schedule states written by rank 0 for the
single-process, DDP and FSDP engines — FSDP gathers the full, unsharded states first — or
DeepSpeed's own ``deepspeed/`` directory), ``rank<r>.pt`` (each rank's RNG states and
data-stream position) and ``state.json`` (the step; written by rank 0 once every rank has
written its files, so a directory without it is incomplete and ignored).
The final model export is :mod:`rscovlm.train.export`.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rscovlm.train.engines import Engine

__all__ = [
    "latest_checkpoint",
    "prune_checkpoints",
    "restore_checkpoint",
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


def save_checkpoint(where: Path, step: int, engine: Engine, stream: Any, rank: int) -> None:
    """Save step ``step`` into ``where`` (collective: every rank calls it).

    The engine writes the model / optimizer / schedule states, every rank its own RNG and
    stream position, and rank 0 ``state.json`` last, after a barrier.
    """
    import torch

    where.mkdir(parents=True, exist_ok=True)
    engine.save(where)
    torch.save({"rng": rng_state(), "stream": stream.state_dict()}, where / f"rank{rank}.pt")
    engine.barrier()
    if rank == 0:
        (where / "state.json").write_text(json.dumps({"step": step}), encoding="utf-8")


def restore_checkpoint(where: Path, engine: Engine, stream: Any, rank: int) -> int:
    """Load a :func:`save_checkpoint` directory (collective); returns its step."""
    import torch

    engine.load(where)
    mine = torch.load(where / f"rank{rank}.pt", weights_only=False)
    stream.load_state_dict(mine["stream"])
    set_rng_state(mine["rng"])
    return int(json.loads((where / "state.json").read_text(encoding="utf-8"))["step"])


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoint directories."""
    found = sorted(
        (output_dir / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1])
    )
    for old in found[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
