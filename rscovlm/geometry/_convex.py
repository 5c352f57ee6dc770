"""Numpy kernels behind :mod:`rscovlm.geometry`'s polygon IoU: convexity, clipping, envelopes.

Private: the public entry points are ``geometry.quad_iou_matrix``, ``quad_iou_pairs`` and
``rotated_nms``, which route strictly convex quads here and every other valid quad to shapely.

The intersection area of two convex quads is computed by Sutherland-Hodgman clipping of quad A
by the edge half-planes of quad B (or B by A, whichever fewer edges cut), for all pairs at once
in fixed-size arrays. To keep the arrays fixed-size without compacting them, each clip step
emits two points per input vertex: the vertex itself when it is inside, its projection onto the
clip line when it is outside, and then the edge's crossing point with the line (or a copy of
the first point when the edge does not cross). The projections only add back-and-forth runs
along the clip line, which enclose no area, so every step's closed polyline has the same
winding number as plain Sutherland-Hodgman at every point off the clip lines, and the final
shoelace area is the area of A within B. The polyline doubles at each step (4, 8, 16, 32, then
64 points); all in plain float64 ufuncs.

Unlike intersecting edges directly, this is continuous in every inside/outside decision: a
vertex lying on B's boundary up to rounding gives the same area (to rounding) either way, so
identical, nested, touching and collinear-edge pairs need no special cases.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from rscovlm.geometry._kinds import _corner_mean

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: A corner counts as strictly convex when the sine of its turn exceeds this; flatter corners
#: (a vertex on, or within rounding of, the line of its neighbours) go to the shapely path.
CONVEX_SIN = 1e-8
#: Largest N x M compared by broadcasting in the envelope search (a sorted sweep above).
_BROADCAST_CELLS = 1 << 14


def orient_convex(q: FloatArray) -> tuple[FloatArray, BoolArray]:
    """``(quads wound counter-clockwise in x-right/y-up terms, strictly convex mask)``.

    ``q`` must be finite. A quad is strictly convex when its four corners turn the same way,
    each by a sine above :data:`CONVEX_SIN`: such a quad is simple (shapely finds it valid), and
    the turn test leaves a wide margin against rounding. Reversed quads are returned reversed
    (vertex order ``0, 3, 2, 1``) so that every convex quad has its inside on the left of each
    edge; non-convex rows are returned as given.
    """
    rel = q - _corner_mean(q)[:, None]
    e = _next(rel) - rel  # e[k] = edge from vertex k to k + 1
    ex, ey = e[..., 0], e[..., 1]
    length = np.hypot(ex, ey)

    def arriving(x: FloatArray) -> FloatArray:  # the value of the edge arriving at vertex k
        return np.concatenate([x[:, 3:], x[:, :3]], axis=1)

    # Per-coordinate planes and one hypot (the arriving edge's length is the same numbers
    # turned): the same arithmetic as on the (N, 4, 2) edges, at half the cost.
    turn = arriving(ex) * ey - arriving(ey) * ex
    scale = CONVEX_SIN * arriving(length) * length
    left = _all4(turn > scale)
    right = _all4(turn < -scale)
    out = q.copy()
    if right.any():
        out[right] = q[right][:, [0, 3, 2, 1]]
    return out, left | right


def _all4(x: BoolArray) -> BoolArray:
    """``x.all(axis=-1)`` for a last axis of 4, written out (numpy's short reductions are slow)."""
    return (x[..., 0] & x[..., 1]) & (x[..., 2] & x[..., 3])


def _any4(x: BoolArray) -> BoolArray:
    """``x.any(axis=-1)`` for a last axis of 4 (see :func:`_all4`)."""
    return (x[..., 0] | x[..., 1]) | (x[..., 2] | x[..., 3])


def _max4(x: FloatArray) -> FloatArray:
    """``x.max(axis=-1)`` for a last axis of 4 (see :func:`_all4`)."""
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), np.maximum(x[..., 2], x[..., 3]))


