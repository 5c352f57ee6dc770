"""Oriented boxes: conversions to and from obb, the minimum-area rectangle, :func:`convert`.

The angle rules are those of :mod:`rscovlm.geometry` (WIRE §2.5).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rscovlm.geometry._kinds import (
    _AREA_RTOL,
    BOX_KINDS,
    BoxKind,
    FloatArray,
    _rows,
    as_quads,
    hbb_to_quad,
    quad_to_hbb,
)

_SNAP_DEG = 1e-9  # angles this close to +90 (or 0 for squares) are reported as -90
_SQUARE_RTOL = 1e-9  # relative side difference below which an obb counts as a square
_CHUNK = 65536  # rows per block in the min-area rectangle search, to bound memory


def _obb_from_sides(
    centre: FloatArray, side_u: FloatArray, side_v: FloatArray, angle_u: FloatArray
) -> FloatArray:
    """Build normalised obbs from a rectangle with side ``side_u`` along ``angle_u`` degrees.

    Applies the module's angle rules: long side first, angle wrapped to ``[-90, 90)``, squares
    in ``[-90, 0)``, near-wrap angles snapped to -90.
    """
    with np.errstate(invalid="ignore"):
        swap = side_u < side_v
        w = np.where(swap, side_v, side_u)
        h = np.where(swap, side_u, side_v)
        a = np.mod(angle_u + np.where(swap, 90.0, 0.0) + 90.0, 180.0) - 90.0
        square = np.abs(w - h) <= _SQUARE_RTOL * w
        a = np.where(square, np.mod(a, 90.0) - 90.0, a)
        a = np.where((a >= 90.0 - _SNAP_DEG) | (square & (a > -_SNAP_DEG)), -90.0, a)
    return np.column_stack([centre, w, h, a])


def _nan_rows(out: FloatArray, src: FloatArray) -> FloatArray:
    """Set to NaN every row of ``out`` whose source row has a non-finite value."""
    out[~np.isfinite(src).all(axis=tuple(range(1, src.ndim)))] = np.nan
    return out


def _cos_sin(degrees: FloatArray) -> tuple[FloatArray, FloatArray]:
    """cos and sin of angles in degrees, exact (0, ±1) at multiples of 90 so hbbs stay exact."""
    with np.errstate(invalid="ignore"):
        rad = np.deg2rad(degrees)
        c, s = np.cos(rad), np.sin(rad)
        exact = np.mod(degrees, 90.0) == 0
    return np.where(exact, np.round(c), c), np.where(exact, np.round(s), s)


def hbb_to_obb(hbb: ArrayLike) -> FloatArray:
    """Horizontal boxes to obbs: angle 0 when wider than tall, -90 when taller or square.

    Examples:
        >>> hbb_to_obb([[0, 0, 10, 4], [0, 0, 4, 10]]).tolist()
        [[5.0, 2.0, 10.0, 4.0, 0.0], [2.0, 5.0, 10.0, 4.0, -90.0]]
    """
    b = _rows(hbb, 4)
    centre = (b[:, :2] + b[:, 2:]) / 2.0
    size = np.abs(b[:, 2:] - b[:, :2])
    return _nan_rows(_obb_from_sides(centre, size[:, 0], size[:, 1], np.zeros(len(b))), b)


def obb_to_quad(obb: ArrayLike) -> FloatArray:
    """Oriented boxes to their 4 corners, clockwise on screen (y down).

    The first corner is the box's own top-left (``(-w/2, -h/2)`` before rotation), so an
    ``angle = 0`` box gives top-left, top-right, bottom-right, bottom-left; pass the result
    through :func:`canonical_quad` for the wire order.

    Examples:
        >>> obb_to_quad([[5, 2, 10, 4, 0]]).tolist()
        [[[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 4.0]]]
    """
    o = _rows(obb, 5)
    c, s = _cos_sin(o[:, 4])
    hw, hh = o[:, 2:3] / 2.0, o[:, 3:4] / 2.0
    lx = np.hstack([-hw, hw, hw, -hw])
    ly = np.hstack([-hh, -hh, hh, hh])
    x = o[:, 0:1] + lx * c[:, None] - ly * s[:, None]
    y = o[:, 1:2] + lx * s[:, None] + ly * c[:, None]
    return _nan_rows(np.stack([x, y], axis=-1), o)


def obb_to_hbb(obb: ArrayLike) -> FloatArray:
    """The enclosing horizontal box of each obb (analytic, no corners built)."""
    o = _rows(obb, 5)
    c, s = np.abs(np.array(_cos_sin(o[:, 4])))
    ex = (c * o[:, 2] + s * o[:, 3]) / 2.0
    ey = (s * o[:, 2] + c * o[:, 3]) / 2.0
    return _nan_rows(np.column_stack([o[:, 0] - ex, o[:, 1] - ey, o[:, 0] + ex, o[:, 1] + ey]), o)


def _min_area_rect(pts: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Minimum-area enclosing rectangle of each row of ``pts`` ``(N, K, 2)`` (finite values).

    The optimal rectangle has a side along a convex-hull edge, and every hull edge joins two
    of the points, so trying the direction of every point pair (K(K-1)/2 of them, any of which
    gives an enclosing rectangle) finds it without building hulls or looping over boxes.

    Integer annotations often have two different rectangles of exactly the same minimal area
    (5 % of real DOTA quads). The choice must not depend on vertex order, so among rectangles
    whose area is minimal to a relative 1e-9 we take the one whose corners lie closest to the
    points (sum of squared distances from each point to its nearest corner: the best reading of
    a near-rectangle annotation), then the smallest normalised obb angle.

    Returns:
        ``centre (N, 2)``, unit side direction ``u (N, 2)``, side along ``u`` and side across.
    """
    i, j = np.triu_indices(pts.shape[1], 1)
    out = np.zeros((len(pts), 6))
    for lo in range(0, len(pts), _CHUNK):
        p = pts[lo : lo + _CHUNK]
        mean = p.mean(axis=1, keepdims=True)
        rel = p - mean  # work relative to the mean: less cancellation far from the origin
        d = rel[:, j] - rel[:, i]
        norm = np.hypot(d[..., 0], d[..., 1])
        ok = norm > 0
        u = np.where(ok[..., None], d / np.where(ok, norm, 1.0)[..., None], [1.0, 0.0])
        v = np.stack([-u[..., 1], u[..., 0]], axis=-1)
        pu = np.einsum("npd,nkd->npk", u, rel)
        pv = np.einsum("npd,nkd->npk", v, rel)
        su, sv = pu.max(-1) - pu.min(-1), pv.max(-1) - pv.min(-1)
        centre = u * ((pu.max(-1) + pu.min(-1)) / 2)[..., None]
        centre += v * ((pv.max(-1) + pv.min(-1)) / 2)[..., None]
        span2 = ((p.max(axis=1) - p.min(axis=1)).max(axis=1) ** 2)[:, None]
        area = np.where(ok, su * sv, np.inf)
        tied = area <= area.min(axis=1, keepdims=True) * (1 + 1e-9)
        corners = _rect_corners(centre, u, su, sv)  # (n, P, 4, 2)
        d2 = ((corners[:, :, :, None] - rel[:, None, None]) ** 2).sum(-1).min(axis=2).sum(-1)
        d2 = np.where(tied, d2, np.inf)
        tied &= d2 <= d2.min(axis=1, keepdims=True) * (1 + 1e-9) + _AREA_RTOL * span2
        key = np.degrees(np.arctan2(u[..., 1], u[..., 0])) + np.where(su < sv, 90.0, 0.0)
        best = np.argmin(np.where(tied, np.mod(key, 180.0), np.inf), axis=1)[:, None]
        pick = [np.take_along_axis(x, best, axis=1)[:, 0] for x in (su, sv)]
        out[lo : lo + _CHUNK, :2] = (
            np.take_along_axis(centre, best[..., None], 1)[:, 0] + mean[:, 0]
        )
        out[lo : lo + _CHUNK, 2:4] = np.take_along_axis(u, best[..., None], axis=1)[:, 0]
        out[lo : lo + _CHUNK, 4], out[lo : lo + _CHUNK, 5] = pick
    return out[:, :2], out[:, 2:4], out[:, 4], out[:, 5]


