"""CoordMap: original pixels <-> resized pixels <-> model coordinates (WIRE §2.2, 2.5, 2.9, 4.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rscovlm.errors import InputError
from rscovlm.geometry import canonical_quad, obb_to_quad, quad_to_obb
from rscovlm.resolution import (
    MODEL_FAMILIES,
    RSCOVLM_BAND,
    CoordMap,
    PixelBand,
    get_family,
    smart_resize,
)

POLY = [[150.2, 230.7], [100.5, 230.7], [100.5, 200.0], [150.2, 200.0]]


def _line(q: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in q.reshape(-1))


# --- worked examples ----------------------------------------------------------------------------


def test_wire_2_9_dota_tile_quad_and_obb() -> None:
    cmap = CoordMap.for_image(512, 512, RSCOVLM_BAND)
    assert cmap.resized_size == (504, 504)
    assert cmap.family == get_family("qwen2_5_vl")
    quad = cmap.to_model(POLY, "quad")
    assert quad.dtype == np.int64
    assert quad.tolist() == [[[147, 227], [98, 227], [98, 196], [147, 196]]]
    assert _line(canonical_quad(quad)) == "98,196,147,196,147,227,98,227"
    assert _line(canonical_quad(quad, clockwise=False)) == "98,196,98,227,147,227,147,196"
    obb = cmap.to_model(quad_to_obb(POLY), "obb")
    assert obb.tolist() == [[122, 211, 49, 31, 0]]


def test_wire_4_3_zoom_tool_call_and_crop_size() -> None:
    cmap = CoordMap.for_image(4096, 4096, RSCOVLM_BAND)
    assert cmap.resized_size == (1008, 1008)
    assert cmap.to_model([953, 2368, 1401, 2796], "hbb").tolist() == [[234, 582, 344, 688]]
    crop = CoordMap.for_image(1401 - 953, 2796 - 2368, RSCOVLM_BAND)
    assert crop.orig_size == (448, 428)
    assert crop.resized_size == (448, 420)


def test_truncation_toward_zero_is_the_python_int_rule() -> None:
    cmap = CoordMap((512, 300), (504, 280), "qwen2_5_vl")
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 600, size=(500, 2))
    expected = [[int(x * 504 / 512), int(y * 280 / 300)] for x, y in pts.tolist()]
    assert cmap.to_model(pts, "point").tolist() == expected


def test_pre_truncate_is_the_refgeo_rule() -> None:
    cmap = CoordMap((512, 512), (504, 504))
    # int(100.9 * 504/512) = 99 but int(int(100.9) * 504/512) = int(98.44) = 98.
    assert cmap.to_model([100.9, 0, 0, 0], "hbb").tolist() == [[99, 0, 0, 0]]
    assert cmap.to_model([100.9, 0, 0, 0], "hbb", pre_truncate=True).tolist() == [[98, 0, 0, 0]]
    quad = cmap.to_model(POLY, "quad", pre_truncate=True)
    expected = [[int(int(x) * 504 / 512), int(int(y) * 504 / 512)] for x, y in POLY]
    assert quad.tolist() == [expected]


def test_grid1000_ignores_the_resized_size() -> None:
    a = CoordMap((2000, 1000), (1400, 700), "qwen2_vl")
    b = CoordMap((2000, 1000), (896, 448), "qwen2_vl")
    box = [[333.3, 250.5, 2000, 1000]]
    assert a.to_model(box, "hbb").tolist() == [[166, 250, 1000, 1000]]
    assert b.to_model(box, "hbb").tolist() == a.to_model(box, "hbb").tolist()
    assert a.to_original([[500, 500]], "point").tolist() == [[1000.0, 500.0]]


def test_to_original_is_float_with_no_rounding() -> None:
    cmap = CoordMap((512, 512), (504, 504))
    back = cmap.to_original([[98, 196, 147, 227]], "hbb")
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, [[98 * 512 / 504, 196 * 512 / 504, 149.333333, 230.603174]])


def test_to_resized_and_from_resized_are_inverse_floats() -> None:
    cmap = CoordMap((1000, 500), (504, 252), "qwen3_vl")
    quads = np.array(POLY)[None]
    res = cmap.to_resized(quads, "quad")
    np.testing.assert_allclose(res[0, 0], [150.2 * 0.504, 230.7 * 0.504])
    np.testing.assert_allclose(cmap.from_resized(res, "quad"), quads)
    assert cmap.scale == (0.504, 0.504)


def test_for_image_random_resize_and_family_factor() -> None:
    band = RSCOVLM_BAND
    rng = np.random.default_rng(4)
    state = rng.bit_generator.state
    fixed = CoordMap.for_image(800, 600, band, "qwen2_5_vl", rng=rng, random_resize_prob=0.0)
    assert fixed.resized_size[::-1] == band.resize(600, 800)
    assert rng.bit_generator.state == state  # probability 0 draws nothing
    q3 = CoordMap.for_image(800, 600, band, "qwen3_vl")
    assert q3.resized_size == (800, 608)
    assert q3.visual_tokens == 25 * 19
    drawn = {
        CoordMap.for_image(800, 600, band, "qwen3_vl", rng, 1.0).resized_size for _ in range(40)
    }
    assert len(drawn) > 10
    assert all(w % 32 == 0 and h % 32 == 0 for w, h in drawn)
    again = [
        CoordMap.for_image(800, 600, band, rng=np.random.default_rng(1), random_resize_prob=0.5)
        for _ in range(2)
    ]
    assert again[0] == again[1]
    with pytest.raises(InputError):
        CoordMap.for_image(800, 600, band, random_resize_prob=1.5)


def test_validation() -> None:
    with pytest.raises(InputError, match="known families"):
        CoordMap((10, 10), (28, 28), "gpt")
    with pytest.raises(InputError):
        CoordMap((0, 10), (28, 28))
    with pytest.raises(InputError):
        CoordMap((10, 10, 3), (28, 28))  # type: ignore[arg-type]
    cmap = CoordMap((10, 10), (28, 28))
    with pytest.raises(InputError, match="box kind"):
        cmap.to_model([1, 2, 3, 4], "box")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="NaN"):
        cmap.to_model([1, 2, np.nan, 4], "hbb")
    with pytest.raises(InputError, match="split"):
        cmap.to_model([1, 2, 3], "hbb")


def test_shapes_single_and_empty_inputs() -> None:
    cmap = CoordMap((512, 512), (504, 504))
    assert cmap.to_model(np.array(POLY).reshape(1, 8), "quad").shape == (1, 4, 2)
    assert cmap.to_model([10, 20], "point").shape == (1, 2)
    for kind, shape in [("hbb", (0, 4)), ("quad", (0, 4, 2)), ("obb", (0, 5)), ("point", (0, 2))]:
        assert cmap.to_model(np.zeros(0), kind).shape == shape
        assert cmap.to_model(np.zeros(0), kind).dtype == np.int64
        assert cmap.to_original(np.zeros(0), kind).shape == shape


# --- properties ---------------------------------------------------------------------------------

FAMILIES = sorted(MODEL_FAMILIES)


@st.composite
def _maps(draw: st.DrawFn, square: bool = False) -> CoordMap:
    w = draw(st.integers(16, 9000))
    h = w if square else draw(st.integers(max(16, w // 8), min(9000, w * 8)))
    family = get_family(draw(st.sampled_from(FAMILIES)))
    band = draw(st.sampled_from([RSCOVLM_BAND, PixelBand(28 * 28, 4096 * 28 * 28)]))
    rh, rw = smart_resize(h, w, family.factor, band.min_pixels, band.max_pixels)
    return CoordMap((w, h), (rw, rh), family)


def _unit(cmap: CoordMap) -> np.ndarray:
    """One model unit, in original pixels, per axis."""
    extent = cmap.resized_size if cmap.family.coords == "absolute" else (1000, 1000)
    return np.asarray(cmap.orig_size) / np.asarray(extent)


def _points(draw: st.DrawFn, cmap: CoordMap, n: int) -> np.ndarray:
    u = draw(st.lists(st.floats(0, 1), min_size=2 * n, max_size=2 * n))
    return np.asarray(u).reshape(n, 2) * np.asarray(cmap.orig_size)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["hbb", "quad", "point"]))
def test_round_trip_within_one_model_unit(data: st.DataObject, kind: str) -> None:
    cmap = data.draw(_maps())
    n = {"hbb": 2, "quad": 4, "point": 1}[kind]
    boxes = _points(data.draw, cmap, n * 3).reshape(3, -1)
    model = cmap.to_model(boxes, kind)  # type: ignore[arg-type]
    back = cmap.to_original(model, kind).reshape(3, -1, 2)  # type: ignore[arg-type]
    err = boxes.reshape(3, -1, 2) - back
    unit = _unit(cmap)
    assert (err >= -1e-9 * unit).all()  # truncation only ever moves toward the origin
    assert (err < unit * (1 + 1e-9)).all()
    if cmap.family.coords == "grid1000":
        assert model.min() >= 0
        assert model.max() <= 1000
    else:
        assert (model.reshape(3, -1, 2) <= np.asarray(cmap.resized_size)).all()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_pre_truncated_round_trip_within_one_pixel_and_one_unit(data: st.DataObject) -> None:
    cmap = data.draw(_maps())
    pts = _points(data.draw, cmap, 8)
    back = cmap.to_original(cmap.to_model(pts, "point", pre_truncate=True), "point")
    err = pts - back
    assert (err > -1e-9).all()
    assert (err < 1 + _unit(cmap) * (1 + 1e-9)).all()


def _vertex_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance from a corner of ``a`` to the nearest corner of ``b`` (order-free)."""
    d = np.linalg.norm(a[:, :, None] - b[:, None, :], axis=-1)
    return float(max(d.min(axis=2).max(), d.min(axis=1).max()))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_obb_round_trip(data: st.DataObject) -> None:
    # Grid units stretch a non-square image, so grid OBBs are only faithful on square images.
    cmap = data.draw(st.one_of(_maps(square=True), _maps()))
    assume(cmap.family.coords == "absolute" or cmap.orig_size[0] == cmap.orig_size[1])
    unit = float(_unit(cmap).max())
    w, h = cmap.orig_size
    cx = data.draw(st.floats(0.2, 0.8)) * w
    cy = data.draw(st.floats(0.2, 0.8)) * h
    long_side = data.draw(st.floats(4, 0.5 * min(w, h))) + 4 * unit
    short = long_side * data.draw(st.floats(0.1, 1.0))
    angle = data.draw(st.floats(-90, 89.99))
    obb = np.array([[cx, cy, long_side, short, angle]])
    model = cmap.to_model(obb, "obb")
    assert model.dtype == np.int64
    back = cmap.to_original(model, "obb")
    # Truncating the quad, the centre and the sides costs a few units; the angle up to 1° turns
    # the corners about the centre. smart_resize may stretch one axis a little more than the
    # other, which turns a rotated rectangle into a parallelogram; each refit absorbs that.
    half_diag = math.hypot(long_side, short) / 2
    sx, sy = cmap.scale
    stretch = abs(sx / sy - 1) if cmap.family.coords == "absolute" else 0.0
    tol = 4 * unit + half_diag * (math.radians(1.0) * 1.05 + 2 * stretch)
    assert _vertex_gap(obb_to_quad(obb), obb_to_quad(back)) <= tol


