"""IoU matrices and pairs: hbbs by broadcasting, quads and obbs by polygon overlap."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely
from numpy.typing import ArrayLike

from rscovlm.geometry import _convex
from rscovlm.geometry._kinds import FloatArray, IntArray, ObjArray, _rows
from rscovlm.geometry._obb import obb_to_quad
from rscovlm.geometry._validity import _Quads, _repair


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

    Pairs of strictly convex quads are clipped in numpy (:mod:`rscovlm.geometry._convex`), all
    others intersected by shapely. Each pair's value depends only on the two quads, never on the
    rest of the batch, so the matrix, the row-by-row and the NMS entry points agree bit for bit.
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


#: Pairs clipped per numpy batch by :func:`quad_iou_grouped` (bounds memory: ~64 points a pair).
PAIR_CHUNK = 1 << 14


def _threads() -> int:
    """Threads that clip batches at once: numpy releases the GIL inside its array loops, and
    the batches are independent (each pair's IoU depends on that pair alone, so the result is
    bit-identical whatever the number). ``RSCOVLM_THREADS`` caps it; default: the cores this
    process may use, at most 4."""
    env = os.environ.get("RSCOVLM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, len(os.sched_getaffinity(0))))


def quad_iou_grouped(
    a: ArrayLike, group_a: ArrayLike, b: ArrayLike, group_b: ArrayLike
) -> tuple[IntArray, IntArray, FloatArray]:
    """``(i, j, iou)``: every pair of ``a[i]`` and ``b[j]`` in the same group with IoU > 0.

    What a dataset's evaluation needs (group = image, or image and class): all the per-image
    :func:`quad_iou_matrix` calls at once, sparse. One repair of each side, one envelope sweep
    over every group (:func:`rscovlm.geometry._convex.envelope_pairs`), then the pairs clipped
    in batches of :data:`PAIR_CHUNK`, so the cost follows the number of overlapping pairs and
    not the number of images. Each IoU equals ``quad_iou_matrix``'s for that pair bit for bit.

    Examples:
        >>> from rscovlm.geometry import hbb_to_quad
        >>> a = hbb_to_quad([[0, 0, 2, 2], [0, 0, 2, 2]])
        >>> i, j, iou = quad_iou_grouped(a, [0, 1], hbb_to_quad([[1, 0, 3, 2]]), [1])
        >>> i.tolist(), j.tolist(), iou.tolist()
        ([1], [0], [0.3333333333333333])

    Raises:
        ValueError: a group array does not have one entry per quad.
    """
    qa, qb = _repair(a), _repair(b)
    ga = np.asarray(group_a, dtype=np.int64).reshape(-1)
    gb = np.asarray(group_b, dtype=np.int64).reshape(-1)
    if len(ga) != len(qa.q) or len(gb) != len(qb.q):
        raise ValueError(
            f"one group per quad: {len(qa.q)} quads and {len(ga)} groups, "
            f"{len(qb.q)} quads and {len(gb)} groups"
        )
    va, vb = np.flatnonzero(qa.valid), np.flatnonzero(qb.valid)
    i, j = _convex.envelope_pairs(qa.hbb()[va], qb.hbb()[vb], ga[va], gb[vb])
    i, j = va[i], vb[j]
    iou = np.zeros(len(i))
    parts = [slice(s, s + PAIR_CHUNK) for s in range(0, len(i), PAIR_CHUNK)]

    def clip(part: slice) -> None:
        iou[part] = _iou_at(qa, qb, i[part], j[part])

    if len(parts) > 1 and _threads() > 1:
        with ThreadPoolExecutor(_threads()) as pool:
            list(pool.map(clip, parts))
    else:
        for part in parts:
            clip(part)
    keep = iou > 0
    return i[keep], j[keep], iou[keep]


def quad_iou_pairs(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Polygon IoU ``(K,)`` of ``a[k]`` with ``b[k]``, row by row (the diagonal of the matrix).

    Examples:
        >>> from rscovlm.geometry import hbb_to_quad
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
