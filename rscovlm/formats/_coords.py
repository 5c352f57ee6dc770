"""Box-kind tables and coordinate checks shared by the detection and grounding codecs (private)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rscovlm.errors import InputError
from rscovlm.geometry import BoxKind, canonical_quad

#: Number of coordinates of each box kind.
COORD_COUNTS: dict[str, int] = {"hbb": 4, "obb": 5, "quad": 8}
KIND_OF_COUNT: dict[int, BoxKind] = {4: "hbb", 5: "obb", 8: "quad"}
#: The JSON key of each kind, as trained (WIRE §2.6, §3.1).
BOX_KEYS: dict[str, str] = {"hbb": "bbox_2d", "obb": "oriented bbox", "quad": "quadrant bbox"}


def int_coords(coords: Iterable[object], what: str) -> list[int]:
    """Coordinates as Python ints; anything else is a caller bug worth a clear message.

    Floats are refused even when integral: the trained text comes from truncation by
    ``CoordMap``, and a float here means that step was skipped.

    Raises:
        InputError: A value is not an int (``bool`` included).
    """
    out = []
    for value in coords:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InputError(
                f"{what}: coordinates must be ints in model space (truncate through CoordMap "
                f"first), got {value!r}"
            )
        out.append(int(value))
    return out


def check_count(kind: str, coords: list[int], what: str) -> None:
    """Raise :class:`InputError` unless ``coords`` has the count of ``kind``."""
    if kind not in COORD_COUNTS:
        raise InputError(f"{what}: unknown box kind {kind!r}; expected hbb, obb or quad")
    if len(coords) != COORD_COUNTS[kind]:
        raise InputError(f"{what}: {kind} needs {COORD_COUNTS[kind]} numbers, got {len(coords)}")


def canonical_ints(coords: list[int], clockwise: bool) -> list[int]:
    """A quad's 8 ints in the trained vertex order (``rscovlm.geometry.canonical_quad``)."""
    ordered = canonical_quad(np.asarray(coords, dtype=np.float64).reshape(4, 2), clockwise)
    return [int(v) for v in ordered.ravel()]
