"""The C fast path of the bulk text readers: a space-separated table parsed by pyarrow.

Python-level parsing of 200,000 DOTA lines (``str.split`` + ``float``) costs about a second;
``pyarrow.csv`` parses the same bytes in C, multithreaded, with correctly rounded floats (the
same doubles as Python's ``float``), in a tenth of that. It is only a fast path: it answers
``None`` whenever the bytes are not a clean table (a blank line, a tab, a missing or extra
field, a non-number, a null, bad UTF-8, a non-finite number, or no pyarrow at all), and the
caller then runs its line-by-line reader, which names every bad line with its reason. So the
fast path never changes what is read or what is reported, only how fast a clean file goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["clean_table", "read_fast_table"]


def clean_table(data: bytes) -> bool:
    """Whether ``data`` may go to the fast path at all (the C parser rejects the rest).

    Only an empty file is screened here (pyarrow refuses it with a message of its own); any
    byte scan would cost a good part of the parse. A blank line, a leading or
    trailing space, a double space, a tab or a quote all make a row with the wrong number of
    fields, or a field that is not a number, or an id with whitespace, so the C parse refuses
    them (``ignore_empty_lines`` off, no quoting) and the slow reader names the line.

    Examples:
        >>> clean_table(b"a 1\\nb 2\\n"), clean_table(b"")
        (True, False)
    """
    return bool(data)


def read_fast_table(
    data: bytes, kinds: Sequence[str]
) -> tuple[list[NDArray[np.float64]], list[tuple[list[str], NDArray[np.int64]]]] | None:
    """``(float columns, string columns)`` of a space-separated table, or ``None``.

    Args:
        data: The file's bytes (see :func:`clean_table`; checked here too).
        kinds: One ``"f"`` (finite float) or ``"s"`` (string) per column, in column order.

    Returns:
        The float columns as arrays, and each string column dictionary-encoded as
        ``(distinct values in first-seen order, index of each row)``; ``None`` when the table
        is not clean, any float is non-finite, or pyarrow is not installed.
    """
    if not clean_table(data):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        return None
    names = [f"c{k}" for k in range(len(kinds))]
    # Strings dictionary-encoded by the parser itself: ``dictionary_encode`` afterwards would
    # import ``pyarrow.compute`` (60 ms, a third of the parse) for nothing.
    text = pa.dictionary(pa.int32(), pa.string())
    types = {n: pa.float64() if k == "f" else text for n, k in zip(names, kinds, strict=True)}
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(column_names=names),
            # a blank line must be an error (the slow path names it), never skipped
            parse_options=pcsv.ParseOptions(
                delimiter=" ", quote_char=False, escape_char=False, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=types, null_values=[], strings_can_be_null=False,
                quoted_strings_can_be_null=False, include_columns=names,
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    floats: list[NDArray[np.float64]] = []
    strings: list[tuple[list[str], NDArray[np.int64]]] = []
    for name, kind in zip(names, kinds, strict=True):
        column = table.column(name)
        if column.null_count:
            return None
        if kind == "f":
            values = column.to_numpy()
            if not np.isfinite(values).all():
                return None
            floats.append(np.ascontiguousarray(values, dtype=np.float64))
        else:
            distinct, codes = _merge_dictionaries(column.chunks)
            # str.split also splits at Unicode spaces; such a value is a line the slow
            # reader would count wrong, so it decides.
            if any(len(v.split()) != 1 for v in distinct):
                return None
            strings.append((distinct, codes))
    return floats, strings


def _merge_dictionaries(chunks: Sequence[Any]) -> tuple[list[str], NDArray[np.int64]]:
    """One ``(distinct values in first-seen order, index of each row)`` from the parser's
    dictionary chunks (each block of a multithreaded parse has a dictionary of its own, in its
    own first-seen order); only the few distinct values pass through Python."""
    seen: dict[str, int] = {}
    parts: list[NDArray[np.int64]] = []
    for chunk in chunks:
        values = chunk.dictionary.to_pylist()
        remap = np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int64)
        parts.append(remap[chunk.indices.to_numpy()] if len(values) else np.zeros(0, np.int64))
    codes = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return list(seen), codes
