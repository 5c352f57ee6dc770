"""DOTA Task1 result files: one ``Task1_<class>.txt`` per class, zipped for the server.

A line is ``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` (original pixels, any vertex order). The
writer uses Python's shortest round-trip float text, so reading the files back gives the same
numbers (and the same ties).
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rscovlm.files import atomic_write_text, atomic_writer
from rscovlm.formats.results._table import DetectionTable, ResultBox

__all__ = ["iter_task1", "parse_task1_line", "task1_class", "write_task1"]


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


def iter_task1(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` for each line of one Task1 file, ``(where, reason)`` for a bad line.

    The class of every box is the one in the file name.
    """
    path = Path(path)
    label = task1_class(path)
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            parsed = parse_task1_line(raw)
            if parsed is None:
                continue
            where = f"{path.name}:{lineno}"
            if isinstance(parsed, str):
                yield where, parsed
            else:
                quad = np.asarray(parsed[2], dtype=np.float64).reshape(4, 2)
                yield where, ResultBox(parsed[0], label, quad, parsed[1])


def write_task1(
    table: DetectionTable, out_dir: str | Path, *, zip_path: str | Path | None = None
) -> list[Path]:
    """Write one ``Task1_<class>.txt`` per class (every class, empty ones too) and a zip.

    Within a file boxes go by image, then descending score. Every file is written to a
    temporary name and renamed. The zip holds the files at its root, as the DOTA evaluation
    server expects.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = table.image_ids
    coords = table.quads.reshape(-1, 8)
    order = np.lexsort((-table.scores, table.image))
    paths = []
    for c, name in enumerate(table.classes):
        rows = order[table.label[order] == c]
        lines = (
            f"{ids[i]} {s!r} " + " ".join(repr(v) for v in q) + "\n"
            for i, s, q in zip(
                table.image[rows].tolist(),
                table.scores[rows].tolist(),
                coords[rows].tolist(),
                strict=True,
            )
        )
        paths.append(atomic_write_text(out / f"Task1_{name}.txt", "".join(lines)))
    if zip_path is not None:
        with (
            atomic_writer(zip_path) as tmp_zip,
            zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            for p in paths:
                archive.write(p, arcname=p.name)
    return paths
