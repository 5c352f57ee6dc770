"""What a training run says on screen: the start-up summary and the dropped samples.

Plain ``key: value`` lines (no colour, no boxes, no wrapping), so a job log read with ``grep``
holds the same text a terminal shows. Printed by rank 0 on stderr (stdout stays for results);
the numbers that ``log.jsonl`` also holds are repeated here on purpose: a newcomer reads the
console, not the log (issue 16: one of three real records was dropped as over-long unseen).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rscovlm.train.config import TrainConfig
from rscovlm.train.schedule import LrSchedule

__all__ = ["Say", "drop_line", "drop_summary", "startup_summary", "stderr_say"]

Say = Callable[[str], None]
"""Where a run's screen lines go (one call per line)."""


def stderr_say(line: str) -> None:
    """The default :data:`Say`: one line on stderr, flushed (a job log shows it at once)."""
    print(line, file=sys.stderr, flush=True)


def _count(n: int) -> str:
    return f"{n:,}"


def _plural(n: int, word: str) -> str:
    return f"{_count(n)} {word}{'' if n == 1 else 's'}"


def _side(pixels: int) -> str:
    return f"{math.isqrt(pixels)}²"


def startup_summary(
    cfg: TrainConfig,
    *,
    family: str,
    params: tuple[int, int],
    sources: Sequence[dict[str, Any]] | None,
    samples_per_epoch: int,
    world_size: int,
    accumulation: int,
    schedule: LrSchedule,
    band: Any,
) -> list[str]:
    """The lines printed before the first step.

    Args:
        params: ``(total, trainable)`` parameter counts of the (wrapped) model.
        sources: Per mixture entry ``entry, source, records, samples, proportion``
            (:meth:`rscovlm.data.mixture.Mixture.summary`); ``None`` for pre-encoded samples.
        samples_per_epoch: Samples one rank sees per epoch.
        schedule: The schedule this start trains on (extended on a resume).
        band: The render policy's pixel band (``min_pixels`` / ``max_pixels``), or ``None``.
    """
    total, trainable = params
    share = 100.0 * trainable / total if total else 0.0
    micro = cfg.train.per_device_batch_size
    lines = [
        f"model: {cfg.model.path} ({family}), {_count(total)} parameters, "
        f"{_count(trainable)} trainable ({share:.1f}%)"
    ]
    if sources is None:
        lines.append(f"data: {_count(samples_per_epoch)} pre-encoded samples per rank and epoch")
    else:
        epoch = sum(int(s["samples"]) for s in sources)
        lines.append(f"data: {_plural(len(sources), 'source')}, {_count(epoch)} samples per epoch")
        for s in sources:
            lines.append(
                f"  {s['entry']}: {_count(int(s['records']))} records, "
                f"{_count(int(s['samples']))} samples per epoch ({100 * s['proportion']:.1f}%)"
            )
    lines.append(
        f"batch: {micro} per device × {accumulation} accumulation × {world_size} "
        f"rank{'s' if world_size > 1 else ''} = effective batch {micro * accumulation * world_size}"
    )
    if band is not None:
        lines.append(
            f"pixel band: {_count(band.min_pixels)} … {_count(band.max_pixels)} pixels "
            f"({_side(band.min_pixels)} … {_side(band.max_pixels)})"
        )
    lines.append(
        f"max length: {_count(cfg.train.max_length)} tokens "
        f"(longer samples: {cfg.data.overlong}, never cut)"
    )
    how = "train.max_steps" if cfg.train.max_steps else f"train.epochs {cfg.train.epochs:g}"
    lines.append(f"steps: {_count(schedule.total)} ({how})")
    lines.append(
        f"lr: {cfg.optim.lr:g} {schedule.shape}, warmup {_plural(schedule.warmup_steps, 'step')}, "
        f"floor {schedule.min_ratio:g}× lr"
    )
    return lines


def drop_line(drops: Any, max_length: int | None) -> str:
    """The line said when a source first loses a sample for a reason."""
    why = {
        "over-long": f"over-long (> train.max_length {max_length} tokens)",
        "unencodable": "the encoder refused it",
        "unreadable": "unreadable",
    }.get(drops.kind, drops.kind)
    return f"dropped a sample of {drops.source}: {why} — {drops.example}"


def drop_summary(
    drops: Sequence[Any], seen: dict[str, int], max_length: int | None, world_size: int
) -> list[str]:
    """The end-of-run lines: per source and reason, how many samples were left out."""
    where = " on rank 0" if world_size > 1 else ""
    if not drops:
        return [f"samples left out{where}: none of {_count(sum(seen.values()))} drawn"]
    lines = [f"samples left out{where} (not trained on):"]
    for d in drops:
        of = f" of {_count(seen[d.source])} drawn" if d.source in seen else ""
        if d.kind == "over-long":
            why = f"over-long: longest {_count(d.longest)} tokens > train.max_length {max_length}"
        else:
            why = f"{d.kind}, e.g. {d.example}"
        lines.append(f"  {d.source}: {_count(d.count)}{of} — {why}")
    return lines
