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
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rscovlm import geometry, safe_read
from rscovlm.files import atomic_write_text
from rscovlm.formats._coords import COORD_COUNTS
from rscovlm.formats.results._table import DetectionTable, ResultBox, ResultColumns

__all__ = ["iter_jsonl", "read_jsonl", "write_jsonl"]


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


def _records(path: Path) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """``(line number, parsed value)`` of every non-blank line, and the lines that are not JSON.

    One ``json.loads`` over the whole file when the file is plain UTF-8 within the limits of
    :mod:`rscovlm.safe_read` (no nesting past its depth, no number past its digits: the usual
    case), else line by line through :func:`rscovlm.safe_read.iter_jsonl_lines`, which names
    each culprit and never lets one line cost the rest.
    """
    limits = safe_read.DEFAULT_LIMITS
    try:
        text: str | None = safe_read.read_bytes(path, "predictions").decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if (
        text is not None
        and not safe_read.json_depth_exceeds(text, limits.max_depth)
        and re.search(rf"\d{{{limits.max_digits + 1}}}", text) is None
    ):
        numbered = [(k + 1, line) for k, line in enumerate(text.split("\n")) if line.strip()]
        try:
            values = json.loads("[" + ",".join(line for _, line in numbered) + "]")
            if len(values) == len(numbered):
                return [(k, v) for (k, _), v in zip(numbered, values, strict=True)], []
        except ValueError:
            pass
    records, bad = [], []
    for lineno, value, reason in safe_read.iter_jsonl_lines(path, "predictions"):
        if reason is not None:
            bad.append((lineno, reason))
        else:
            records.append((lineno, value))
    return records, bad


def _bulk_quads(kind: str, values: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(quads, ok)`` for the boxes of one kind at once; ``None`` if they are not one array."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    except (TypeError, ValueError):
        return None
    if arr.shape[1] != COORD_COUNTS[kind]:
        return None
    ok = np.isfinite(arr).all(axis=1)
    quads = np.zeros((len(values), 4, 2))
    if ok.any():
        quads[ok] = geometry.as_quads(geometry.convert(arr[ok], kind, "quad"))  # type: ignore[arg-type]
    return quads, ok


def read_jsonl(path: str | Path) -> ResultColumns:
    """One prediction JSONL in bulk: the lines parsed at once, the boxes of each kind converted
    in one vectorised call; every bad line keeps its reason."""
    path = Path(path)
    records, bad = _records(path)
    pos: list[int] = []
    names: list[str] = []
    labels: list[str] = []
    scores: list[float] = []
    scored: list[bool] = []
    by_kind: dict[str, list[int]] = {"quad": [], "hbb": [], "obb": []}
    raw: list[Any] = []
    for k, record in records:
        if not isinstance(record, dict):
            bad.append((k, "not a JSON object"))
            continue
        kinds = [kind for kind in ("quad", "hbb", "obb") if kind in record]
        name, label = record.get("image_id"), record.get("class")
        score = record.get("score", 1.0)
        if len(kinds) != 1:
            bad.append((k, "needs exactly one of quad, hbb, obb"))
        elif name is None or not isinstance(label, str):
            bad.append((k, "needs image_id and class"))
        elif (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            bad.append((k, "score is not a finite number"))
        else:
            by_kind[kinds[0]].append(len(pos))
            raw.append(record[kinds[0]])
            pos.append(k)
            names.append(str(name))
            labels.append(label)
            scores.append(float(score))
            scored.append("score" in record)
    quads = np.zeros((len(pos), 4, 2))
    keep = np.ones(len(pos), dtype=bool)
    for kind, rows in by_kind.items():
        if not rows:
            continue
        bulk = _bulk_quads(kind, [raw[i] for i in rows])
        if bulk is None:  # mixed shapes or non-numbers: box by box, each with its reason
            for i in rows:
                box = _box({kind: raw[i]})
                if isinstance(box, str):
                    keep[i] = False
                    bad.append((pos[i], box))
                else:
                    quads[i] = box
            continue
        q, ok = bulk
        idx = np.asarray(rows)
        quads[idx] = q
        keep[idx[~ok]] = False
        bad += [(pos[i], f"{kind} needs {COORD_COUNTS[kind]} finite numbers") for i in idx[~ok]]
    sel = np.flatnonzero(keep).tolist()
    return ResultColumns.build(
        path.name,
        [names[i] for i in sel],
        [labels[i] for i in sel],
        quads[sel],
        [scores[i] for i in sel],
        [scored[i] for i in sel],
        [pos[i] for i in sel],
        sorted(bad),
    )


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` for each good line of one file, ``(where, reason)`` for a bad one, in
    line order (:func:`read_jsonl`, row by row)."""
    yield from read_jsonl(path).rows()
