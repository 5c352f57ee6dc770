"""Resumable checkpoints of the training loop.

``<output_dir>/checkpoints/step_<k>/`` holds the engine's states (:mod:`rscovlm.train.engines`:
``train_state.pt`` with the model, optimizer and schedule states written by rank 0 for the
single-process, DDP and FSDP engines — FSDP gathers the full, unsharded states first — or
DeepSpeed's own ``deepspeed/`` directory), ``rank<r>.pt`` (each rank's RNG states and
data-stream position) and ``state.json`` (the step; written by rank 0 once every rank has
written its files, so a directory without it is incomplete and ignored).

Every file holds tensors and plain data only and is read back with ``weights_only=True``
(:mod:`rscovlm.train._safe_load`): a pickle planted in a run folder is refused, never run.
The final model export is :mod:`rscovlm.train.export`.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rscovlm import safe_read
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_json, atomic_writer
from rscovlm.train._safe_load import load_plain

if TYPE_CHECKING:
    from rscovlm.train.engines import Engine

__all__ = [
    "checkpoint_state",
    "is_complete",
    "latest_checkpoint",
    "prune_checkpoints",
    "restore_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) generator states of this process, as plain data.

    Lists, numbers and tensors only, so the file they are saved in loads with
    ``weights_only=True`` (:func:`~rscovlm.train._safe_load.load_plain`): nothing in a run
    folder is ever unpickled as an arbitrary object.
    """
    import torch

    version, internal, gauss = random.getstate()
    key, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [str(key), [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`.

    Raises:
        InputError: The state is not of the form :func:`rng_state` writes.
    """
    import torch

    try:
        version, internal, gauss = state["python"]
        key, keys, pos, has_gauss, cached = state["numpy"]
        random.setstate((int(version), tuple(int(k) for k in internal), gauss))
        np.random.set_state((str(key), np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"checkpoint RNG state is malformed ({type(exc).__name__})") from None
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step_of(path: Path) -> int | None:
    """The step of a ``step_<k>`` folder name, ``None`` for any other name."""
    prefix, _, number = path.name.partition("_")
    return int(number) if prefix == "step" and number.isdigit() else None


def is_complete(path: Path) -> bool:
    """Whether a checkpoint folder was finished: its ``state.json`` (written last, after every
    rank's files) names the folder's own step."""
    step = _step_of(path)
    if step is None or not path.is_dir():
        return False
    try:
        state = safe_read.read_json(path / "state.json", "checkpoint state")
    except InputError:
        return False
    return isinstance(state, dict) and state.get("step") == step


def _checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``step_<k>`` folder of a run, by step."""
    found = []
    for path in (output_dir / "checkpoints").glob("step_*"):
        step = _step_of(path)
        if step is not None and path.is_dir() and not path.is_symlink():
            found.append((step, path))
    return sorted(found)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or ``None``.

    An incomplete one (a kill during the save) is never chosen, even when it is newer.
    """
    complete = [path for _, path in _checkpoints(output_dir) if is_complete(path)]
    return complete[-1] if complete else None


def save_checkpoint(
    where: Path,
    step: int,
    engine: Engine,
    stream: Any,
    rank: int,
    meta: dict[str, Any] | None = None,
) -> None:
    """Save step ``step`` into ``where`` (collective: every rank calls it).

    ``meta`` (plain JSON: the run's schedule and world size) goes into ``state.json`` next to
    the step, so a resume knows the plan the run was on (:func:`checkpoint_state`).

    The engine writes the model / optimizer / schedule states, every rank its own RNG and
    stream position, and rank 0 ``state.json`` last, after a barrier. A folder left by an
    earlier, killed save of the same step is first marked incomplete, so a kill during this
    save can never leave an old ``state.json`` vouching for new, half-written files.
    """
    import torch

    where.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        (where / "state.json").unlink(missing_ok=True)
    engine.barrier()
    engine.save(where)
    with atomic_writer(where / f"rank{rank}.pt") as tmp:
        torch.save({"rng": rng_state(), "stream": stream.state_dict()}, tmp)
    engine.barrier()
    if rank == 0:
        atomic_write_json(where / "state.json", {**(meta or {}), "step": step})


def checkpoint_state(where: Path) -> dict[str, Any]:
    """``state.json`` of a complete checkpoint: ``step`` and the ``meta`` it was saved with.

    Raises:
        InputError: The file is unreadable or not a JSON object.
    """
    state = safe_read.read_json(where / "state.json", "checkpoint state")
    if not isinstance(state, dict):
        raise InputError(f"checkpoint state {where / 'state.json'} is not a JSON object")
    return state


def restore_checkpoint(where: Path, engine: Engine, stream: Any, rank: int) -> int:
    """Load a :func:`save_checkpoint` directory (collective); returns its step.

    Raises:
        InputError: A file of the checkpoint is damaged or holds anything but tensors and plain
            data (nothing of it is run).
    """
    step = safe_read.read_json(where / "state.json", "checkpoint state")["step"]
    mine = load_plain(where / f"rank{rank}.pt")
    engine.load(where)
    if not isinstance(mine, dict) or "stream" not in mine or "rng" not in mine:
        raise InputError(f"checkpoint file {where / f'rank{rank}.pt'} is not a rank state")
    stream.load_state_dict(mine["stream"])
    set_rng_state(mine["rng"])
    return int(step)


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    """Keep the ``keep`` newest COMPLETE checkpoints; delete older ones and incomplete leftovers.

    Only complete checkpoints count towards ``keep``, so a folder left half-written by a kill
    can never push out the one complete checkpoint a resume needs. Incomplete folders older
    than the newest complete one are leftovers of killed saves and go too; a newer incomplete
    one is left alone (a later save of that step replaces it).
    """
    found = _checkpoints(output_dir)
    complete = [(step, path) for step, path in found if is_complete(path)]
    if not complete:
        return
    kept = {path for _, path in complete[-keep:]}
    newest = complete[-1][0]
    for step, path in found:
        if path in kept:
            continue
        if step < newest:
            shutil.rmtree(path, ignore_errors=True)
