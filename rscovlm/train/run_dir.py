"""Explicit run folders: a rerun resumes only the run its config describes.

``log.output_dir`` holds one run: ``config.json`` (the config of its latest start),
``config.<n>.json`` (every earlier config it ran with, ``n = 1, 2, …`` in order of use),
``checkpoints/``, ``log.jsonl``, ``final/``. When the folder already holds a checkpoint, a new
start compares its config with the saved one:

- **the same in everything that changes training** — resumed from the newest checkpoint;
- **different there** — refused with one line naming the differing fields, unless the caller
  says what it wants: ``resume`` (``--resume``: continue the checkpoint with the new config,
  the changes listed on screen; a longer ``train.max_steps`` extends the schedule by the rule
  of :mod:`rscovlm.train.schedule`) or ``overwrite`` (``--overwrite``: start at step 0; the old
  run's files are MOVED ASIDE to ``<output_dir>.old-<n>``, never deleted — delete that folder
  when it is no longer needed).

Fields that may differ without either flag (:data:`RUN_ONLY_FIELDS`) change how a run is
watched, saved and fed, not what it learns: everything under ``log`` (output folder, loggers,
logging cadence, progress bar), ``train.save_every``, ``train.keep_last``,
``train.num_workers`` (loader processes; the order is fixed by the mixture) and
``dist.backend`` (gloo / nccl reduce the same sums). Every other field counts — lr and every
optimizer knob, batch size, accumulation / global batch, max_steps / epochs, max length,
packing, precision, the mixture and its pixel band, the model and its freezing / LoRA, the seed
— and so does the world size (it changes the effective batch and the data order); the world
size a checkpoint was saved at is in its ``state.json``.

``config.json`` is never overwritten silently: whenever the new config differs from it in any
field (even a run-only one) the old file is first kept as the next ``config.<n>.json`` and
that is said on screen. A folder with a config but no checkpoint (a run that stopped before
its first save) has nothing to resume and starts at step 0 with the new config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm import safe_read
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.train.checkpoint import checkpoint_state, latest_checkpoint
from rscovlm.train.config import TrainConfig

__all__ = [
    "RUN_ARTIFACTS",
    "RUN_ONLY_FIELDS",
    "Change",
    "RunPlan",
    "config_changes",
    "prepare_run_dir",
]

RUN_ONLY_FIELDS = (
    "log.",
    "train.save_every",
    "train.keep_last",
    "train.num_workers",
    "dist.backend",
)
"""Dotted fields (or prefixes ending in ``.``) that may change between starts of one run
without ``--resume`` (the module docstring says why)."""

RUN_ARTIFACTS = ("checkpoints", "final", "log.jsonl", "tb", "config.json")
"""What ``--overwrite`` moves aside (plus every ``config.<n>.json``). The base model built for
``tiny:<family>`` and data built into the folder stay: they do not depend on the run's state."""

_MISSING = "<unset>"


@dataclass(frozen=True)
class Change:
    """One field whose value differs between the saved config and the new one."""

    key: str
    old: Any
    new: Any

    @property
    def run_only(self) -> bool:
        """Whether the field may change without ``--resume`` (:data:`RUN_ONLY_FIELDS`)."""
        return any(
            self.key.startswith(f) if f.endswith(".") else self.key == f for f in RUN_ONLY_FIELDS
        )

    def describe(self, width: int = 40) -> str:
        """``key old → new`` with long values shortened (a mixture list can be pages)."""

        def short(value: Any) -> str:
            text = json.dumps(value) if not isinstance(value, str) else value
            return text if len(text) <= width else text[: width - 1] + "…"

        return f"{self.key} {short(self.old)} → {short(self.new)}"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaves of a nested dict (lists are leaves: a list compares as a whole)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every dotted field whose value differs between two config dumps, in key order."""
    a, b = _flatten(old), _flatten(new)
    return [
        Change(key, a.get(key, _MISSING), b.get(key, _MISSING))
        for key in sorted(a.keys() | b.keys())
        if a.get(key, _MISSING) != b.get(key, _MISSING)
    ]


@dataclass
class RunPlan:
    """What a start of a run does (decided by :func:`prepare_run_dir`)."""

    checkpoint: Path | None
    """The checkpoint to resume from (``None``: start at step 0)."""
    changes: list[Change] = field(default_factory=list)
    """Fields that differ from the saved config (run-only ones included)."""
    messages: list[str] = field(default_factory=list)
    """What to say on screen about the folder (history kept, run moved aside, changes)."""
    saved_state: dict[str, Any] = field(default_factory=dict)
    """The checkpoint's ``state.json`` (step, schedule, world size), empty for a new start."""


