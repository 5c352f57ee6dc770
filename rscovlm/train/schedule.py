"""The learning-rate schedule: linear warmup, then cosine / linear / constant decay.

A schedule is fixed by four numbers — the total optimizer steps, the warmup steps, the shape
and the floor (``min_lr_ratio``) — and :class:`LrSchedule` computes the multiplier of every
parameter group's base lr at a step from them alone, so a resumed run recomputes it instead of
trusting whatever lr the optimizer state last held.

The resume rule (``rscovlm train --resume`` with a longer ``train.max_steps``):

- the **warmup length is fixed when the run starts** (``ceil(warmup_ratio · total)`` of its
  first config) and saved in every checkpoint; a resume never repeats or re-stretches it, even
  when the new total would give a longer one;
- the **decay is computed against the new total from the current step on**: step ``s`` of the
  resumed run has ``factor(s) = floor + (1 - floor) · shape((s - W) / (T_new - W))`` with the
  run's warmup ``W`` — the curve a run planned with ``T_new`` from the start would follow after
  its warmup. A run that had decayed to its floor at its old end comes back up to that curve
  instead of training on at the old schedule's end value.

Steps are 0-based: step ``s`` is the ``(s + 1)``-th optimizer update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["LrSchedule", "lr_factor"]


def lr_factor(
    step: int,
    total: int,
    warmup_ratio: float,
    schedule: str,
    min_ratio: float,
    *,
    warmup_steps: int | None = None,
) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based) of ``total``.

    Linear warmup over ``warmup_steps`` (default ``ceil(warmup_ratio · total)``) steps, then
    cosine, linear or constant decay to ``min_ratio`` at ``total``.
    """
    warmup = math.ceil(warmup_ratio * total) if warmup_steps is None else warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return min_ratio + (1.0 - min_ratio) * shape


@dataclass(frozen=True)
class LrSchedule:
    """One run's schedule (the module docstring has the resume rule)."""

    total: int
    warmup_steps: int
    shape: str = "cosine"
    min_ratio: float = 0.0

    @classmethod
    def planned(cls, total: int, optim: Any) -> LrSchedule:
        """The schedule a run of ``total`` steps starts with (``optim``: the config's section)."""
        warmup = math.ceil(optim.warmup_ratio * total)
        return cls(total, warmup, optim.schedule, optim.min_lr_ratio)

    def extended(self, total: int, optim: Any) -> LrSchedule:
        """This run's schedule continued to ``total`` steps: the warmup kept, the shape and
        floor of the (possibly changed) config ``optim``."""
        return LrSchedule(total, self.warmup_steps, optim.schedule, optim.min_lr_ratio)

    def factor(self, step: int) -> float:
        """Multiplier of the base lr at ``step`` (0-based)."""
        return lr_factor(
            step, self.total, 0.0, self.shape, self.min_ratio, warmup_steps=self.warmup_steps
        )

    def as_dict(self) -> dict[str, Any]:
        """What a checkpoint stores (``state.json``)."""
        return {
            "total": self.total,
            "warmup_steps": self.warmup_steps,
            "shape": self.shape,
            "min_ratio": self.min_ratio,
        }