def _next(x: FloatArray) -> FloatArray:
    """``x`` with its axis 1 turned one step: ``out[:, k] = x[:, k + 1]`` (``np.roll(x, -1, 1)``
    without its overhead, which the clipping loop pays on every step)."""
    return np.concatenate([x[:, 1:], x[:, :1]], axis=1)


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
    e = _next(v) - v  # (K, 4, 2), inside on the left
    px, py = p[:, None, :, 0], p[:, None, :, 1]
    vx, vy, ex, ey = v[..., 0, None], v[..., 1, None], e[..., 0, None], e[..., 1, None]
    return ex * (py - vy) - ey * (px - vx)


def _ring_area(px: FloatArray, py: FloatArray) -> FloatArray:
    """Shoelace area of closed polylines ``(K, 2**n)``, summed in a fixed order."""
    return 0.5 * _tree_sum(px * _next(py) - _next(px) * py)


def intersection_area(a: FloatArray, b: FloatArray) -> FloatArray:
    """Area of ``a[k] ∩ b[k]`` for aligned ``(K, 4, 2)`` arrays of convex quads.

    Both must come from :func:`orient_convex` (counter-clockwise, strictly convex). Pairs that
    an edge line of either quad separates (disjoint or touching: the separating axis test is
    exact for convex polygons) get exactly 0, as shapely gives, not a rounding residue. The
    value of each pair depends on that pair only.

    Each pair clips whichever quad fewer edges of the other cut (``a`` by ``b`` on a tie): the
    area is the same set either way, and every step saved halves that pair's remaining work
    (about 40 % of the clipping on a DOTA-like workload, where a jittered box and its ground
    truth often cut each other unevenly).
    """
    origin = _corner_mean(b)[:, None]  # work near the pair: far coordinates cancel badly
    a, b = a - origin, b - origin
    d_ab, d_ba = _depths(a, b), _depths(b, a)
    apart = _any4(_max4(d_ab) <= 0) | _any4(_max4(d_ba) <= 0)
    out = np.zeros(len(a))
    meet = np.flatnonzero(~apart)
    if len(meet):
        a, b, d_ab, d_ba = a[meet], b[meet], d_ab[meet], d_ba[meet]
        cut_a, cut_b = _any4(d_ab < 0), _any4(d_ba < 0)  # (K, 4): the edges that cut the other
        swap = _BITS[_code(cut_b)] < _BITS[_code(cut_a)]
        if swap.any():
            w = swap[:, None, None]
            a, b, d_ab = np.where(w, b, a), np.where(w, a, b), np.where(w, d_ba, d_ab)
        out[meet] = _clipped_area(a, b, d_ab)
    return out


def _code(flags: BoolArray) -> IntArray:
    """The 4-bit code of ``(K, 4)`` edge flags (edge ``k`` is bit ``k``)."""
    return (flags[:, 0] + 2 * flags[:, 1]) + (4 * flags[:, 2] + 8 * flags[:, 3])


def _partition_table() -> IntArray:
    """``table[code]``: the edge order that puts the edges flagged in the 4-bit ``code`` first,
    each part in edge order (what a stable argsort of ``~need`` gives, by one lookup)."""
    table = np.empty((16, 4), np.int64)
    for code in range(16):
        flagged = [k for k in range(4) if code >> k & 1]
        table[code] = flagged + [k for k in range(4) if not code >> k & 1]
    return table


_PARTITION = _partition_table()
_BITS = np.array([bin(code).count("1") for code in range(16)], np.int8)


