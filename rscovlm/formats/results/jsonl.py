"""rscovlm prediction JSONL: one box per line, what ``rscovlm eval det --pred-format jsonl``
reads::

    {"image_id": "P0001", "class": "plane", "score": 0.93, "quad": [x1, y1, ..., x4, y4]}

The writer writes ``quad``; the reader takes exactly one of ``"quad"`` (8 numbers or 4
``[x, y]`` points), ``"hbb"`` ``[x1, y1, x2, y2]`` or ``"obb"`` ``[cx, cy, w, h, angle_deg]``
(the :mod:`rscovlm.geometry` convention), in original pixels. ``"score"`` is optional; a box
without one scores 1 and says so (``scored`` false).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rscovlm import geometry
from rscovlm.files import atomic_write_text
from rscovlm.formats._coords import COORD_COUNTS
from rscovlm.formats.results._table import DetectionTable, ResultBox, json_lines

__all__ = ["iter_jsonl", "write_jsonl"]


def write_jsonl(table: DetectionTable, path: str | Path) -> Path:
    """One ``{"image_id", "class", "quad", "score"}`` line per box, in table order."""
    ids = table.image_ids
    lines = (
        json.dumps({"image_id": ids[i], "class": c, "quad": q.reshape(-1).tolist(), "score": s})
        + "\n"
        for i, c, q, s in zip(
            table.image.tolist(), table.class_names(), table.quads, table.scores.tolist(),
            strict=True,
        )
    )  # fmt: skip
    return atomic_write_text(path, "".join(lines))


def _box(record: dict[str, Any]) -> np.ndarray | str:
    kinds = [k for k in ("quad", "hbb", "obb") if k in record]
    if len(kinds) != 1:
        return "needs exactly one of quad, hbb, obb"
    kind = kinds[0]
    try:
        values = np.asarray(record[kind], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return f"{kind} is not a list of numbers"
    if len(values) != COORD_COUNTS[kind] or not np.isfinite(values).all():
        return f"{kind} needs {COORD_COUNTS[kind]} finite numbers"
    return geometry.as_quads(geometry.convert(values, kind, "quad"))[0]  # type: ignore[arg-type]


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` for each good line of one file, ``(where, reason)`` for a bad one."""
    for where, record in json_lines(path):
        if isinstance(record, str):
            yield where, record
            continue
        box = _box(record)
        name, label = record.get("image_id"), record.get("class")
        score = record.get("score", 1.0)
        if isinstance(box, str) or name is None or not isinstance(label, str):
            yield where, box if isinstance(box, str) else "needs image_id and class"
            continue
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            yield where, "score is not a finite number"
            continue
        yield where, ResultBox(str(name), label, box, float(score), "score" in record)
