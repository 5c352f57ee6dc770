"""smart_resize, pixel bands, model families and random resize (WIRE_FORMATS.md §7)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rscovlm.errors import InputError
from rscovlm.resolution import (
    DEFAULT_FAMILY,
    DETECTION_BAND,
    MODEL_FAMILIES,
    RSCOVLM_BAND,
    ModelFamily,
    PixelBand,
    get_family,
    random_resize,
    smart_resize,
    visual_tokens,
)

BAND = (224 * 224, 1008 * 1008)


# --- smart_resize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((512, 512), (504, 504)),
        ((800, 800), (812, 812)),
        ((1024, 1024), (1008, 1008)),
        ((4000, 4000), (1008, 1008)),
        ((7500, 11500), (812, 1232)),
        ((2048, 3584), (756, 1316)),
    ],
)
def test_wire_table_in_the_rscovlm_band(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert smart_resize(*size, 28, *BAND) == expected
    assert RSCOVLM_BAND.resize(*size) == expected


@pytest.mark.parametrize(("side", "expected"), [(224, 196), (448, 420)])
def test_floating_point_quirk_with_a_single_size_band(side: int, expected: int) -> None:
    assert smart_resize(600, 600, 28, side * side, side * side) == (expected, expected)
    assert smart_resize(800, 800, 28, side * side, side * side) == (side, side)


def test_round_half_to_even() -> None:
    # 42/28 = 1.5 -> 2 and 70/28 = 2.5 -> 2, so both sides become 56.
    assert smart_resize(42, 70, 28, 0, 10**9) == (56, 56)


def test_defaults_are_qwen_vl_utils_constants() -> None:
    assert smart_resize(20, 20) == (56, 56)  # 4·28² minimum
    assert smart_resize(28 * 200, 28 * 200) == (28 * 128, 28 * 128)  # 16384·28² maximum


@pytest.mark.parametrize(("height", "width"), [(0, 10), (10, 0), (-5, 10), (10, -1)])
def test_non_positive_sizes_raise(height: int, width: int) -> None:
    with pytest.raises(InputError, match="positive"):
        smart_resize(height, width)


def test_aspect_ratio_limit() -> None:
    assert smart_resize(10, 2000) == (28, 812)  # exactly 200 is allowed
    with pytest.raises(InputError, match=r"aspect ratio 200\.1"):
        smart_resize(10, 2001)
    with pytest.raises(ValueError, match="at most 200"):  # InputError is a ValueError
        smart_resize(3000, 14)


def test_bad_arguments_raise() -> None:
    with pytest.raises(InputError, match="integer"):
        smart_resize(10.5, 20)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="integer"):
        smart_resize(True, 20)
    with pytest.raises(InputError, match="band"):
        smart_resize(100, 100, 28, 2000, 1000)
    with pytest.raises(InputError, match="factor"):
        smart_resize(100, 100, 0)
    assert smart_resize(512.0, np.int64(512), 28, *BAND) == (504, 504)  # type: ignore[arg-type]


def test_never_returns_zero() -> None:
    # transformers returns 0 here (no band to lift the side); qwen_vl_utils and we give factor.
    assert smart_resize(5, 300, 28, 0, 10**9) == (28, 308)
    # qwen_vl_utils floors the short side to 0 here; transformers and we clamp to factor.
    # The clamp leaves the area above max_pixels: nothing else keeps both the band and ratio.
    assert smart_resize(28, 5600, 28, 28 * 28, 50176) == (28, 3164)


def _qwen_vl_utils_rule(h: int, w: int, f: int, lo: int, hi: int) -> tuple[int, int]:
    """WIRE §7.2 written out: the first rounding clamps to >= f, the floor does not."""
    hb, wb = max(f, round(h / f) * f), max(f, round(w / f) * f)
    if hb * wb > hi:
        beta = math.sqrt(h * w / hi)
        hb, wb = math.floor(h / beta / f) * f, math.floor(w / beta / f) * f
    elif hb * wb < lo:
        beta = math.sqrt(lo / (h * w))
        hb, wb = math.ceil(h * beta / f) * f, math.ceil(w * beta / f) * f
    return hb, wb


def _random_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Log-uniform sizes from 1 to 30000 px, aspect ratio within the 200 limit."""
    sizes = np.exp(rng.uniform(0, math.log(30000), size=(3 * n, 2))).astype(np.int64) + 1
    ratio = sizes.max(axis=1) / sizes.min(axis=1)
    return sizes[ratio <= 200][:n]