def _clipped_area(a: FloatArray, v: FloatArray, depth: FloatArray) -> FloatArray:
    """Sutherland-Hodgman area of ``a`` within the convex ``v`` (see the module docstring).

    An edge of ``v`` with all of ``a`` inside cannot change the area (everything later steps
    add lies on clip lines or inside ``a``), so each row is clipped only by the edges that
    leave a vertex of ``a`` outside (``depth < 0``), those first, and finishes early. The rows
    are ordered by their number of steps first (most first), so the rows still clipping at
    step ``k`` are a prefix: each step works on a view, with no per-step compaction copies.
    Each row's arithmetic is the same whatever the others are.
    """
    code = _code(_any4(depth < 0))  # the edges that leave a vertex of ``a`` outside
    steps = _BITS[code]  # how many edges cut something: the row's clipping steps
    rows = np.argsort(-steps, kind="stable")  # most steps first
    edge = _PARTITION[code[rows]]  # (K, 4) the clip order of each (reordered) row
    e = _next(v) - v  # edge k runs from vertex k to k + 1
    r = rows[:, None]
    vs, es = v[r, edge], e[r, edge]  # (K, 4, 2)
    # counts[k]: rows that take more than k steps (a prefix of the reordered rows)
    counts = len(rows) - np.searchsorted(steps[rows][::-1], np.arange(5), side="right")
    out_sorted = np.zeros(len(a))
    px, py = a[rows, :, 0], a[rows, :, 1]
    for k in range(5):
        n_more = int(counts[k])  # rows with steps > k
        n_here = len(px)
        if n_more < n_here:  # rows finishing with k steps
            out_sorted[n_more:n_here] = _ring_area(px[n_more:], py[n_more:])
            px, py = px[:n_more], py[:n_more]
        if k == 4 or not n_more:
            break
        vx, vy = vs[:n_more, k, 0:1], vs[:n_more, k, 1:2]
        ex, ey = es[:n_more, k, 0:1], es[:n_more, k, 1:2]
        d = ex * (py - vy) - ey * (px - vx)  # > 0: left of the edge, inside
        pxn, pyn, dn = _next(px), _next(py), _next(d)
        inside = d >= 0
        cross = inside != (dn >= 0)
        t = d / np.where(cross, d - dn, 1.0)  # in [0, 1] where the edge crosses
        s = d / (ex * ex + ey * ey)  # outside vertices move by -s * (-ey, ex) onto the line
        width = px.shape[1]
        nx, ny = np.empty((n_more, 2 * width)), np.empty((n_more, 2 * width))
        fx, fy = nx[:, 0::2], ny[:, 0::2]
        np.copyto(fx, np.where(inside, px, px + s * ey))
        np.copyto(fy, np.where(inside, py, py - s * ex))
        nx[:, 1::2] = np.where(cross, px + t * (pxn - px), fx)
        ny[:, 1::2] = np.where(cross, py + t * (pyn - py), fy)
        px, py = nx, ny
    out = np.empty(len(a))
    out[rows] = out_sorted
    return np.maximum(out, 0.0)


def envelope_pairs(
    ha: FloatArray,
    hb: FloatArray,
    group_a: IntArray | None = None,
    group_b: IntArray | None = None,
) -> tuple[IntArray, IntArray]:
    """Index pairs ``(i, j)`` whose boxes ``ha[i]`` and ``hb[j]`` (``x1, y1, x2, y2``) meet.

    Closed boxes: touching counts. Values must be finite. With ``group_a``/``group_b`` (one
    integer per box, e.g. the image) only boxes of the same group pair up, so a whole dataset's
    per-image searches run as one. Small ungrouped inputs are compared by numpy broadcasting;
    everything else by :func:`_sweep_pairs`, exact and in numpy (no tree, no polygon built).
    """
    n, m = len(ha), len(hb)
    if n == 0 or m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if group_a is None and group_b is None and n * m <= _BROADCAST_CELLS:
        hit = (ha[:, None, 0] <= hb[None, :, 2]) & (hb[None, :, 0] <= ha[:, None, 2])
        hit &= (ha[:, None, 1] <= hb[None, :, 3]) & (hb[None, :, 1] <= ha[:, None, 3])
        i, j = np.nonzero(hit)
        return i.astype(np.int64), j.astype(np.int64)
    ga = np.zeros(n, np.int64) if group_a is None else np.asarray(group_a, np.int64)
    gb = np.zeros(m, np.int64) if group_b is None else np.asarray(group_b, np.int64)
    return _sweep_pairs(ha, hb, ga, gb)


#: Candidate pairs expanded at once by :func:`_sweep_pairs` (bounds its memory, not its result).
_SWEEP_CHUNK = 1 << 20