def _rect_corners(centre: FloatArray, u: FloatArray, su: FloatArray, sv: FloatArray) -> FloatArray:
    """Corners ``(..., 4, 2)`` of rectangles from centre, unit side direction and side lengths.

    Clockwise on screen (y down), starting at the ``(-su/2, -sv/2)`` corner.
    """
    v = np.stack([-u[..., 1], u[..., 0]], axis=-1)
    a, b = (u * su[..., None] / 2.0)[..., None, :], (v * sv[..., None] / 2.0)[..., None, :]
    signs = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return centre[..., None, :] + signs[:, :1] * a + signs[:, 1:] * b


def quad_to_obb(quads: ArrayLike) -> FloatArray:
    """Minimum-area rectangle of each quad's 4 points, as an obb (OpenCV ``minAreaRect`` rules).

    Vertex order does not matter (bow-ties included). Rows with non-finite coordinates are NaN.

    Examples:
        >>> quad_to_obb([[147, 227], [98, 227], [98, 196], [147, 196]]).tolist()
        [[122.5, 211.5, 49.0, 31.0, 0.0]]
    """
    q = as_quads(quads)
    centre, u, su, sv = _min_area_rect(np.where(np.isfinite(q), q, 0.0))
    return _nan_rows(_obb_from_sides(centre, su, sv, np.degrees(np.arctan2(u[:, 1], u[:, 0]))), q)


_CONVERTERS = {
    ("hbb", "obb"): hbb_to_obb,
    ("hbb", "quad"): hbb_to_quad,
    ("obb", "hbb"): obb_to_hbb,
    ("obb", "quad"): obb_to_quad,
    ("quad", "hbb"): quad_to_hbb,
    ("quad", "obb"): quad_to_obb,
}


def convert(boxes: ArrayLike, src: BoxKind, dst: BoxKind) -> FloatArray:
    """Convert boxes between any two kinds (a copy when ``src == dst``).

    Raises:
        ValueError: if ``src`` or ``dst`` is not one of :data:`BOX_KINDS`.
    """
    if src not in BOX_KINDS or dst not in BOX_KINDS:
        raise ValueError(f"box kinds must be among {BOX_KINDS}, got {src!r} -> {dst!r}")
    if src == dst:
        return (as_quads(boxes) if src == "quad" else _rows(boxes, 4 if src == "hbb" else 5)).copy()
    return _CONVERTERS[(src, dst)](boxes)
