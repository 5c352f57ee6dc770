"""Box geometry: conversions, angle conventions, canonical order, clipping, IoU, NMS, degenerates.

References are independent of the code under test: shapely ``Polygon`` objects one pair at a
time, hand-built rectangles, and a plain greedy NMS.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from rscovlm import geometry as g

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

coord = st.floats(-2000, 6000, allow_nan=False, allow_infinity=False)
side = st.floats(0.5, 800, allow_nan=False, allow_infinity=False)
# Plain angles plus the ones where conventions bite: the ±90 wrap, 0 and the diagonals.
angle = st.one_of(
    st.floats(-90, 90, exclude_max=True, allow_nan=False),
    st.sampled_from([-90.0, -90 + 1e-7, 90 - 1e-7, 90 - 1e-12, -1e-9, 0.0, 1e-9, 45.0, -45.0]),
)


def angle_gap(a: float, b: float, period: float = 180.0) -> float:
    """Distance between two angles on a circle of ``period`` degrees."""
    d = (a - b) % period
    return min(d, period - d)


def rectangle(cx: float, cy: float, w: float, h: float, deg: float) -> np.ndarray:
    """Corners of a rectangle built by hand: side ``w`` along ``deg`` (from +x toward +y)."""
    t = math.radians(deg)
    u = np.array([math.cos(t), math.sin(t)]) * w / 2
    v = np.array([-math.sin(t), math.cos(t)]) * h / 2
    c = np.array([cx, cy])
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v])


def polygon_iou(a: Polygon, b: Polygon) -> float:
    inter = a.intersection(b).area
    return inter / (a.area + b.area - inter)


def shapely_iou(p: np.ndarray, q: np.ndarray) -> float:
    return polygon_iou(Polygon(p), Polygon(q))


def random_obbs(rng: np.random.Generator, n: int, size: float = 1024.0) -> np.ndarray:
    return np.column_stack(
        [
            rng.uniform(0, size, n),
            rng.uniform(0, size, n),
            rng.uniform(8, 120, n),
            rng.uniform(4, 60, n),
            rng.uniform(-90, 90, n),
        ]
    )


# ------------------------------------------------------------------ wire examples (WIRE §2.9)

GT = [(147, 227), (98, 227), (98, 196), (147, 196)]


def flat(q: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in q.reshape(-1))


def test_canonical_order_wire_example() -> None:
    assert flat(g.canonical_quad(GT)) == "98,196,147,196,147,227,98,227"
    assert flat(g.canonical_quad(GT, clockwise=False)) == "98,196,98,227,147,227,147,196"


def test_obb_wire_example() -> None:
    (obb,) = g.quad_to_obb(GT)
    assert ",".join(str(int(v)) for v in obb) == "122,211,49,31,0"


# ------------------------------------------------------------------------------ conversions


@FAST
@given(x=coord, y=coord, w=side, h=side)
def test_hbb_quad_round_trip_is_exact(x: float, y: float, w: float, h: float) -> None:
    hbb = np.array([[x, y, x + w, y + h]])
    quad = g.hbb_to_quad(hbb)
    assert np.array_equal(g.quad_to_hbb(quad), hbb)
    assert np.array_equal(g.canonical_quad(quad), quad)  # TL, TR, BR, BL is already canonical


@FAST
@given(x=coord, y=coord, w=side, h=side)
def test_hbb_obb_round_trip(x: float, y: float, w: float, h: float) -> None:
    hbb = np.array([[x, y, x + w, y + h]])
    (obb,) = g.hbb_to_obb(hbb)
    bw, bh = hbb[0, 2] - hbb[0, 0], hbb[0, 3] - hbb[0, 1]
    assert obb[2] == max(bw, bh) and obb[3] == min(bw, bh)
    square = abs(bw - bh) <= 1e-9 * max(bw, bh)  # sides equal to rounding
    assert obb[4] == (0.0 if bw > bh and not square else -90.0)  # tall, square: -90 (OpenCV)
    np.testing.assert_allclose(g.obb_to_hbb(obb), hbb, rtol=0, atol=1e-9 * (1 + abs(x) + abs(y)))
    np.testing.assert_allclose(
        g.quad_to_hbb(g.obb_to_quad(obb)), hbb, rtol=0, atol=1e-9 * (1 + abs(x) + abs(y))
    )
    np.testing.assert_allclose(g.quad_to_obb(g.hbb_to_quad(hbb)), [obb], rtol=1e-12, atol=1e-9)


@FAST
@given(cx=coord, cy=coord, w=side, h=side, a=angle)
def test_obb_quad_obb_round_trip(cx: float, cy: float, w: float, h: float, a: float) -> None:
    w, h = max(w, h), min(w, h)
    assume(w - h > 1e-6 * w)  # squares have their own test
    (back,) = g.quad_to_obb(g.obb_to_quad([[cx, cy, w, h, a]]))
    np.testing.assert_allclose(back[:4], [cx, cy, w, h], rtol=1e-9, atol=1e-6)
    assert -90.0 <= back[4] < 90.0
    assert angle_gap(back[4], a) < 1e-6
    if a >= 90 - 1e-9 or a == -90:  # the wrap is reported as -90, exactly
        assert back[4] == -90.0


@FAST
@given(cx=coord, cy=coord, s=side, a=angle)
def test_square_angle_is_in_minus_90_to_0(cx: float, cy: float, s: float, a: float) -> None:
    (back,) = g.quad_to_obb(g.obb_to_quad([[cx, cy, s, s, a]]))
    np.testing.assert_allclose(back[:4], [cx, cy, s, s], rtol=1e-9, atol=1e-6)
    assert -90.0 <= back[4] < 0.0
    assert angle_gap(back[4], a, period=90.0) < 1e-6


def test_square_and_tall_conventions() -> None:
    assert g.hbb_to_obb([[0, 0, 5, 5]])[0, 4] == -90.0
    assert g.quad_to_obb(g.hbb_to_quad([[0, 0, 5, 5]]))[0, 4] == -90.0
    assert g.quad_to_obb(rectangle(0, 0, 4, 4, 30))[0, 4] == pytest.approx(-60)
    assert g.quad_to_obb(g.hbb_to_quad([[0, 0, 3, 9]])).tolist() == [[1.5, 4.5, 9, 3, -90]]


@pytest.mark.parametrize(
    ("deg", "expected"),
    [(90 - 1e-11, -90.0), (-90 + 1e-11, -90 + 1e-11), (270 - 1e-11, -90.0), (1e-11, 1e-11)],
)
def test_angles_at_the_wrap_are_snapped_to_minus_90(deg: float, expected: float) -> None:
    (obb,) = g.quad_to_obb(rectangle(0, 0, 40, 16, deg))
    assert obb[4] == pytest.approx(expected, abs=1e-9)
    assert -90 <= obb[4] < 90
    (sq,) = g.quad_to_obb(rectangle(0, 0, 16, 16, deg))
    square = deg % 90 - 90  # a square's angle lives in [-90, 0); just below 0 means -90
    assert sq[4] == (-90.0 if square > -1e-9 else pytest.approx(square, abs=1e-9))


@pytest.mark.parametrize(
    ("deg", "expected"),
    [(30, 30), (-30, -30), (120, -60), (89.5, 89.5), (90, -90), (-90, -90), (180, 0), (0, 0)],
)
def test_quad_to_obb_of_rotated_rectangle(deg: float, expected: float) -> None:
    rect = rectangle(103.25, 57.5, 40, 16, deg)
    for order in itertools.permutations(range(4)):  # any vertex order, bow-ties included
        (obb,) = g.quad_to_obb(rect[list(order)])
        np.testing.assert_allclose(obb, [103.25, 57.5, 40, 16, expected], rtol=0, atol=1e-9)


def min_area_rects(points: np.ndarray) -> list[Polygon]:
    """Every minimum-area enclosing rectangle, by a plain loop over the convex hull's edges."""
    hull = np.asarray(shapely.convex_hull(shapely.multipoints(points)).exterior.coords)[:-1]
    rects = []
    for k in range(len(hull)):
        u = hull[(k + 1) % len(hull)] - hull[k]
        u = u / np.hypot(*u)
        v = np.array([-u[1], u[0]])
        pu, pv = hull @ u, hull @ v
        lo, hi = (pu.min(), pv.min()), (pu.max(), pv.max())
        corners = [(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])]
        rects.append(Polygon([a * u + b * v for a, b in corners]))
    best = min(r.area for r in rects)
    return [r for r in rects if r.area <= best * (1 + 1e-9)]


