"""DOTA Task1 result files: one ``Task1_<class>.txt`` per class, zipped for the server.

A line is ``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` (original pixels, any vertex order). The
writer uses Python's shortest round-trip float text, so reading the files back gives the same
numbers (and the same ties).
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np

from rscovlm.files import atomic_write_text, atomic_writer
from rscovlm.formats.columns_fast import read_fast_table
from rscovlm.formats.results._table import DetectionTable, ResultBox, ResultColumns

__all__ = ["iter_task1", "parse_task1_line", "read_task1", "task1_class", "write_task1"]


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


def _floats(texts: list[str]) -> np.ndarray:
    """Many number texts at once (``float`` per text beats numpy's own string conversion).

    Raises:
        ValueError: one of them is not a number.
    """
    return np.fromiter(map(float, texts), np.float64, len(texts))


def read_task1(path: str | Path) -> ResultColumns:
    """One Task1 file in bulk: every good line a box, every bad line a reason.

    A clean file (every line 10 fields, numbers finite) is parsed in C by
    :func:`rscovlm.formats.columns_fast.read_fast_table`; otherwise the file is split once and
    all its numbers converted in one pass into one array (when
    every line has 10 fields, by one split of the whole text); only when that fails (some
    field is not a number) are the lines parsed one by one, to name each culprit.
    Image ids and the label are interned (:class:`ResultColumns`).
    The class of every box is the one in the file name; a blank line is skipped.
    """
    path = Path(path)
    label = task1_class(path)
    data = path.read_bytes()
    fast = read_fast_table(data, "sfffffffff")
    if fast is not None:  # a clean file, parsed in C: every line a box, no reason to give
        floats, ((names_, image),) = fast
        n = len(image)
        return ResultColumns(
            path.name, tuple(names_), (label,), image, np.zeros(n, np.int64),
            np.column_stack(floats[1:]).reshape(-1, 4, 2), floats[0],
            np.ones(n, dtype=bool), np.arange(1, n + 1, dtype=np.int64),
        )  # fmt: skip
    # the universal newlines of ``read_text``
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    fields = list(map(str.split, lines))
    counts = np.fromiter(map(len, fields), np.int64, len(fields))
    good = np.flatnonzero(counts == 10).tolist()
    wrong = np.flatnonzero((counts != 10) & (counts != 0)).tolist()
    bad = [(k + 1, f"expected 10 fields, got {counts[k]}") for k in wrong]
    # Every line holds 0 or 10 fields: the whole text split at once is the lines' fields in
    # order (a line break is whitespace too), ids at every 10th place, in C without a loop.
    tokens = text.split() if not bad else list(chain.from_iterable(fields[k] for k in good))
    names = tokens[0::10]
    del tokens[0::10]
    try:
        values = _floats(tokens)
    except ValueError:  # some field is not a number: find which, line by line
        kept = []
        for k in good:
            parsed = parse_task1_line(lines[k])
            if isinstance(parsed, str):
                bad.append((k + 1, parsed))
            else:
                kept.append(k)
        good = kept
        names = [fields[k][0] for k in good]
        values = _floats([v for k in good for v in fields[k][1:]])
    values = values.reshape(-1, 9)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        bad += [(good[k] + 1, "non-finite number") for k in np.flatnonzero(~finite).tolist()]
        good = [good[k] for k in np.flatnonzero(finite).tolist()]
        values = values[finite]
        names = [fields[k][0] for k in good]
    bad.sort()
    return ResultColumns.build(
        path.name,
        names,
        [label] * len(good),
        values[:, 1:],
        values[:, 0],
        np.ones(len(good), dtype=bool),
        np.asarray(good, dtype=np.int64) + 1,
        bad,
    )


def iter_task1(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` for each line of one Task1 file, ``(where, reason)`` for a bad line,
    in line order (:func:`read_task1`, row by row).

    The class of every box is the one in the file name.
    """
    yield from read_task1(path).rows()


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
