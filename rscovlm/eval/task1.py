"""DOTA Task1 result files: one ``Task1_<class>.txt`` per class, zipped for the server.

A line is ``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` (original pixels, any vertex order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rscovlm.data.sources.dota import write_task1 as dota_write_task1
from rscovlm.eval.metrics.boxes import DetBoxes

__all__ = ["parse_task1_line", "task1_class", "write_task1"]


def task1_class(path: str | Path) -> str:
    """The class spelled in a Task1 file name (``Task1_small-vehicle.txt`` -> ``small-vehicle``)."""
    return Path(path).stem.removeprefix("Task1_")


def parse_task1_line(line: str) -> tuple[str, float, list[float]] | str | None:
    """``(image_id, score, 8 coordinates)``, a reason string if unreadable, ``None`` if blank.

    Examples:
        >>> parse_task1_line("P0001 0.9 0 0 10 0 10 10 0 10")
        ('P0001', 0.9, [0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0])
        >>> parse_task1_line("P0001 0.9 0 0")
        'expected 10 fields, got 4'
    """
    parts = line.split()
    if not parts:
        return None
    if len(parts) != 10:
        return f"expected 10 fields, got {len(parts)}"
    try:
        values = [float(v) for v in parts[1:]]
    except ValueError:
        return "score or coordinate is not a number"
    if not all(math.isfinite(v) for v in values):
        return "non-finite number"
    return parts[0], values[0], values[1:]


def write_task1(
    out_dir: str | Path,
    images: Sequence[str],
    classes: Sequence[str],
    boxes: DetBoxes,
    *,
    zip_path: str | Path | None = None,
) -> list[Path]:
    """Write one ``Task1_<class>.txt`` per class (every class, empty ones too) and a zip.

    The writer lives with the DOTA reader (:func:`rscovlm.data.sources.dota.write_task1`) so
    the model floor can write Task1 files too; this adapter passes the columns of ``boxes``.
    Lines are ``image score x1 y1 ... x4 y4`` with Python's shortest round-trip float text, so
    reading the files back gives the same numbers (and the same ties). The zip holds the files
    at its root, as the DOTA evaluation server expects.
    """
    return dota_write_task1(
        out_dir,
        images,
        classes,
        boxes.image,
        boxes.label,
        boxes.quads,
        boxes.scores,
        zip_path=zip_path,
    )
