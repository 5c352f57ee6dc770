"""Row-wise RLE masks of the referring-segmentation task, as text (WIRE §3.1).

The mask is the 28×28-block max-pooled grid of the resized image (one cell per visual token).
Each row is written as runs ``{value}*{count}`` joined by ``,``; rows are joined by ``;`` and a
final ``;`` follows; the answer wraps it in ``<seg>…</seg>``. Building the grid from a mask image
belongs to ``data/``; this module only spells and reads the text. Not in the official mix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm.errors import InputError

__all__ = ["RleParse", "encode_rle", "parse_rle"]

SEG_OPEN, SEG_CLOSE = "<seg>", "</seg>"
_RUN_RE = re.compile(r"\s*([0-9]{1,9})\s*\*\s*([0-9]{1,7})\s*")
_MAX_CELLS = 1 << 20  # far above any band (1296 tokens); stops a hostile count from eating RAM


@dataclass(frozen=True)
class RleParse:
    """A mask read from a model answer.

    Attributes:
        mask: ``(rows, cols)`` int grid, or ``None`` when the answer could not be read.
        reason: Why not (``None`` on success).
    """

    mask: NDArray[np.int64] | None
    reason: str | None


def encode_rle(grid: ArrayLike) -> str:
    """The ``<seg>…</seg>`` answer of a 2-D grid of small non-negative ints.

    Raises:
        InputError: Not a non-empty 2-D grid of non-negative integers.

    Examples:
        >>> encode_rle([[0, 1, 1], [0, 0, 0]])
        '<seg>0*1,1*2;0*3;</seg>'
    """
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"an RLE mask needs a non-empty 2-D int grid, got {arr.dtype} {arr.shape}")
    if (arr < 0).any():
        raise InputError("an RLE mask holds non-negative values")
    rows = []
    for row in arr.tolist():
        runs, start = [], 0
        for j in range(1, len(row) + 1):
            if j == len(row) or row[j] != row[start]:
                runs.append(f"{row[start]}*{j - start}")
                start = j
        rows.append(",".join(runs))
    return SEG_OPEN + ";".join(rows) + ";" + SEG_CLOSE


def _decode(body: str) -> RleParse:
    rows_text = body.strip().split(";")
    if rows_text and not rows_text[-1].strip():
        rows_text.pop()  # the final ';'
    if not rows_text:
        return RleParse(None, "no rows")
    rows: list[list[int]] = []
    cells = 0
    for number, row_text in enumerate(rows_text):
        row: list[int] = []
        for run in row_text.split(","):
            match = _RUN_RE.fullmatch(run)
            if match is None:
                return RleParse(None, f"row {number}: bad run {run.strip()[:20]!r}")
            value, count = int(match.group(1)), int(match.group(2))
            cells += count
            if cells > _MAX_CELLS:
                return RleParse(None, "mask too large")
            row.extend([value] * count)
        rows.append(row)
    if len({len(r) for r in rows}) != 1:
        return RleParse(None, "rows have different lengths")
    return RleParse(np.asarray(rows, dtype=np.int64), None)


def parse_rle(text: str, shape: tuple[int, int] | None = None) -> RleParse:
    """Read the mask of a ``<seg>…</seg>`` answer (tags optional, closing tag may be missing).

    Args:
        text: The model output.
        shape: Expected ``(rows, cols)``, i.e. ``(H / 28, W / 28)`` of the resized image.

    Examples:
        >>> parse_rle("<seg>0*1,1*2;0*3;</seg>").mask.tolist()
        [[0, 1, 1], [0, 0, 0]]
        >>> parse_rle("<seg>0*1;0*3;</seg>").reason
        'rows have different lengths'
    """
    if not isinstance(text, str):
        raise InputError(f"parse_rle reads str, got {type(text).__name__}")
    start = text.find(SEG_OPEN)
    body = text if start < 0 else text[start + len(SEG_OPEN) :]
    end = body.find(SEG_CLOSE)
    body = body if end < 0 else body[:end]
    try:
        parsed = _decode(body)
    except Exception as err:  # last line of defence
        return RleParse(None, f"parser error: {type(err).__name__}: {err}")
    if parsed.mask is not None and shape is not None and parsed.mask.shape != tuple(shape):
        return RleParse(None, f"mask is {parsed.mask.shape}, expected {tuple(shape)}")
    return parsed