@FAST
@given(pts=st.lists(st.tuples(coord, coord), min_size=4, max_size=4))
def test_quad_to_obb_is_a_minimum_area_rectangle(pts: list[tuple[float, float]]) -> None:
    q = np.array(pts)
    assume(g.valid_quads(q)[0])
    (obb,) = g.quad_to_obb(q)
    # it encloses the points (checked in the box's own frame, not by a polygon overlay, which
    # GEOS gets wrong for such near-collinear inputs) ...
    t = math.radians(obb[4])
    rel = q - obb[:2]
    along = rel @ [math.cos(t), math.sin(t)]
    across = rel @ [-math.sin(t), math.cos(t)]
    tol = 1e-9 * (1 + np.abs(q).max())
    assert (np.abs(along) <= obb[2] / 2 + tol).all() and (np.abs(across) <= obb[3] / 2 + tol).all()
    # ... and no rectangle is smaller
    assert obb[2] * obb[3] <= min_area_rects(q)[0].area * (1 + 1e-9) + tol
    # and vertex order does not change the answer, even when two rectangles tie
    for shift in (1, 2, 3):
        np.testing.assert_allclose(g.quad_to_obb(np.roll(q, shift, axis=0))[0], obb, atol=1e-6)


def test_convert_dispatches_all_pairs() -> None:
    hbb = np.array([[10.0, 20.0, 50.0, 30.0], [0.0, 0.0, 4.0, 9.0]])
    boxes = {"hbb": hbb, "obb": g.hbb_to_obb(hbb), "quad": g.hbb_to_quad(hbb)}
    shapes = {"hbb": (2, 4), "obb": (2, 5), "quad": (2, 4, 2)}
    for src, dst in itertools.product(g.BOX_KINDS, repeat=2):
        out = g.convert(boxes[src], src, dst)
        assert out.shape == shapes[dst] and out.dtype == np.float64
        if dst == "quad":  # corners may start elsewhere; the polygon is the same
            out, want = g.canonical_quad(out), g.canonical_quad(boxes[dst])
        else:
            want = boxes[dst]
        np.testing.assert_allclose(out, want, atol=1e-12)
    assert not np.shares_memory(g.convert(hbb, "hbb", "hbb"), hbb)
    with pytest.raises(ValueError, match="box kinds"):
        g.convert(hbb, "hbb", "rbox")  # type: ignore[arg-type]
    assert g.convert(np.zeros((0, 5)), "obb", "quad").shape == (0, 4, 2)


