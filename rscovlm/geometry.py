"""Boxes of remote-sensing objects: kinds, conversions, canonical order, clipping, IoU, NMS.

Three box kinds, spelled the same everywhere in rscovlm:

- ``hbb``: ``(N, 4)`` float ``[x1, y1, x2, y2]``, horizontal box, pixels.
- ``obb``: ``(N, 5)`` float ``[cx, cy, w, h, angle]``, oriented box; ``w`` is the long side and
  ``angle`` (degrees) turns the long side from +x toward +y (clockwise on screen in y-down image
  coordinates), in ``[-90, 90)``: the convention of the released RSCoVLM checkpoints.
- ``quad``: ``(N, 4, 2)`` float, four vertices.

Coordinates are pixels of whatever image the caller works in (x right, y down); nothing here
rescales (that is ``resolution.CoordMap``'s job). Every function is vectorised over N and returns
float64 (indices int64), never a Python loop over boxes or pairs (only the greedy NMS walks, in
score order, the boxes that suppress something). Polygon IoU of two strictly convex quads (nearly
all real ones: rectangles, DOTA annotations, predictions) is computed in numpy by clipping
(``rscovlm._convex``); any pair with a concave or nearly flat-cornered quad goes to the shapely 2
array API. Both give the same IoU to rounding (1e-9 is tested), and degenerate input follows the
same rules on both paths.

OBB angle rules (WIRE §2.5: OpenCV ``minAreaRect``, then "if w < h swap and add 90", then wrap):
a vertical long side gives -90; an angle within 1e-9° of +90 is reported as -90 so it never
flickers between the two ends of the range. A square (sides equal to a relative 1e-9) has two
equivalent angles in range; we return the one in ``[-90, 0)`` (OpenCV's own range before 4.5.1
and again after opencv/opencv#28051; versions in between report the other one for a rotated
square), so an axis-aligned square gets -90, as in every OpenCV version (``hbb_to_obb`` agrees).
When two different rectangles have the same minimal area, see ``_min_area_rect`` for the pick
(OpenCV's depends on its hull's starting vertex).

Degenerate input has defined behaviour and never raises from inside shapely:

- A quad whose opposite edges cross or touch (a "bow-tie", usually a rectangle annotated in the
  wrong vertex order) is repaired by ordering its vertices around their mean, as
  :func:`canonical_quad` does, before any area, IoU or clipping: a bow-tie annotation of a
  rectangle behaves like the rectangle. Simple quads, concave ones included, keep their order.
- A quad is *valid* (:func:`valid_quads`) when its coordinates are finite, its repaired area
  exceeds ``1e-12 * (longest side of its hbb)**2`` (so collinear or duplicate points, up to
  rounding, are not) and the repaired ring is a valid shapely polygon.
- Invalid quads have area 0 and IoU 0 with everything, themselves included. ``rotated_nms``
  keeps them (they suppress nothing and nothing suppresses them; filter with ``valid_quads``
  first if you want them gone). ``clip_quads`` gives them a zero quad and kept fraction 0.
- Conversions never raise on bad numbers: a box with any non-finite value becomes a NaN row
  in every conversion to or from obb (hbb <-> quad just copy values); collinear points give an
  obb of height 0, and 4 equal points one of size 0 with angle -90.
- hbbs with non-finite coordinates or zero or negative width or height have IoU 0 with
  everything.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from rscovlm import _convex

BoxKind = Literal["hbb", "obb", "quad"]
BOX_KINDS: tuple[BoxKind, ...] = ("hbb", "obb", "quad")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
ObjArray = NDArray[np.object_]

_SNAP_DEG = 1e-9  # angles this close to +90 (or 0 for squares) are reported as -90
_SQUARE_RTOL = 1e-9  # relative side difference below which an obb counts as a square
_AREA_RTOL = 1e-12  # area below this times (hbb long side)**2 counts as zero
_CHUNK = 65536  # rows per block in the min-area rectangle search, to bound memory


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
    return np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1)


# --------------------------------------------------------------------------- oriented boxes


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


# --------------------------------------------------------------------- areas and validity


def _shoelace(q: FloatArray) -> FloatArray:
    """Signed area of each quad in vertex order (positive when clockwise on screen)."""
    rel = q - q.mean(axis=1, keepdims=True)  # far from the origin, raw products cancel badly
    x, y = rel[..., 0], rel[..., 1]
    return 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)


def _touch(p: FloatArray, q: FloatArray, r: FloatArray, s: FloatArray) -> BoolArray:
    """Whether segments pq and rs cross or touch (orientation tests, vectorised)."""

    def orient(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    return (orient(p, q, r) * orient(p, q, s) <= 0) & (orient(r, s, p) * orient(r, s, q) <= 0)


class _Quads(NamedTuple):
    """Quads ready for area and IoU work (see :func:`_repair`)."""

    q: FloatArray  # repaired vertices (non-finite rows zeroed)
    oriented: FloatArray  # the same, convex rows wound counter-clockwise (x right, y up)
    valid: BoolArray
    convex: BoolArray  # valid and strictly convex: the numpy path
    area: FloatArray  # 0 when invalid

    def hbb(self) -> FloatArray:
        return quad_to_hbb(self.q)


def _repair(quads: ArrayLike) -> _Quads:
    """Repair bow-ties and validate; shapely only checks the quads that are not strictly convex.

    A strictly convex quad (:func:`rscovlm._convex.orient_convex`) is simple, so shapely would
    find it valid: only the area rule applies to it.
    """
    q = as_quads(quads)
    finite = np.isfinite(q).all(axis=(1, 2))
    q = np.where(finite[:, None, None], q, 0.0)
    p0, p1, p2, p3 = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    bowtie = _touch(p0, p1, p2, p3) | _touch(p1, p2, p3, p0)
    q = np.where(bowtie[:, None, None], canonical_quad(q), q)
    area = np.abs(_shoelace(q))
    span = (q.max(axis=1) - q.min(axis=1)).max(axis=1)
    valid = finite & (area > _AREA_RTOL * span**2)
    oriented, convex = _convex.orient_convex(q)
    convex &= valid
    check = valid & ~convex
    if check.any():
        valid[check] = shapely.is_valid(shapely.polygons(q[check]))
    return _Quads(q, oriented, valid, convex, np.where(valid, area, 0.0))


def _prepare(quads: ArrayLike) -> tuple[FloatArray, BoolArray, FloatArray, ObjArray]:
    """Repair, validate and build polygons: ``(quads, valid, area, polygons or None)``."""
    r = _repair(quads)
    polys = np.full(len(r.q), None, dtype=object)
    if r.valid.any():
        polys[r.valid] = shapely.polygons(r.q[r.valid])
    return r.q, r.valid, r.area, polys


def valid_quads(quads: ArrayLike) -> BoolArray:
    """Mask of quads usable as polygons (finite, non-zero area, simple after bow-tie repair)."""
    return _repair(quads).valid


def quad_area(quads: ArrayLike) -> FloatArray:
    """Absolute shoelace area of each quad in square pixels (after bow-tie repair; 0 if invalid).

    Examples:
        >>> quad_area([[[0, 0], [4, 0], [4, 3], [0, 3]], [[0, 0], [4, 3], [4, 0], [0, 3]]])
        array([12., 12.])
    """
    return _repair(quads).area


# ------------------------------------------------------------------------------- clipping


def clip_hbb(hbb: ArrayLike, width: float, height: float) -> FloatArray:
    """Clip horizontal boxes to the image ``[0, width] x [0, height]`` (NaN stays NaN)."""
    b = _rows(hbb, 4).copy()
    b[:, 0::2] = np.clip(b[:, 0::2], 0.0, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 0.0, height)
    return b


def clip_quads(quads: ArrayLike, rect: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Clip quads to ``rect = (x0, y0, x1, y1)`` for DOTA-style tiling.

    Returns:
        ``(clipped (N, 4, 2), kept_fraction (N,))``: a quad entirely inside ``rect`` comes back
        unchanged with fraction 1; one partly inside becomes the minimum-area rectangle of its
        clipped polygon (canonical clockwise order), with fraction = clipped area / area; one
        with nothing inside (or invalid) becomes a zero quad with fraction 0. Tiling keeps
        objects with a fraction >= 0.7.

    Raises:
        ValueError: if ``rect`` is not 4 finite numbers with ``x0 <= x1`` and ``y0 <= y1``.
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(rect, dtype=np.float64).reshape(4))
    if not (np.isfinite([x0, y0, x1, y1]).all() and x0 <= x1 and y0 <= y1):
        raise ValueError(f"clip rect must be finite (x0, y0, x1, y1) with x0<=x1, y0<=y1: {rect}")
    original = as_quads(quads)
    _, valid, area, polys = _prepare(original)
    out, frac = np.zeros_like(original), np.zeros(len(original))
    with np.errstate(invalid="ignore"):
        xs, ys = original[..., 0], original[..., 1]
        inside = ((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)).all(axis=1) & valid
    out[inside], frac[inside] = original[inside], 1.0
    part = np.flatnonzero(valid & ~inside)
    if len(part):
        clipped = shapely.intersection(polys[part], shapely.box(x0, y0, x1, y1))
        kept = shapely.area(clipped)
        hit = kept > 0
        part, kept = part[hit], kept[hit]
        frac[part] = np.minimum(kept / area[part], 1.0)
        coords, row = shapely.get_coordinates(shapely.convex_hull(clipped[hit]), return_index=True)
        if len(part):
            start = np.searchsorted(row, np.arange(len(part)))
            size = np.bincount(row, minlength=len(part))
            pts = np.repeat(coords[start][:, None], size.max(), axis=1)  # pad: repeat a vertex
            pts[row, np.arange(len(row)) - start[row]] = coords
            out[part] = canonical_quad(_rect_corners(*_min_area_rect(pts)))
    return out, frac


# ------------------------------------------------------------------------------------ IoU


def hbb_iou_matrix(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """IoU ``(N, M)`` of horizontal boxes, by numpy broadcasting.

    Examples:
        >>> hbb_iou_matrix([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]]).tolist()
        [[0.3333333333333333, 0.0]]
    """
    ba, bb = _rows(a, 4), _rows(b, 4)

    def areas(x: FloatArray) -> FloatArray:
        w, h = x[:, 2] - x[:, 0], x[:, 3] - x[:, 1]
        ok = np.isfinite(x).all(axis=1) & (w > 0) & (h > 0)
        return np.where(ok, w * h, 0.0)

    with np.errstate(invalid="ignore", over="ignore"):
        area_a, area_b = areas(ba), areas(bb)
        lo = np.maximum(ba[:, None, :2], bb[None, :, :2])
        hi = np.minimum(ba[:, None, 2:], bb[None, :, 2:])
        wh = np.clip(hi - lo, 0.0, None)
        inter = wh[..., 0] * wh[..., 1]
        ok = (area_a[:, None] > 0) & (area_b[None, :] > 0) & np.isfinite(inter)
        union = area_a[:, None] + area_b[None, :] - inter
        return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def _pair_iou(pa: ObjArray, pb: ObjArray, area_a: FloatArray, area_b: FloatArray) -> FloatArray:
    """Elementwise polygon IoU of aligned arrays of valid polygons and their areas.

    Should GEOS's floating overlay ever give up (a TopologyException on extreme near-collinear
    input), the batch is redone with snap rounding to a 1e-6 px grid, which cannot fail.
    """
    try:
        inter = shapely.area(shapely.intersection(pa, pb))
    except shapely.errors.GEOSException:
        inter = shapely.area(shapely.intersection(pa, pb, grid_size=1e-6))
    union = area_a + area_b - inter
    return np.clip(inter / np.where(union > 0, union, 1.0), 0.0, 1.0)


def _iou_at(qa: _Quads, qb: _Quads, i: IntArray, j: IntArray) -> FloatArray:
    """IoU of ``qa[i[k]]`` with ``qb[j[k]]`` for index arrays of valid quads.

    Pairs of strictly convex quads are clipped in numpy (:mod:`rscovlm._convex`), all others
    intersected by shapely. Each pair's value depends only on the two quads, never on the rest
    of the batch, so the matrix, the row-by-row and the NMS entry points agree bit for bit.
    """
    out = np.zeros(len(i))
    fast = qa.convex[i] & qb.convex[j]
    if fast.any():
        fi, fj = i[fast], j[fast]
        inter = _convex.intersection_area(qa.oriented[fi], qb.oriented[fj])
        union = qa.area[fi] + qb.area[fj] - inter
        out[fast] = np.clip(inter / np.where(union > 0, union, 1.0), 0.0, 1.0)
    slow = np.flatnonzero(~fast)
    if len(slow):
        si, sj = i[slow], j[slow]
        pa, pb = shapely.polygons(qa.q[si]), shapely.polygons(qb.q[sj])
        out[slow] = _pair_iou(pa, pb, qa.area[si], qb.area[sj])
    return out


def quad_iou_matrix(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Polygon IoU ``(N, M)`` of quads (rotated IoU), as shapely computes it pair by pair.

    Only pairs of valid quads whose enclosing boxes meet are computed (a sorted sweep over the
    boxes), so the cost grows with the number of overlapping pairs, not N x M; they are then
    all done at once, convex pairs in numpy and the rest in one vectorised shapely call.
    """
    qa, qb = _repair(a), _repair(b)
    out = np.zeros((len(qa.q), len(qb.q)))
    va, vb = np.flatnonzero(qa.valid), np.flatnonzero(qb.valid)
    ia, ib = _convex.envelope_pairs(qa.hbb()[va], qb.hbb()[vb])
    ia, ib = va[ia], vb[ib]
    out[ia, ib] = _iou_at(qa, qb, ia, ib)
    return out