BANDS = [
    (4 * 28 * 28, 16384 * 28 * 28),
    (56 * 56, 28 * 28 * 1280),
    (RSCOVLM_BAND.min_pixels, RSCOVLM_BAND.max_pixels),
    (DETECTION_BAND.min_pixels, DETECTION_BAND.max_pixels),
    (224 * 224, 224 * 224),
    (448 * 448, 448 * 448),
    (28 * 28, 4 * 28 * 28),
    (1, 100_000),
]


@pytest.mark.parametrize("factor", [28, 32])
def test_agrees_with_transformers_on_random_sizes(factor: int) -> None:
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    theirs = module.smart_resize
    rng = np.random.default_rng(20260222 + factor)
    checked = 0
    for lo, hi in BANDS:
        for h, w in _random_sizes(rng, 800).tolist():
            expected = theirs(h, w, factor, lo, hi)
            assert min(expected) > 0
            assert smart_resize(h, w, factor, lo, hi) == expected, (h, w, factor, lo, hi)
            checked += 1
    assert checked >= 6000  # two factors: >= 12000 sizes in all


@pytest.mark.parametrize("factor", [28, 32])
def test_transformers_zero_sides_are_clamped(factor: int) -> None:
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    rng = np.random.default_rng(7)
    zeros = 0
    for h, w in _random_sizes(rng, 2000).tolist():
        expected = module.smart_resize(h, w, factor, 0, 30000 * 30000)
        zeros += 0 in expected
        assert smart_resize(h, w, factor, 0, 30000 * 30000) == tuple(
            max(factor, v) for v in expected
        )
    assert zeros > 0


def test_aspect_ratio_errors_agree_with_transformers() -> None:
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    for h, w in [(1, 201), (300, 60001), (30000, 149)]:
        with pytest.raises(ValueError, match="aspect ratio"):
            module.smart_resize(h, w)
        with pytest.raises(InputError):
            smart_resize(h, w)


@pytest.mark.parametrize("factor", [28, 32])
def test_differs_from_qwen_vl_utils_only_at_the_documented_edges(factor: int) -> None:
    rng = np.random.default_rng(11 + factor)
    differ = 0
    for lo, hi in BANDS:
        for h, w in _random_sizes(rng, 500).tolist():
            ref = _qwen_vl_utils_rule(h, w, factor, lo, hi)
            tiny_side = round(min(h, w) / factor) == 0  # 0 without qwen_vl_utils' clamp
            if not tiny_side and min(ref) > 0:
                assert smart_resize(h, w, factor, lo, hi) == ref, (h, w, lo, hi)
            elif smart_resize(h, w, factor, lo, hi) != ref:
                differ += 1
    assert differ > 0


def test_results_are_multiples_of_factor_inside_the_band() -> None:
    rng = np.random.default_rng(3)
    for h, w in _random_sizes(rng, 3000).tolist():
        if min(h, w) < 14:
            continue
        rh, rw = RSCOVLM_BAND.resize(h, w)
        assert rh % 28 == 0
        assert rw % 28 == 0
        assert RSCOVLM_BAND.contains(rh, rw), (h, w, rh, rw)


# --- PixelBand, visual tokens, families ---------------------------------------------------------


def test_band_constants() -> None:
    assert (RSCOVLM_BAND.min_pixels, RSCOVLM_BAND.max_pixels) == (50176, 1016064)
    assert (DETECTION_BAND.min_pixels, DETECTION_BAND.max_pixels) == (200704, 1016064)
    assert PixelBand.from_tokens(64, 1296) == RSCOVLM_BAND
    assert RSCOVLM_BAND.tokens() == (64, 1296)
    assert (RSCOVLM_BAND.min_tokens, RSCOVLM_BAND.max_tokens) == (64, 1296)
    assert DETECTION_BAND.tokens(32) == (196, 992)  # ceil / floor of the pixel edges


def test_band_validation_and_contains() -> None:
    with pytest.raises(InputError):
        PixelBand(0, 10)
    with pytest.raises(InputError):
        PixelBand(20, 10)
    with pytest.raises(InputError):
        PixelBand(1.5, 10)  # type: ignore[arg-type]
    band = PixelBand(100, 200)
    assert band.contains(10, 10)
    assert band.contains(10, 20)
    assert not band.contains(9, 11)
    assert not band.contains(15, 14)
    with pytest.raises(AttributeError):
        band.min_pixels = 5  # type: ignore[misc]


