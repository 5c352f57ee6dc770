"""Numpy kernels behind :mod:`rscovlm.geometry`'s polygon IoU: convexity, clipping, envelopes.

Private: the public entry points are ``geometry.quad_iou_matrix``, ``quad_iou_pairs`` and
``rotated_nms``, which route strictly convex quads here and every other valid quad to shapely.

The intersection area of two convex quads is computed by Sutherland-Hodgman clipping of quad A
by the four edge half-planes of quad B, for all pairs at once in fixed-size arrays. To keep the
arrays fixed-size without compacting them, each clip step emits two points per input vertex:
the vertex itself when it is inside, its projection onto the clip line when it is outside, and
then the edge's crossing point with the line (or a copy of the first point when the edge does
not cross). The projections only add back-and-forth runs along the clip line, which enclose no
area, so every step's closed polyline has the same winding number as plain Sutherland-Hodgman
at every point off the clip lines, and the final shoelace area is the area of A within B. The
polyline doubles at each step (4, 8, 16, 32, then 64 points); all in plain float64 ufuncs.

Unlike intersecting edges directly, this is continuous in every inside/outside decision: a
vertex lying on B's boundary up to rounding gives the same area (to rounding) either way, so
identical, nested, touching and collinear-edge pairs need no special cases.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: A corner counts as strictly convex when the sine of its turn exceeds this; flatter corners
#: (a vertex on, or within rounding of, the line of its neighbours) go to the shapely path.
CONVEX_SIN = 1e-8
#: Largest N x M compared by broadcasting in the envelope search (an STRtree above).
_BROADCAST_CELLS = 1 << 14


def orient_convex(q: FloatArray) -> tuple[FloatArray, BoolArray]:
    """``(quads wound counter-clockwise in x-right/y-up terms, strictly convex mask)``.

    ``q`` must be finite. A quad is strictly convex when its four corners turn the same way,
    each by a sine above :data:`CONVEX_SIN`: such a quad is simple (shapely finds it valid), and
    the turn test leaves a wide margin against rounding. Reversed quads are returned reversed
    (vertex order ``0, 3, 2, 1``) so that every convex quad has its inside on the left of each
    edge; non-convex rows are returned as given.
    """
    rel = q - q.mean(axis=1, keepdims=True)
    e = np.roll(rel, -1, axis=1) - rel  # e[k] = edge from vertex k to k + 1
    ep = np.roll(e, 1, axis=1)  # the edge arriving at vertex k
    turn = ep[..., 0] * e[..., 1] - ep[..., 1] * e[..., 0]
    scale = CONVEX_SIN * np.hypot(ep[..., 0], ep[..., 1]) * np.hypot(e[..., 0], e[..., 1])
    left = (turn > scale).all(axis=1)
    right = (turn < -scale).all(axis=1)
    out = np.where(right[:, None, None], q[:, [0, 3, 2, 1]], q)
    return out, left | right


def _tree_sum(x: FloatArray) -> FloatArray:
    """Row sums of ``x (K, 2**n)`` in a fixed pairwise order (the same whatever K is)."""
    while x.shape[1] > 1:
        half = x.shape[1] // 2
        x = x[:, :half] + x[:, half:]
    return x[:, 0]


def _depths(p: FloatArray, v: FloatArray) -> FloatArray:
    """``d[k, e, i]``: how far vertex ``i`` of ``p`` lies left of (inside) edge ``e`` of ``v``.

    Twice the signed triangle area, in the same arithmetic as the clipping steps.
    """
    e = np.roll(v, -1, axis=1) - v  # (K, 4, 2), inside on the left
    px, py = p[:, None, :, 0], p[:, None, :, 1]
    vx, vy, ex, ey = v[..., 0, None], v[..., 1, None], e[..., 0, None], e[..., 1, None]
    return ex * (py - vy) - ey * (px - vx)


def _ring_area(px: FloatArray, py: FloatArray) -> FloatArray:
    """Shoelace area of closed polylines ``(K, 2**n)``, summed in a fixed order."""
    return 0.5 * _tree_sum(px * np.roll(py, -1, axis=1) - np.roll(px, -1, axis=1) * py)


def intersection_area(a: FloatArray, b: FloatArray) -> FloatArray:
    """Area of ``a[k] ∩ b[k]`` for aligned ``(K, 4, 2)`` arrays of convex quads.

    Both must come from :func:`orient_convex` (counter-clockwise, strictly convex). Pairs that
    an edge line of either quad separates (disjoint or touching: the separating axis test is
    exact for convex polygons) get exactly 0, as shapely gives, not a rounding residue. The
    value of each pair depends on that pair only.
    """
    origin = b.mean(axis=1, keepdims=True)  # work near the pair: far coordinates cancel badly
    a, b = a - origin, b - origin
    d_ab = _depths(a, b)
    apart = (d_ab.max(axis=2) <= 0).any(axis=1) | (_depths(b, a).max(axis=2) <= 0).any(axis=1)
    out = np.zeros(len(a))
    meet = np.flatnonzero(~apart)
    if len(meet):
        out[meet] = _clipped_area(a[meet], b[meet], d_ab[meet])
    return out


def _clipped_area(a: FloatArray, v: FloatArray, depth: FloatArray) -> FloatArray:
    """Sutherland-Hodgman area of ``a`` within the convex ``v`` (see the module docstring).

    An edge of ``v`` with all of ``a`` inside cannot change the area (everything later steps
    add lies on clip lines or inside ``a``), so each row is clipped only by the edges that
    leave a vertex of ``a`` outside (``depth < 0``), those first, and finishes early.
    """
    need = (depth < 0).any(axis=2)  # (K, 4)
    order = np.argsort(~need, axis=1, kind="stable")
    e = np.roll(v, -1, axis=1) - v  # edge k runs from vertex k to k + 1
    v = np.take_along_axis(v, order[..., None], axis=1)
    e = np.take_along_axis(e, order[..., None], axis=1)
    steps = need.sum(axis=1)
    out = np.zeros(len(a))
    px, py = a.transpose(2, 0, 1)
    active = np.arange(len(a))
    for k in range(5):
        done = steps[active] == k
        if done.any():
            out[active[done]] = _ring_area(px[done], py[done])
            keep = ~done
            active, px, py = active[keep], px[keep], py[keep]
        if k == 4 or not len(active):
            break
        vx, vy = v[active, k, 0:1], v[active, k, 1:2]
        ex, ey = e[active, k, 0:1], e[active, k, 1:2]
        d = ex * (py - vy) - ey * (px - vx)  # > 0: left of the edge, inside
        pxn, pyn, dn = (np.roll(x, -1, axis=1) for x in (px, py, d))
        inside = d >= 0
        cross = inside != (dn >= 0)
        t = d / np.where(cross, d - dn, 1.0)  # in [0, 1] where the edge crosses
        s = d / (ex * ex + ey * ey)  # outside vertices move by -s * (-ey, ex) onto the line
        fx = np.where(inside, px, px + s * ey)
        fy = np.where(inside, py, py - s * ex)
        gx = np.where(cross, px + t * (pxn - px), fx)
        gy = np.where(cross, py + t * (pyn - py), fy)
        px = np.stack([fx, gx], axis=2).reshape(len(px), -1)
        py = np.stack([fy, gy], axis=2).reshape(len(py), -1)
    return np.maximum(out, 0.0)


def envelope_pairs(ha: FloatArray, hb: FloatArray) -> tuple[IntArray, IntArray]:
    """Index pairs ``(i, j)`` whose boxes ``ha[i]`` and ``hb[j]`` (``x1, y1, x2, y2``) meet.

    Closed boxes: touching counts. Values must be finite. Small inputs are compared by numpy
    broadcasting; bigger ones through a shapely STRtree of the boxes (no polygon is built).
    """
    n, m = len(ha), len(hb)
    if n == 0 or m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if n * m <= _BROADCAST_CELLS:
        hit = (ha[:, None, 0] <= hb[None, :, 2]) & (hb[None, :, 0] <= ha[:, None, 2])
        hit &= (ha[:, None, 1] <= hb[None, :, 3]) & (hb[None, :, 1] <= ha[:, None, 3])
        i, j = np.nonzero(hit)
    else:
        tree = shapely.STRtree(shapely.box(*hb.T))
        i, j = tree.query(shapely.box(*ha.T))
    return i.astype(np.int64), j.astype(np.int64)