def test_obb_model_values_follow_wire_2_5() -> None:
    cmap = CoordMap((1000, 1000), (1008, 1008))
    obb = np.array([[500.0, 400.0, 300.0, 100.0, 29.95], [500.0, 400.0, 300.0, 100.0, -29.95]])
    model = cmap.to_model(obb, "obb")
    expected = np.trunc(quad_to_obb(np.trunc(obb_to_quad(obb) * 1008 / 1000)))
    assert model.tolist() == expected.astype(int).tolist()
    assert model[:, 4].tolist() == [29, -29]  # the angle truncates toward zero
    assert (abs(model[:, 2] - 302) <= 1).all()
    pre = cmap.to_model(obb, "obb", pre_truncate=True)
    quads = np.trunc(np.trunc(obb_to_quad(obb)) * 1008 / 1000)
    assert pre.tolist() == np.trunc(quad_to_obb(quads)).astype(int).tolist()


def test_float_noise_from_an_extra_step_is_not_truncated_down() -> None:
    # GeoChat/TEOChatlas boxes: the original wrote int(p * W_res / 100) directly; rscovlm stores
    # p * W / 100 pixels first, so the same integer must come out of CoordMap.
    rng = np.random.default_rng(0)
    mismatches = 0
    for _ in range(3000):
        w, h = (int(v) for v in rng.integers(100, 2000, size=2))
        cmap = CoordMap.for_image(w, h, RSCOVLM_BAND)
        pct = rng.integers(0, 101, size=4)
        stored = pct * np.array([w, h, w, h]) / 100
        got = cmap.to_model(stored, "hbb")[0]
        rw, rh = cmap.resized_size
        want = [int(pct[0] * rw / 100), int(pct[1] * rh / 100)]
        want += [int(pct[2] * rw / 100), int(pct[3] * rh / 100)]
        mismatches += int(list(got) != want)
    assert mismatches == 0
