"""The numpy path of the polygon IoU (strictly convex quads) against shapely, pair by pair.

Every check compares with plain shapely ``Polygon`` intersections or with the shapely path of
:mod:`rscovlm.geometry` itself (forced by marking quads non-convex), to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from rscovlm import geometry as g
from rscovlm.geometry import _convex

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

coord = st.floats(-2000, 6000, allow_nan=False, allow_infinity=False)
side = st.floats(0.5, 800, allow_nan=False, allow_infinity=False)
angle = st.floats(-90, 90, allow_nan=False)


def shapely_iou(p: np.ndarray, q: np.ndarray) -> float:
    a, b = Polygon(p), Polygon(q)
    if not (a.is_valid and b.is_valid) or a.area == 0 or b.area == 0:
        return 0.0
    inter = a.intersection(b).area
    return inter / (a.area + b.area - inter)


def random_obbs(rng: np.random.Generator, n: int, size: float = 300.0) -> np.ndarray:
    return np.column_stack(
        [
            rng.uniform(0, size, n),
            rng.uniform(0, size, n),
            rng.uniform(8, 120, n),
            rng.uniform(4, 60, n),
            rng.uniform(-90, 90, n),
        ]
    )


def shapely_path_matrix(
    a: np.ndarray, b: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> np.ndarray:
    """``quad_iou_matrix`` with every quad routed to shapely (nothing counts as convex)."""
    with monkeypatch.context() as m:
        m.setattr(_convex, "CONVEX_SIN", 2.0)  # no sine is > 1: nothing is convex
        assert not g._repair(a).convex.any()
        return g.quad_iou_matrix(a, b)


def test_rectangles_are_convex_and_oriented() -> None:
    rect = g.obb_to_quad(random_obbs(np.random.default_rng(0), 50))
    for q in (rect, rect[:, ::-1]):  # both windings
        oriented, convex = _convex.orient_convex(q)
        assert convex.all()
        assert (g._shoelace(oriented) > 0).all()
        np.testing.assert_allclose(g.quad_area(oriented), g.quad_area(q), rtol=1e-12)


def test_concave_flat_and_bow_tie_quads_are_not_convex() -> None:
    concave = [[0, 0], [4, 0], [1, 1], [0, 4]]
    flat = [[0, 0], [5, 0], [10, 0], [10, 10]]  # a vertex on its neighbours' line
    bowtie = [[0, 0], [4, 3], [4, 0], [0, 3]]
    _, convex = _convex.orient_convex(np.array([concave, flat, bowtie], dtype=float))
    assert not convex.any()
    # after the bow-tie repair the rectangle is convex again; the others stay on shapely
    assert g._repair([concave, flat, bowtie]).convex.tolist() == [False, False, True]


@pytest.mark.parametrize("seed", range(4))
def test_random_rotated_boxes_match_shapely(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    a = g.obb_to_quad(random_obbs(rng, 80))
    b = g.obb_to_quad(random_obbs(rng, 90))
    got = g.quad_iou_matrix(a, b)
    assert g._repair(a).convex.all() and g._repair(b).convex.all()
    want = np.array([[shapely_iou(p, q) for q in b] for p in a])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert (got > 0).sum() > 100
    np.testing.assert_allclose(shapely_path_matrix(a, b, monkeypatch), got, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(g.quad_iou_pairs(a[:80], b[:80]), np.diag(got[:, :80]))


@FAST
@given(
    st.lists(st.tuples(coord, coord, side, side, angle), min_size=1, max_size=5),
    st.lists(st.tuples(coord, coord, side, side, angle), min_size=1, max_size=5),
    st.integers(0, 3),
)
def test_hypothesis_rotated_boxes_match_shapely(a: list, b: list, roll: int) -> None:
    qa = g.obb_to_quad(a)
    qb = np.roll(g.obb_to_quad(b), roll, axis=1)[:, ::-1]  # any start vertex, other winding
    qb = np.concatenate([qb, qa])  # identical quads too
    want = [[shapely_iou(p, q) for q in qb] for p in qa]
    np.testing.assert_allclose(g.quad_iou_matrix(qa, qb), want, rtol=0, atol=1e-9)


def moved(q: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return q + np.array([dx, dy])


def test_nested_identical_touching_disjoint_and_collinear_edges() -> None:
    box = g.hbb_to_quad([[0, 0, 10, 10]])[0]
    tilted = g.obb_to_quad([[30, 40, 20, 8, 25]])[0]
    cases = {
        "identical": (box, box, 1.0),
        "identical tilted": (tilted, tilted[[2, 3, 0, 1]], 1.0),
        "nested": (box, g.hbb_to_quad([[2, 2, 7, 7]])[0], 0.25),
        "nested tilted": (tilted, g.obb_to_quad([[30, 40, 10, 4, 25]])[0], 0.25),
        "touching edge": (box, moved(box, 10, 0), 0.0),
        "touching corner": (box, moved(box, 10, 10), 0.0),
        "touching tilted": (tilted, tilted + (tilted[1] - tilted[0]), 0.0),
        "disjoint": (box, moved(box, 30, 0), 0.0),
        "disjoint, envelopes meet": (
            g.obb_to_quad([[0, 0, 20, 2, 45]])[0],
            moved(box, 6, -14),
            0.0,
        ),
        "collinear edge, half": (box, moved(box, 5, 0), 1 / 3),
        "collinear edge, inside": (box, g.hbb_to_quad([[0, 0, 10, 5]])[0], 0.5),
        "cross": (box, g.hbb_to_quad([[-5, 4, 15, 6]])[0], 20 / 120),
    }
    for name, (p, q, want) in cases.items():
        for x, y in ((p, q), (q, p)):
            got = g.quad_iou_matrix([x], [y])[0, 0]
            assert got == pytest.approx(want, abs=1e-12), name
            assert got == pytest.approx(shapely_iou(x, y), abs=1e-12), name
            if want == 0.0:
                assert got == 0.0, name  # exactly, as shapely: thresholds at 0 stay exact
            assert g.quad_iou_pairs([x], [y])[0] == got


def test_far_from_origin_keeps_precision() -> None:
    a = g.obb_to_quad([[2e4, 1e4, 0.5, 0.25, 33.0], [5e5, 5e5, 3.0, 1.0, -60.0]])
    b = g.obb_to_quad([[2e4 + 0.1, 1e4, 0.5, 0.25, 30.0], [5e5 + 0.5, 5e5 + 0.2, 3.0, 1.0, -50.0]])
    got = g.quad_iou_pairs(a, b)
    want = [shapely_iou(p, q) for p, q in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert (got > 0.2).all()


def test_mixed_convex_and_concave_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    convex = g.obb_to_quad(random_obbs(rng, 40, size=100))
    concave = convex.copy()
    centre = concave.mean(axis=1)
    concave[:, 2] = centre + 0.3 * (concave[:, 0] - centre)  # a dart: reflex at vertex 2
    both = np.concatenate([convex, concave])
    rep = g._repair(both)
    assert rep.valid.all() and rep.convex[:40].all() and not rep.convex[40:].any()
    got = g.quad_iou_matrix(both, both[::-1])
    want = np.array([[shapely_iou(p, q) for q in both[::-1]] for p in both])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert (got[40:] > 0).sum() > 40  # concave pairs really overlap
    np.testing.assert_allclose(shapely_path_matrix(both, both[::-1], monkeypatch), got, atol=1e-9)
    np.testing.assert_array_equal(g.quad_iou_pairs(both, both[::-1]), np.diag(got))


def test_degenerate_quads_behave_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    good = g.hbb_to_quad([[0, 0, 10, 10], [2, 2, 8, 8]])
    bowtie = g.hbb_to_quad([[1, 1, 9, 9]])[:, [0, 2, 1, 3]]
    bad = np.array(
        [
            [[np.nan, 0], [10, 0], [10, 10], [0, 10]],
            [[0, 0], [5, 5], [10, 10], [2, 2]],
            [[0, 0], [1000, 0], [1000, 1e-10], [0, 1e-10]],
        ]
    )
    q = np.concatenate([good, bowtie, bad])
    got = g.quad_iou_matrix(q, q)
    assert got[:, 3:].tolist() == np.zeros((6, 3)).tolist()
    assert got[3:].tolist() == np.zeros((3, 6)).tolist()
    assert got[0, 2] == pytest.approx(0.64) and got[2, 2] == pytest.approx(1.0)
    np.testing.assert_allclose(shapely_path_matrix(q, q, monkeypatch), got, atol=1e-12)
    np.testing.assert_array_equal(g.quad_iou_pairs(q, q), np.diag(got))


def test_quad_iou_pairs_shapes_and_errors() -> None:
    assert g.quad_iou_pairs(np.zeros((0, 4, 2)), np.zeros((0, 4, 2))).shape == (0,)
    with pytest.raises(ValueError, match="as many quads"):
        g.quad_iou_pairs(np.zeros((2, 4, 2)), np.zeros((3, 4, 2)))


def test_nms_gives_the_same_as_the_matrix_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    quads = g.obb_to_quad(random_obbs(rng, 200, size=150))
    scores = rng.random(200)
    for thr in (0.0, 0.2, 0.5):
        fast = g.rotated_nms(quads, scores, thr)
        with monkeypatch.context() as m:
            m.setattr(_convex, "CONVEX_SIN", 2.0)  # no sine is > 1: nothing is convex
            assert g.rotated_nms(quads, scores, thr).tolist() == fast.tolist()
        iou = g.quad_iou_matrix(quads[fast], quads[fast])
        assert (iou[~np.eye(len(fast), dtype=bool)] <= thr).all()


def test_snap_rounding_fallback_still_serves_the_shapely_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    concave = np.array([[[0, 0], [10, 0], [4, 4], [0, 10]]], dtype=float)
    box = g.hbb_to_quad([[0, 0, 5, 5]])
    want = g.quad_iou_matrix(concave, box)
    real = shapely.intersection

    def fragile(a: object, b: object, grid_size: float | None = None) -> object:
        if grid_size is None:
            raise shapely.errors.GEOSException("TopologyException: side location conflict")
        return real(a, b, grid_size=grid_size)

    monkeypatch.setattr(shapely, "intersection", fragile)
    np.testing.assert_allclose(g.quad_iou_matrix(concave, box), want, atol=1e-6)


def test_large_inputs_use_the_sweep_and_find_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    a = g.obb_to_quad(random_obbs(rng, 300, size=400))
    b = g.obb_to_quad(random_obbs(rng, 300, size=400))
    tree = g.quad_iou_matrix(a, b)
    monkeypatch.setattr(_convex, "_BROADCAST_CELLS", 10**9)
    np.testing.assert_array_equal(g.quad_iou_matrix(a, b), tree)


def _broadcast_pairs(
    ha: np.ndarray, hb: np.ndarray, ga: np.ndarray, gb: np.ndarray
) -> set[tuple[int, int]]:
    hit = (ha[:, None, 0] <= hb[None, :, 2]) & (hb[None, :, 0] <= ha[:, None, 2])
    hit &= (ha[:, None, 1] <= hb[None, :, 3]) & (hb[None, :, 1] <= ha[:, None, 3])
    hit &= ga[:, None] == gb[None, :]
    return set(zip(*(x.tolist() for x in np.nonzero(hit)), strict=True))


@pytest.mark.parametrize("seed", range(8))
def test_grouped_sweep_finds_exactly_the_meeting_pairs_of_each_group(seed: int) -> None:
    # Integer corners on a small grid: many equal ends, touching edges, zero-width boxes and
    # boxes in one column (the x sweep then gives way to y), the cases a rank slip would miss.
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 400, 2)

    def boxes(k: int) -> np.ndarray:
        xy = rng.integers(0, 40, (k, 2)).astype(float)
        if seed % 2:
            xy[:, 0] = 3.0  # one column: every x interval meets
        return np.concatenate([xy, xy + rng.integers(0, 8, (k, 2))], axis=1)

    ha, hb = boxes(n), boxes(m)
    ga, gb = rng.integers(-2, 3, n) * 1000, rng.integers(-2, 3, m) * 1000
    i, j = _convex.envelope_pairs(ha, hb, ga, gb)
    found = list(zip(i.tolist(), j.tolist(), strict=True))
    assert len(found) == len(set(found))  # each pair once
    assert set(found) == _broadcast_pairs(ha, hb, ga, gb)


def test_grouped_iou_is_the_per_group_matrix_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    a = g.obb_to_quad(random_obbs(rng, 500, size=600))
    b = g.obb_to_quad(random_obbs(rng, 200, size=600))
    a[:3] = [[0, 0], [10, 0], [4, 4], [0, 10]]  # concave: the shapely path inside the batch
    ga, gb = rng.integers(0, 4, len(a)), rng.integers(0, 4, len(b))
    i, j, iou = g.quad_iou_grouped(a, ga, b, gb)
    got = np.zeros((len(a), len(b)))
    got[i, j] = iou
    want = np.zeros_like(got)
    for k in range(4):
        ia, ib = np.flatnonzero(ga == k), np.flatnonzero(gb == k)
        want[np.ix_(ia, ib)] = g.quad_iou_matrix(a[ia], b[ib])
    assert (iou > 0).all() and len(iou) == int((want > 0).sum())
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="one group per quad"):
        g.quad_iou_grouped(a, ga[:-1], b, gb)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_grouped_iou_in_small_batches_on_threads_is_the_one_batch_result(
    threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches clipped on several threads write disjoint slices: the same pairs and the same
    bits as one batch on one thread, whatever the thread count."""
    from rscovlm.geometry import _iou

    rng = np.random.default_rng(12)
    a = g.obb_to_quad(random_obbs(rng, 400, size=300))
    b = g.obb_to_quad(random_obbs(rng, 300, size=300))
    ga, gb = rng.integers(0, 3, len(a)), rng.integers(0, 3, len(b))
    want = g.quad_iou_grouped(a, ga, b, gb)
    assert len(want[0]) > 64  # several batches below
    monkeypatch.setattr(_iou, "PAIR_CHUNK", 16)
    monkeypatch.setenv("RSCOVLM_THREADS", threads)
    assert _iou._threads() == int(threads)
    for w, got in zip(want, g.quad_iou_grouped(a, ga, b, gb), strict=True):
        np.testing.assert_array_equal(got, w)


def test_clipping_either_way_round_gives_shapelys_area() -> None:
    """``intersection_area`` clips whichever quad fewer edges of the other cut: a pair where
    one side cuts three edges and the other one edge, in both argument orders, is shapely's."""
    big = g.as_quads([[[0, 0], [10, 0], [10, 10], [0, 10]]]).astype(float)
    corner = g.obb_to_quad([[10.0, 10.0, 6.0, 5.0, 20.0]])  # pokes out over one corner
    qa, qb = g._repair(big), g._repair(corner)
    cut_a = _convex._any4(_convex._depths(qa.oriented, qb.oriented) < 0).sum()
    cut_b = _convex._any4(_convex._depths(qb.oriented, qa.oriented) < 0).sum()
    assert cut_a != cut_b  # the two directions take different numbers of steps
    want = Polygon(big[0]).intersection(Polygon(corner[0])).area
    for a, b in ((qa, qb), (qb, qa)):
        got = _convex.intersection_area(a.oriented, b.oriented)[0]
        assert got == pytest.approx(want, rel=1e-12)