def test_conversions_of_non_finite_input_give_nan_not_exceptions() -> None:
    bad = np.array([[[np.nan, 0], [1, 0], [1, 1], [0, 1]], [[0, 0], [np.inf, 0], [1, 1], [0, 1]]])
    assert np.isnan(g.quad_to_obb(bad)).all()
    assert np.isnan(g.obb_to_quad([[np.nan, 0, 1, 1, 0]])).all()
    assert np.isnan(g.obb_to_hbb([[0, 0, 1, 1, np.nan]])).all()
    assert np.isnan(g.hbb_to_obb([[0, 0, np.nan, 1]])).all()
    assert np.isnan(g.convert([[0, 0, 1, 1, np.inf]], "obb", "quad")).all()


# ------------------------------------------------------------------------ area and clipping


def test_quad_area_against_shapely_and_bow_tie() -> None:
    rng = np.random.default_rng(1)
    q = g.obb_to_quad(random_obbs(rng, 50))
    np.testing.assert_allclose(g.quad_area(q), [Polygon(p).area for p in q], rtol=1e-12)
    rect = np.array([[0, 0], [4, 0], [4, 3], [0, 3]], float)
    bowtie = rect[[0, 2, 1, 3]]
    concave = np.array([[0, 0], [4, 0], [1, 1], [0, 4]], float)  # simple, keeps its order
    assert g.quad_area([rect, bowtie, concave[::-1], concave]).tolist() == [12, 12, 4, 4]


def test_clip_hbb() -> None:
    out = g.clip_hbb([[-5, 3, 120, 90], [10, 10, 20, 20]], width=100, height=50)
    assert out.tolist() == [[0, 3, 100, 50], [10, 10, 20, 20]]