def test_band_resize_uses_the_factor() -> None:
    assert RSCOVLM_BAND.resize(512, 512, 32) == (512, 512)
    assert DETECTION_BAND.resize(224, 224) == (448, 448)


def test_visual_tokens() -> None:
    assert visual_tokens(504, 504) == 324
    assert visual_tokens(1008, 1008) == 1296
    assert visual_tokens(512, 512, 32) == 256
    with pytest.raises(InputError):
        visual_tokens(500, 504)


def test_model_families() -> None:
    assert get_family("qwen2_vl") == ModelFamily("qwen2_vl", 28, "grid1000")
    assert get_family("qwen2_5_vl") == ModelFamily("qwen2_5_vl", 28, "absolute")
    assert get_family("qwen3_vl") == ModelFamily("qwen3_vl", 32, "grid1000")
    assert get_family("Qwen2.5-VL") is MODEL_FAMILIES["qwen2_5_vl"]
    assert get_family(DEFAULT_FAMILY).coords == "absolute"
    fam = ModelFamily("custom", 14, "absolute")
    assert get_family(fam) is fam
    with pytest.raises(InputError, match="qwen2_5_vl, qwen2_vl, qwen3_vl"):
        get_family("llava")


# --- random resize ------------------------------------------------------------------------------


def _ks_uniform(samples: np.ndarray, lo: float, hi: float) -> float:
    """Kolmogorov–Smirnov statistic of ``samples`` against Uniform(lo, hi)."""
    x = np.sort((samples - lo) / (hi - lo))
    n = len(x)
    upper = np.arange(1, n + 1) / n - x
    lower = x - np.arange(n) / n
    return float(max(upper.max(), lower.max()))


def test_random_resize_areas_are_uniform_in_the_band() -> None:
    rng = np.random.default_rng(2026)
    n = 4000
    band = RSCOVLM_BAND
    # A fine factor shows the drawn area itself: KS at alpha = 0.001.
    areas = np.array([np.prod(random_resize(512, 512, band, rng, factor=2)) for _ in range(n)])
    assert _ks_uniform(areas, band.min_pixels, band.max_pixels) < 1.95 / math.sqrt(n)
    # At factor 28 the areas are quantised to (28k)², so allow half the widest gap on top.
    areas = np.array([np.prod(random_resize(512, 512, band, rng)) for _ in range(n)])
    assert _ks_uniform(areas, band.min_pixels, band.max_pixels) < 0.06
    assert areas.min() >= band.min_pixels
    assert areas.max() <= band.max_pixels
    # The original bug sent most draws of a 512 tile to the top of the band.
    assert np.mean(areas == 1008 * 1008) < 0.05


def test_random_resize_keeps_the_aspect_ratio_within_rounding() -> None:
    rng = np.random.default_rng(5)
    for _ in range(2000):
        h = int(rng.integers(100, 8000))
        w = int(h * rng.uniform(0.25, 4.0))
        rh, rw = random_resize(h, w, RSCOVLM_BAND, rng)
        tol = 28 + 1
        # Some common scale k must give both sides within one factor.
        k_lo = max((rh - tol) / h, (rw - tol) / w)
        k_hi = min((rh + tol) / h, (rw + tol) / w)
        assert k_lo <= k_hi, (h, w, rh, rw)


def test_random_resize_is_seeded_and_validates() -> None:
    a = [random_resize(700, 300, RSCOVLM_BAND, np.random.default_rng(9)) for _ in range(3)]
    assert len(set(a)) == 1
    rng = np.random.default_rng(1)
    sizes = {random_resize(700, 300, RSCOVLM_BAND, rng, factor=32) for _ in range(50)}
    assert len(sizes) > 10
    assert all(h % 32 == 0 and w % 32 == 0 for h, w in sizes)
    with pytest.raises(InputError):
        random_resize(10, 3000, RSCOVLM_BAND, rng)
    # An extreme but legal ratio never trips the limit after rounding the short side.
    for _ in range(200):
        h, w = random_resize(7, 1400, RSCOVLM_BAND, rng)
        assert h % 28 == 0
        assert w % 28 == 0
