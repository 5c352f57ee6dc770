"""Box kinds and their array types, :func:`as_quads`, the canonical vertex order, hbb <-> quad.

See :mod:`rscovlm.geometry` for the conventions of each kind.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

BoxKind = Literal["hbb", "obb", "quad"]
BOX_KINDS: tuple[BoxKind, ...] = ("hbb", "obb", "quad")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
ObjArray = NDArray[np.object_]

_AREA_RTOL = 1e-12  # area below this times (hbb long side)**2 counts as zero


def _corner_mean(q: FloatArray) -> FloatArray:
    """``(N, 2)`` mean of each quad's 4 vertices, summed in vertex order.

    Written out because numpy's reductions over a short middle axis cost several times the
    arithmetic (the same holds for :func:`_corner_min` / :func:`_corner_max`); the IoU of a
    dataset's 10^5 quads runs through these on every call.
    """
    return (((q[:, 0] + q[:, 1]) + q[:, 2]) + q[:, 3]) / 4.0


def _corner_min(q: FloatArray) -> FloatArray:
    """``(N, 2)`` smallest x and y of each quad (see :func:`_corner_mean`)."""
    return np.minimum(np.minimum(q[:, 0], q[:, 1]), np.minimum(q[:, 2], q[:, 3]))


def _corner_max(q: FloatArray) -> FloatArray:
    """``(N, 2)`` largest x and y of each quad (see :func:`_corner_mean`)."""
    return np.maximum(np.maximum(q[:, 0], q[:, 1]), np.maximum(q[:, 2], q[:, 3]))


def as_quads(quads: ArrayLike) -> FloatArray:
    """Return ``quads`` as a float ``(N, 4, 2)`` array (a single ``(4, 2)`` or ``(8,)`` too)."""
    arr = np.asarray(quads, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4, 2)
    return arr.reshape(-1, 4, 2)


def _rows(boxes: ArrayLike, width: int) -> FloatArray:
    """``boxes`` as a float ``(N, width)`` array; a single box of ``width`` values is N = 1."""
    arr = np.asarray(boxes, dtype=np.float64)
    return arr.reshape(0, width) if arr.size == 0 else arr.reshape(-1, width)


def canonical_quad(quads: ArrayLike, clockwise: bool = True) -> FloatArray:
    """Order each quad's vertices as the released checkpoints were trained on (WIRE §2.4).

    Vertices are sorted by ``atan2(y - cy, x - cx)`` about their mean, ascending for
    ``clockwise=True`` (clockwise on screen, y down) and descending otherwise, with a stable
    sort; the list is then rotated to start at the vertex with the smallest ``(y, x)`` (its first
    occurrence when two are equal). Dense detection uses the clockwise order; refGeo referring
    polygons were trained counter-clockwise, so each task keeps its own.

    Examples:
        >>> canonical_quad([[10, 0], [10, 5], [0, 5], [0, 0]]).tolist()
        [[[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]]
    """
    q = as_quads(quads)
    if len(q) == 0:
        return q.copy()
    centre = q.mean(axis=1, keepdims=True)
    angles = np.arctan2(q[..., 1] - centre[..., 1], q[..., 0] - centre[..., 0])
    order = np.argsort(angles if clockwise else -angles, axis=1, kind="stable")
    ordered = np.take_along_axis(q, order[..., None], axis=1)
    # First vertex with minimal (y, x): lexsort keys go last-major, and argmin takes the first.
    rank = np.lexsort((ordered[..., 0], ordered[..., 1]), axis=1)[:, 0]
    shift = (np.arange(4)[None, :] + rank[:, None]) % 4
    return np.take_along_axis(ordered, shift[..., None], axis=1)


def hbb_to_quad(hbb: ArrayLike) -> FloatArray:
    """Horizontal boxes to quads ordered top-left, top-right, bottom-right, bottom-left."""
    b = np.asarray(hbb, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = b.T
    return np.stack(
        [
            np.stack([x1, y1], -1),
            np.stack([x2, y1], -1),
            np.stack([x2, y2], -1),
            np.stack([x1, y2], -1),
        ],
        axis=1,
    )


def quad_to_hbb(quads: ArrayLike) -> FloatArray:
    """The enclosing horizontal box of each quad."""
    q = as_quads(quads)
    return np.concatenate([_corner_min(q), _corner_max(q)], axis=1)