def test_clip_quads_inside_half_outside() -> None:
    rect = (0, 0, 100, 100)
    inside = np.array([[10, 10], [10, 40], [30, 40], [30, 10]], float)  # kept as given
    half = g.hbb_to_quad([[80, 20, 120, 40]])[0]
    outside = g.hbb_to_quad([[150, 150, 160, 170]])[0]
    touching = g.hbb_to_quad([[100, 0, 110, 10]])[0]  # shares an edge only: nothing kept
    quads, frac = g.clip_quads([inside, half, outside, touching], rect)
    assert frac.tolist() == [1.0, 0.5, 0.0, 0.0]
    assert np.array_equal(quads[0], inside)
    np.testing.assert_allclose(quads[1], [[80, 20], [100, 20], [100, 40], [80, 40]], atol=1e-9)
    assert not quads[2:].any()


def test_clip_quads_rotated_matches_shapely() -> None:
    rng = np.random.default_rng(2)
    q = g.obb_to_quad(random_obbs(rng, 300, size=600))
    rect = (100.0, 50.0, 450.0, 500.0)
    out, frac = g.clip_quads(q, rect)
    box = shapely.box(*rect)
    for p, o, f in zip(q, out, frac, strict=True):
        poly = Polygon(p)
        clipped = poly.intersection(box)
        assert f == pytest.approx(clipped.area / poly.area, abs=1e-12)
        if f == 1.0:
            assert np.array_equal(o, p)
        elif f > 0:
            r = Polygon(o)
            assert clipped.difference(r).area < 1e-6  # encloses the kept part ...
            env = shapely.oriented_envelope(clipped)
            assert r.area == pytest.approx(env.area, rel=1e-9)  # ... as tightly as possible
            assert np.array_equal(g.canonical_quad(o)[0], o)
        else:
            assert not o.any()


def test_clip_quads_degenerate_and_bad_rect() -> None:
    bad = [[[np.nan, 0], [1, 0], [1, 1], [0, 1]], [[0, 0], [1, 1], [2, 2], [3, 3]]]
    out, frac = g.clip_quads(bad, (0, 0, 10, 10))
    assert frac.tolist() == [0, 0] and not out.any()
    with pytest.raises(ValueError, match="clip rect"):
        g.clip_quads(bad, (10, 0, 0, 10))
    out, frac = g.clip_quads(np.zeros((0, 4, 2)), (0, 0, 1, 1))
    assert out.shape == (0, 4, 2) and frac.shape == (0,)


# --------------------------------------------------------------------------------------- IoU


def test_quad_iou_matrix_matches_per_pair_shapely() -> None:
    rng = np.random.default_rng(3)
    a = g.obb_to_quad(random_obbs(rng, 60, size=300))
    b = g.obb_to_quad(random_obbs(rng, 70, size=300))
    b[:5] = a[:5]  # identical
    b[5] = g.obb_to_quad([[*a[5].mean(0), 1.0, 0.5, 10.0]])[0]  # (probably) contained
    b[6] = a[6] + (a[6, 1] - a[6, 0])  # shares an edge
    got = g.quad_iou_matrix(a, b)
    want = np.array([[shapely_iou(p, q) for q in b] for p in a])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert (got > 0).sum() > 100  # the sample really overlaps
    np.testing.assert_allclose(np.diag(got)[:5], 1.0, atol=1e-12)
    np.testing.assert_allclose(g.quad_iou_matrix(b, a), got.T, atol=1e-12)
    np.testing.assert_allclose(g.obb_iou_matrix(g.quad_to_obb(a), g.quad_to_obb(b)), got, atol=1e-9)


def test_small_boxes_far_from_the_origin_keep_precision() -> None:
    obb = [[736.0781460443, 5799.582623502978, 1.5, 1.0, 0.0], [2e4, 1e4, 0.5, 0.25, 33.0]]
    np.testing.assert_allclose(g.quad_area(g.obb_to_quad(obb)), [1.5, 0.125], rtol=1e-9)
    np.testing.assert_allclose(np.diag(g.obb_iou_matrix(obb, obb)), 1.0, rtol=0, atol=1e-12)


@FAST
@given(
    st.lists(st.tuples(coord, coord, side, side, angle), min_size=1, max_size=6),
    st.lists(st.tuples(coord, coord, side, side, angle), min_size=1, max_size=6),
)
def test_obb_iou_matrix_hypothesis(a: list, b: list) -> None:
    qa, qb = g.obb_to_quad(a), g.obb_to_quad(b)
    want = [[shapely_iou(p, q) for q in qb] for p in qa]
    np.testing.assert_allclose(g.obb_iou_matrix(a, b), want, rtol=0, atol=1e-9)