def _sweep_pairs(
    ha: FloatArray, hb: FloatArray, ga: IntArray, gb: IntArray
) -> tuple[IntArray, IntArray]:
    """:func:`envelope_pairs` by sorting: the pairs whose intervals meet on one axis, by binary
    search, then the other axis tested exactly.

    Two boxes' closed intervals ``[lo, hi]`` meet exactly when ``lo_b`` lies in ``[lo_a, hi_a]``
    or ``lo_a`` lies in ``(lo_b, hi_b]`` (one or the other, never both), so each pair is found
    once by two range searches over the boxes sorted by ``(group, lo)``. The coordinates are
    replaced by their ranks among all the interval ends first: integer keys ``group * U +
    rank`` then order exactly as ``(group, coordinate)`` does, with no rounding at any offset.
    The x axis is searched unless its interval pairs are many (over 8 per box, as along a row
    of parked cars), then whichever axis has fewer: the cost follows the pairs that meet on
    the sparser axis.
    """
    _, group = np.unique(np.concatenate([ga, gb]), return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    g_a, g_b = group[: len(ga)], group[len(ga) :]
    n, m = len(ha), len(hb)
    best_total, axis, ranges = -1, 0, []
    for ax in (0, 1):
        ends = np.concatenate([ha[:, ax], ha[:, ax + 2], hb[:, ax], hb[:, ax + 2]])
        _, rank = np.unique(ends, return_inverse=True)
        rank = rank.reshape(-1).astype(np.int64)
        span = int(rank.max()) + 1
        lo_a, hi_a = g_a * span + rank[:n], g_a * span + rank[n : 2 * n]
        lo_b = g_b * span + rank[2 * n : 2 * n + m]
        hi_b = g_b * span + rank[2 * n + m :]
        order_a, order_b = np.argsort(lo_a), np.argsort(lo_b)
        sorted_a, sorted_b = lo_a[order_a], lo_b[order_b]
        # b starts inside [lo_a, hi_a]: a query per a over b sorted by start ...
        s1, e1 = np.empty(n, np.int64), np.empty(n, np.int64)
        s1[order_a] = np.searchsorted(sorted_b, sorted_a, "left")  # sorted queries: fast
        e1[order_a] = np.searchsorted(sorted_b, hi_a[order_a], "right")
        # ... and a starts inside (lo_b, hi_b]: a query per b over a sorted by start.
        s2, e2 = np.empty(m, np.int64), np.empty(m, np.int64)
        s2[order_b] = np.searchsorted(sorted_a, sorted_b, "right")
        e2[order_b] = np.searchsorted(sorted_a, hi_b[order_b], "right")
        e1, e2 = np.maximum(e1, s1), np.maximum(e2, s2)
        total = int((e1 - s1).sum() + (e2 - s2).sum())
        if best_total < 0 or total < best_total:
            best_total, axis, ranges = total, ax, [(s1, e1, order_b), (s2, e2, order_a)]
        if total <= 8 * (n + m):  # sparse enough: the other axis cannot save much
            break
    other = 1 - axis
    out_i, out_j = [], []
    for side, (start, end, target) in enumerate(ranges):
        for q, t in _expand(start, end):
            t = target[t]
            i, j = (q, t) if side == 0 else (t, q)
            meet = (ha[i, other] <= hb[j, other + 2]) & (hb[j, other] <= ha[i, other + 2])
            out_i.append(i[meet])
            out_j.append(j[meet])
    return np.concatenate(out_i), np.concatenate(out_j)


def _expand(start: IntArray, end: IntArray) -> Iterator[tuple[IntArray, IntArray]]:
    """``(query, position)`` for every position in each query's ``[start, end)``, in chunks of
    about :data:`_SWEEP_CHUNK` pairs (a chunk always takes whole queries)."""
    count = end - start
    cum = np.cumsum(count)
    lo = 0
    while lo < len(count):
        base = int(cum[lo - 1]) if lo else 0
        hi = max(int(np.searchsorted(cum, base + _SWEEP_CHUNK, "right")), lo + 1)
        c = count[lo:hi]
        query = np.repeat(np.arange(lo, hi, dtype=np.int64), c)
        first = np.repeat(cum[lo:hi] - c - base, c)
        yield query, np.repeat(start[lo:hi], c) + np.arange(len(query), dtype=np.int64) - first
        lo = hi