def quad_iou_pairs(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Polygon IoU ``(K,)`` of ``a[k]`` with ``b[k]``, row by row (the diagonal of the matrix).

    Examples:
        >>> quad_iou_pairs(hbb_to_quad([[0, 0, 2, 2], [0, 0, 1, 1]]),
        ...                hbb_to_quad([[1, 0, 3, 2], [5, 5, 6, 6]])).tolist()
        [0.3333333333333333, 0.0]

    Raises:
        ValueError: if ``a`` and ``b`` hold different numbers of quads.
    """
    qa, qb = _repair(a), _repair(b)
    if len(qa.q) != len(qb.q):
        raise ValueError(
            f"quad_iou_pairs needs as many quads on each side: {len(qa.q)} != {len(qb.q)}"
        )
    ha, hb = qa.hbb(), qb.hbb()
    meet = (ha[:, :2] <= hb[:, 2:]).all(axis=1) & (hb[:, :2] <= ha[:, 2:]).all(axis=1)
    k = np.flatnonzero(meet & qa.valid & qb.valid)
    out = np.zeros(len(qa.q))
    out[k] = _iou_at(qa, qb, k, k)
    return out


def obb_iou_matrix(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Rotated IoU ``(N, M)`` of oriented boxes, through their corner quads."""
    return quad_iou_matrix(obb_to_quad(a), obb_to_quad(b))


# ------------------------------------------------------------------------------------ NMS


def rotated_nms(
    quads: ArrayLike,
    scores: ArrayLike,
    iou_threshold: float,
    labels: ArrayLike | None = None,
) -> IntArray:
    """Greedy non-maximum suppression of quads by polygon IoU.

    Boxes are visited by descending score (ties: lower index first; NaN scores last); a box is
    dropped when its IoU with an already kept box is ``> iou_threshold``. With ``labels``, only
    boxes of the same label suppress each other. Only pairs whose envelopes meet (an STRtree) and
    whose IoU upper bound passes the threshold get a polygon IoU (the same values as
    :func:`quad_iou_matrix`), so the cost follows the overlaps rather than N².

    Returns:
        Indices of the kept boxes, int64, in visiting order.

    Raises:
        ValueError: if the lengths disagree or ``iou_threshold`` is not in ``[0, 1]``.
    """
    prep = _repair(quads)
    area, n = prep.area, len(prep.q)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != n or (labels is not None and len(np.asarray(labels).reshape(-1)) != n):
        raise ValueError(f"{n} quads need {n} scores (and labels), got {len(s)}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    order = np.argsort(-s, kind="stable")
    if n == 0:
        return order.astype(np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    hbb = prep.hbb()
    valid = np.flatnonzero(prep.valid)
    i, j = _convex.envelope_pairs(hbb[valid], hbb[valid])  # pairs whose envelopes meet
    i, j = valid[i], valid[j]
    keep = rank[i] < rank[j]  # i is visited first; drops self pairs and duplicates
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        keep &= lab[i] == lab[j]
    i, j = i[keep], j[keep]
    # Exact pruning before the costly polygon overlay: the intersection is at most the hbbs'
    # intersection and the smaller area, and IoU grows with the intersection (slack for rounding).
    wh = np.clip(np.minimum(hbb[i, 2:], hbb[j, 2:]) - np.maximum(hbb[i, :2], hbb[j, :2]), 0, None)
    bound = np.minimum(wh[:, 0] * wh[:, 1], np.minimum(area[i], area[j]))
    keep = bound / (area[i] + area[j] - bound) > iou_threshold - 1e-9
    i, j = i[keep], j[keep]
    hit = _iou_at(prep, prep, i, j) > iou_threshold
    i, j = i[hit], j[hit]
    by_rank = np.argsort(rank[i], kind="stable")
    i, j = i[by_rank], j[by_rank]
    suppressed = np.zeros(n, dtype=bool)
    # Only boxes that would suppress something need visiting; the rest cannot change anything.
    sources, starts = np.unique(rank[i], return_index=True)
    ends = np.append(starts, len(i))[1:]
    for src_rank, lo, hi in zip(sources.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if not suppressed[order[src_rank]]:
            suppressed[j[lo:hi]] = True
    return order[~suppressed[order]].astype(np.int64)