def test_iou_falls_back_to_snap_rounding_when_geos_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shapely.intersection

    def fragile(a: object, b: object, grid_size: float | None = None) -> object:
        if grid_size is None:
            raise shapely.errors.GEOSException("TopologyException: side location conflict")
        return real(a, b, grid_size=grid_size)

    a = g.hbb_to_quad([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = g.hbb_to_quad([[5, 0, 15, 10]])
    want = g.quad_iou_matrix(a, b)
    monkeypatch.setattr(shapely, "intersection", fragile)
    np.testing.assert_allclose(g.quad_iou_matrix(a, b), want, atol=1e-6)
    assert g.rotated_nms(np.concatenate([a, b]), [3, 2, 1], 0.3).tolist() == [0, 1]


def test_hbb_iou_matrix_against_polygons_and_degenerates() -> None:
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 200, (80, 2))
    hbb = np.hstack([xy, xy + rng.uniform(1, 60, (80, 2))])
    got = g.hbb_iou_matrix(hbb[:40], hbb[40:])
    np.testing.assert_allclose(
        got, g.quad_iou_matrix(g.hbb_to_quad(hbb[:40]), g.hbb_to_quad(hbb[40:])), atol=1e-12
    )
    assert (got > 0).any()
    bad = [[0, 0, np.nan, 1], [0, 0, 0, 1], [5, 5, 1, 1], [0, 0, np.inf, 1], [0, 0, 1, 1]]
    assert g.hbb_iou_matrix(bad, [[0, 0, 1, 1]]).ravel().tolist() == [0, 0, 0, 0, 1]
    assert g.hbb_iou_matrix(np.zeros((0, 4)), hbb).shape == (0, 80)


# --------------------------------------------------------------------------------------- NMS


def reference_nms(quads: np.ndarray, scores: np.ndarray, thr: float, labels: np.ndarray) -> list:
    polys = [Polygon(q) for q in quads]
    kept: list[int] = []
    for k in sorted(range(len(quads)), key=lambda k: (-scores[k], k)):
        if all(
            labels[k] != labels[m]
            or polys[k].intersection(polys[m]).area
            / (polys[k].area + polys[m].area - polys[k].intersection(polys[m]).area)
            <= thr
            for m in kept
        ):
            kept.append(k)
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_rotated_nms_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 150
    centres = rng.uniform(0, 400, (12, 2))[rng.integers(0, 12, n)] + rng.normal(0, 6, (n, 2))
    obb = np.column_stack([centres, rng.uniform(20, 60, n), rng.uniform(8, 20, n)])
    obb = np.column_stack([obb, rng.normal(0, 15, n)])
    quads = g.obb_to_quad(obb)
    scores = np.round(rng.random(n), 1)  # many ties
    labels = rng.integers(0, 3, n)
    for thr in (0.0, 0.1, 0.3, 0.5, 0.9):
        kept = g.rotated_nms(quads, scores, thr, labels=labels)
        assert kept.dtype == np.int64
        assert kept.tolist() == reference_nms(quads, scores, thr, labels)
        same = g.rotated_nms(quads, scores, thr)
        assert same.tolist() == reference_nms(quads, scores, thr, np.zeros(n))
        assert len(same) < len(kept) or thr == 0.9  # labels really change the outcome


def test_rotated_nms_edges() -> None:
    box = g.hbb_to_quad([[0, 0, 10, 10]])[0]
    quads = np.stack([box, box, box + 100, box])
    assert g.rotated_nms(quads, [0.5, 0.9, 0.1, 0.9], 0.5).tolist() == [1, 2]  # tie: lower index
    assert g.rotated_nms(
        quads, [0.5, 0.9, 0.1, 0.9], 0.5, labels=["a", "b", "a", "a"]
    ).tolist() == [1, 3, 2]
    assert g.rotated_nms(quads, [1, 1, 1, 1], 1.0).tolist() == [0, 1, 2, 3]  # IoU 1 is not > 1
    pair = g.hbb_to_quad([[0, 0, 10, 10], [5, 0, 15, 10]])  # IoU 1/3, hbb bound is tight
    third = g.quad_iou_matrix(pair[:1], pair[1:])[0, 0]
    assert g.rotated_nms(pair, [1, 0], third).tolist() == [0, 1]
    assert g.rotated_nms(pair, [1, 0], np.nextafter(third, 0)).tolist() == [0]
    assert g.rotated_nms(np.zeros((0, 4, 2)), [], 0.5).tolist() == []
    with pytest.raises(ValueError, match="iou_threshold"):
        g.rotated_nms(quads, [1, 1, 1, 1], 1.5)
    with pytest.raises(ValueError, match="scores"):
        g.rotated_nms(quads, [1, 1], 0.5)


# -------------------------------------------------------------------------------- degenerates

DEGENERATE = {
    "nan": [[np.nan, 0], [10, 0], [10, 10], [0, 10]],
    "inf": [[0, 0], [np.inf, 0], [10, 10], [0, 10]],
    "collinear": [[0, 0], [5, 5], [10, 10], [2, 2]],
    "duplicate": [[3, 3], [3, 3], [3, 3], [3, 3]],
    "two_points": [[0, 0], [0, 0], [10, 0], [10, 0]],
    "sliver": [[0, 0], [1000, 0], [1000, 1e-10], [0, 1e-10]],
}


def test_degenerate_quads_are_invalid_with_zero_area_and_iou() -> None:
    bad = np.array(list(DEGENERATE.values()), dtype=float)
    good = g.hbb_to_quad([[0, 0, 10, 10], [2, 2, 8, 8]])
    both = np.concatenate([bad, good])
    assert g.valid_quads(both).tolist() == [False] * len(bad) + [True, True]
    assert g.quad_area(bad).tolist() == [0.0] * len(bad)
    iou = g.quad_iou_matrix(both, both)
    assert not iou[: len(bad)].any() and not iou[:, : len(bad)].any()
    assert iou[-2, -1] == pytest.approx(0.36)
    kept = g.rotated_nms(both, np.arange(len(both))[::-1], 0.3)
    assert kept.tolist() == list(range(len(both) - 1))  # degenerates neither suppress nor vanish


def test_bow_tie_rectangle_behaves_like_the_rectangle() -> None:
    rect = rectangle(50, 40, 30, 10, 25)
    bowtie = rect[[0, 2, 1, 3]]
    assert not Polygon(bowtie).is_valid  # shapely itself would give a wrong area
    assert g.valid_quads([bowtie]).all()
    assert g.quad_area([bowtie])[0] == pytest.approx(300)
    assert g.quad_iou_matrix([bowtie], [rect])[0, 0] == pytest.approx(1)
    np.testing.assert_allclose(g.quad_to_obb(bowtie), g.quad_to_obb(rect), atol=1e-9)
    _, frac = g.clip_quads([bowtie], (0, 0, 50, 100))
    assert frac[0] == pytest.approx(0.5)


small = st.integers(0, 3)
tiny_quad = st.lists(st.tuples(small, small), min_size=4, max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(tiny_quad, min_size=1, max_size=8))
def test_any_quads_on_a_tiny_grid_never_raise(quads: list) -> None:
    """Duplicates, collinear points and bow-ties galore: results stay defined and bounded."""
    q = np.array(quads, dtype=float)
    valid = g.valid_quads(q)
    iou = g.quad_iou_matrix(q, q)
    assert ((iou >= 0) & (iou <= 1)).all()
    np.testing.assert_allclose(np.diag(iou), valid.astype(float), atol=1e-12)
    np.testing.assert_allclose(iou, iou.T, atol=1e-12)
    assert (g.quad_area(q)[~valid] == 0).all() and (g.quad_area(q)[valid] > 0).all()
    assert np.isfinite(g.quad_to_obb(q)).all()
    kept = g.rotated_nms(q, np.ones(len(q)), 0.5)
    assert len(set(kept.tolist())) == len(kept) and set(np.flatnonzero(~valid)) <= set(kept)
    _, frac = g.clip_quads(q, (0, 0, 2, 2))
    assert ((frac >= 0) & (frac <= 1)).all()


# ----------------------------------------------------- real DOTA annotations (labelTxt files)


def read_dota_quads(label_dir: Path) -> np.ndarray:
    """Every quad in the labelTxt files (lines ``x1 y1 ... x4 y4 class difficult``)."""
    rows = []
    for path in sorted(label_dir.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 9 and not line.startswith(("imagesource:", "gsd:")):
                rows.append([float(v) for v in parts[:8]])
    return np.array(rows).reshape(-1, 4, 2)


@pytest.fixture(scope="module")
def dota_quads(real_data: Path) -> np.ndarray:
    quads = read_dota_quads(real_data / "dota" / "labelTxt")
    assert len(quads) > 500
    return quads


def test_real_quads_are_valid(dota_quads: np.ndarray) -> None:
    assert g.valid_quads(dota_quads).all()
    np.testing.assert_allclose(
        g.quad_area(dota_quads), shapely.area(shapely.polygons(dota_quads)), rtol=1e-12
    )


def test_real_quad_obb_quad_is_the_min_area_rectangle(dota_quads: np.ndarray) -> None:
    obb = g.quad_to_obb(dota_quads)
    assert (obb[:, 2] >= obb[:, 3]).all()
    assert ((obb[:, 4] >= -90) & (obb[:, 4] < 90)).all()
    back = g.obb_to_quad(obb)
    # Not every DOTA quad is a near-rectangle, and integer corners often give two different
    # rectangles of exactly the minimal area: ours must be one of them.
    ties = 0
    for quad, rect in zip(dota_quads, back, strict=True):
        poly, ours = Polygon(quad), Polygon(rect)
        assert poly.difference(ours).area <= 1e-6 * poly.area
        candidates = min_area_rects(quad)
        assert max(polygon_iou(ours, c) for c in candidates) > 0.99
        ties += len({(round(c.centroid.x, 6), round(c.centroid.y, 6)) for c in candidates}) > 1
    assert 0 < ties < len(dota_quads) // 5  # ties are real (about 5 % of these quads)
    # and the obb is the same whichever vertex comes first
    np.testing.assert_allclose(g.quad_to_obb(np.roll(dota_quads, 1, axis=1)), obb, atol=1e-9)


def test_real_quad_hbb_quad_is_exact(dota_quads: np.ndarray) -> None:
    hbb = g.quad_to_hbb(dota_quads)
    quads = g.hbb_to_quad(hbb)
    assert np.array_equal(g.quad_to_hbb(quads), hbb)
    assert np.array_equal(quads[:, 0], dota_quads.min(axis=1))
    assert np.array_equal(quads[:, 2], dota_quads.max(axis=1))
    np.testing.assert_allclose(
        g.convert(g.convert(hbb, "hbb", "obb"), "obb", "hbb"), hbb, atol=1e-9
    )


def test_real_quads_self_nms_and_clip(dota_quads: np.ndarray) -> None:
    iou_m = g.quad_iou_matrix(dota_quads, dota_quads)
    np.testing.assert_allclose(np.diag(iou_m), 1.0, atol=1e-12)
    _, frac = g.clip_quads(dota_quads, (0, 0, 512, 512))
    assert ((frac >= 0) & (frac <= 1)).all() and (frac == 1).any() and (frac == 0).any()


def test_clip_quads_inside_keeps_every_corner_in_the_window() -> None:
    rng = np.random.default_rng(5)
    q = g.obb_to_quad(random_obbs(rng, 300, size=600))
    rect = (100.0, 50.0, 450.0, 500.0)
    plain, frac = g.clip_quads(q, rect)
    fitted, frac_in = g.clip_quads(q, rect, inside=True)
    assert np.array_equal(frac, frac_in)
    lo, hi = np.array(rect[:2]), np.array(rect[2:])
    poked = ((plain < lo) | (plain > hi)).any(axis=(1, 2)) & (frac > 0)
    assert poked.sum() > 10  # the minimum-area rectangle escapes the window this often
    assert ((fitted[frac > 0] >= lo) & (fitted[frac > 0] <= hi)).all()  # others: zero quads
    assert np.array_equal(fitted[~poked], plain[~poked])  # rectangles already inside: unchanged
    for o, p in zip(fitted[poked], plain[poked], strict=True):
        sides = np.linalg.norm(np.roll(o, -1, 0) - o, axis=1)
        assert sides[0] == pytest.approx(sides[2]) and sides[1] == pytest.approx(sides[3])
        assert Polygon(p).buffer(1e-6).contains(Polygon(o))  # a smaller rectangle, same angle
        assert Polygon(o).area > 0