def _history_name(output_dir: Path) -> str:
    n = 1
    while (output_dir / f"config.{n}.json").exists():
        n += 1
    return f"config.{n}.json"


def _aside_dir(output_dir: Path) -> Path:
    n = 1
    while output_dir.with_name(f"{output_dir.name}.old-{n}").exists():
        n += 1
    return output_dir.with_name(f"{output_dir.name}.old-{n}")


def _run_files(output_dir: Path) -> list[Path]:
    found = [output_dir / name for name in RUN_ARTIFACTS if (output_dir / name).exists()]
    return found + sorted(output_dir.glob("config.*.json"))


def _refusal(output_dir: Path, keys: list[str]) -> InputError:
    return InputError(
        f"{output_dir} holds a run trained with another config ({', '.join(keys)} differ): "
        "pass --resume to continue it with the new config, or --overwrite to start afresh "
        f"(the old run is moved to {_aside_dir(output_dir).name})"
    )


def prepare_run_dir(
    cfg: TrainConfig,
    output_dir: Path,
    *,
    world_size: int = 1,
    rank: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    barrier: Callable[[], None] = lambda: None,
) -> RunPlan:
    """Decide whether this start resumes, refuses or starts afresh, and set the folder up.

    Collective: every rank reads the folder and reaches the same decision; then rank 0 alone
    moves files and writes the config, between two ``barrier`` calls.

    Raises:
        InputError: The folder's run was trained with a config that differs in a training
            field (or at another world size) and neither ``resume`` nor ``overwrite`` is
            given; both are given; or the folder's ``config.json`` is unreadable.
    """
    if resume and overwrite:
        raise InputError("give --resume or --overwrite, not both")
    new = cfg.model_dump(mode="json")
    saved_path = output_dir / "config.json"
    saved = safe_read.read_json(saved_path, "run config") if saved_path.is_file() else None
    if saved is not None and not isinstance(saved, dict):
        raise InputError(f"{saved_path}: expected a JSON object (the config of the run)")
    latest = None if overwrite else latest_checkpoint(output_dir)
    state = checkpoint_state(latest) if latest is not None else {}
    plan = RunPlan(latest, config_changes(saved, new) if saved is not None else [], [], state)
    if latest is not None:
        keys = [c.key for c in plan.changes if not c.run_only]
        saved_world = state.get("world_size")
        if isinstance(saved_world, int) and saved_world != world_size:
            keys.append(f"world size ({saved_world} → {world_size})")
        if saved is None:
            keys.append("config.json (missing)")
        if keys and not resume:
            raise _refusal(output_dir, keys)
        if keys:
            shown = [c.describe() for c in plan.changes if not c.run_only]
            shown += [k for k in keys if k.startswith(("world size", "config.json"))]
            plan.messages.append(f"--resume: continuing with a changed config: {'; '.join(shown)}")
    barrier()  # every rank has read the folder before rank 0 changes it
    aside = _aside_dir(output_dir)
    moved = _run_files(output_dir) if overwrite else []
    if moved:
        plan.messages.append(
            f"--overwrite: starting at step 0; the previous run "
            f"({', '.join(p.name for p in moved)}) was moved to {aside} "
            "(delete it when no longer needed)"
        )
        plan.changes, saved = [], None
    elif overwrite:
        plan.messages.append(f"--overwrite: {output_dir} held no run; starting at step 0")
    elif latest is None and resume:
        plan.messages.append(f"--resume: {output_dir} holds no checkpoint; starting at step 0")
    elif latest is None and saved is not None and plan.changes:
        plan.messages.append(
            f"{output_dir} holds no checkpoint to resume: starting at step 0 with the new config"
        )
    history = _history_name(output_dir) if saved is not None and plan.changes else None
    if history is not None:
        plan.messages.append(f"the previous config.json is kept as {output_dir / history}")
    if rank == 0:
        if moved:
            aside.mkdir(parents=True)
            for path in moved:
                os.replace(path, aside / path.name)
        if history is not None:
            os.replace(saved_path, output_dir / history)
        if saved is None or plan.changes:
            atomic_write_text(saved_path, json.dumps(new, indent=2) + "\n")
    barrier()
    return plan
