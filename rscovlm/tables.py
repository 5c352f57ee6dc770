"""The one table printer of every floor: plain text that never hides a number.

Rich's tables crop a cell that does not fit (``26…``, ``0.83…``) as soon as stdout is 80
columns wide or not a terminal at all; a metric table that hides a digit is worse than no
table. :func:`format_table` therefore never cuts a cell. It lays a table out in the first of
three ways that fits ``width``:

1. one line per row, every column at its natural width;
2. the same, with the text (left-aligned) columns wrapped at spaces; numbers and other
   right-aligned cells are never wrapped, and no word is ever broken;
3. a long format: one block per row, the first cell on its own line, then one
   ``column  value`` line per other column.

Only a single word longer than ``width`` makes a line longer than ``width``; it is printed
whole.

Examples:
    >>> print(format_table("AP", ["class", "AP"], [["plane", 0.9123], ["ship", 0.5]]))
    AP
    class      AP
    -----  ------
    plane  0.9123
    ship      0.5
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from typing import Literal

__all__ = ["SECTION", "Align", "Cell", "format_table"]

Cell = str | int | float | None
Align = Literal["left", "right"]

#: Put this in ``rows`` for a rule line (e.g. before a total row).
SECTION: None = None

_GAP = "  "


def _text(value: Cell) -> str:
    """A cell as printed: ``None`` is ``-``, numbers are ``str`` (callers format digits)."""
    return "-" if value is None else str(value)


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width``, broken only at spaces (words stay whole)."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def _default_align(column: int, cells: list[str]) -> Align:
    def numeric(s: str) -> bool:
        try:
            float(s.replace(",", "").rstrip("%"))
        except ValueError:
            return s == "-"
        return True

    return "right" if column > 0 and cells and all(numeric(s) for s in cells) else "left"


def _fit(natural: list[int], minimum: list[int], width: int) -> list[int] | None:
    """Column widths that fit ``width`` (minimums first, the rest to the widest deficits)."""
    room = width - len(_GAP) * (len(natural) - 1)
    if sum(natural) <= room:
        return natural
    if sum(minimum) > room:
        return None
    widths = list(minimum)
    spare = room - sum(widths)
    while spare > 0:
        deficit = [n - w for n, w in zip(natural, widths, strict=True)]
        k = max(range(len(deficit)), key=deficit.__getitem__)
        if deficit[k] <= 0:
            break
        widths[k] += 1
        spare -= 1
    return widths


def _grid(
    header: list[str], body: list[list[str] | None], align: list[Align], widths: list[int]
) -> list[str]:
    def lines_of(cells: list[str]) -> list[str]:
        wrapped = [_wrap(c, w) for c, w in zip(cells, widths, strict=True)]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for col, w in enumerate(widths):
                piece = wrapped[col][k] if k < len(wrapped[col]) else ""
                parts.append(piece.rjust(w) if align[col] == "right" else piece.ljust(w))
            out.append(_GAP.join(parts).rstrip())
        return out

    rule = _GAP.join("-" * w for w in widths)
    out = [*lines_of(header), rule]
    for row in body:
        out.extend([rule] if row is None else lines_of(row))
    return out


def _long(header: list[str], body: list[list[str] | None], width: int) -> list[str]:
    key = max((len(h) for h in header[1:]), default=0)
    indent = 2 + key + len(_GAP)
    out = []
    for row in body:
        if row is None:
            continue
        out.append("-" * min(width, 40))
        out.extend(_wrap(f"{header[0]}: {row[0]}", width))
        for name, value in zip(header[1:], row[1:], strict=True):
            if not value:
                continue
            lines = _wrap(value, max(width - indent, 1))
            out.append(f"  {name.ljust(key)}{_GAP}{lines[0]}".rstrip())
            out.extend(" " * indent + line for line in lines[1:])
    return out


def format_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell] | None],
    *,
    align: Sequence[Align] | None = None,
    width: int | None = None,
) -> str:
    """The table as text (no trailing newline), every cell whole (see the module header).

    Args:
        title: A line above the table (wrapped at spaces), or ``None``.
        columns: The column names.
        rows: One sequence of cells per row (``str``, numbers as the caller formatted them,
            ``None`` printed as ``-``), or :data:`SECTION` for a rule line.
        align: ``"left"`` or ``"right"`` per column; default: right for a column (after the
            first) whose cells are all numbers or ``-``, left otherwise.
        width: The line width to fit; default: the terminal's (``COLUMNS``, else 80).

    Raises:
        ValueError: a row or ``align`` does not have one entry per column.
    """
    n = len(columns)
    header = [str(c) for c in columns]
    body = [None if r is None else [_text(c) for c in r] for r in rows]
    for row in body:
        if row is not None and len(row) != n:
            raise ValueError(f"a row has {len(row)} cells for {n} columns")
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    width = max(width, 20)
    cells_of = [[r[k] for r in body if r is not None] for k in range(n)]
    aligns: list[Align] = (
        list(align) if align is not None else [_default_align(k, cells_of[k]) for k in range(n)]
    )
    if len(aligns) != n:
        raise ValueError(f"{len(aligns)} alignments for {n} columns")
    natural = [max([len(header[k]), *(len(c) for c in cells_of[k])]) for k in range(n)]
    minimum = [
        max(
            [
                _longest_word(header[k]),
                *(_longest_word(c) if aligns[k] == "left" else len(c) for c in cells_of[k]),
            ]
        )
        for k in range(n)
    ]
    lines = _wrap(title, width) if title else []
    widths = _fit(natural, minimum, width)
    if widths is None:
        lines.extend(_long(header, body, width))
    else:
        lines.extend(_grid(header, body, aligns, widths))
    return "\n".join(lines)
