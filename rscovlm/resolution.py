"""Dynamic resolution: ``smart_resize``, pixel bands, random resize and coordinate mapping.

Qwen-VL models see an image resized so both sides are multiples of a ``factor`` (28 px per
visual token for Qwen2/2.5-VL, 32 for Qwen3-VL) and its area lies in a pixel band. Box text is
written either in absolute pixels of that *resized* image (Qwen2.5-VL, the released RSCoVLM
checkpoints) or on a 0–1000 grid (Qwen2-VL, Qwen3-VL). :class:`CoordMap` is the one place where
coordinates move between three spaces:

- *original*: pixels of the image as stored on disk (records keep their targets here);
- *resized*: pixels of the image as fed to the model;
- *model*: the integers the model reads and writes (resized pixels or grid units).

Sizes are ``(height, width)`` for :func:`smart_resize` (the Qwen order) and ``(width, height)``
for :class:`CoordMap` (the PIL order); each signature says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm.errors import InputError
from rscovlm.geometry import obb_to_quad, quad_to_obb

__all__ = [
    "DEFAULT_FAMILY",
    "DETECTION_BAND",
    "MAX_ASPECT_RATIO",
    "MODEL_FAMILIES",
    "RSCOVLM_BAND",
    "CoordKind",
    "CoordMap",
    "ModelFamily",
    "PixelBand",
    "exact_area_resize",
    "get_family",
    "random_resize",
    "smart_resize",
    "visual_tokens",
]

MAX_ASPECT_RATIO = 200
"""Qwen-VL refuses images whose long side is more than 200 times the short side."""

CoordKind = Literal["hbb", "quad", "obb", "point"]
_ITEM_SHAPES: dict[str, tuple[int, ...]] = {"hbb": (4,), "quad": (4, 2), "obb": (5,), "point": (2,)}


def _as_int(name: str, value: object) -> int:
    """``value`` as a Python int; integral floats pass, anything else is an InputError."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InputError(f"{name} must be an integer, got {value!r}")


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 4 * 28 * 28,
    max_pixels: int = 16384 * 28 * 28,
) -> tuple[int, int]:
    """The size ``(height, width)`` a Qwen-VL model sees an image of ``height × width`` pixels at.

    Both sides become multiples of ``factor``, the area lands in ``[min_pixels, max_pixels]``
    where possible, and the aspect ratio is kept as closely as the rounding allows (WIRE §7.2):
    round each side to the nearest multiple (half to even); if the area is above the band,
    scale by ``β = √(h·w/max)`` and floor; if below, scale by ``β = √(min/(h·w))`` and ceil.
    The floating-point expressions are the reference ones, so the known quirk is kept: with
    ``min = max = S²`` a floor can lose one factor (600×600 at S = 448 gives 420×420).

    This agrees with ``transformers``' Qwen2-VL ``smart_resize`` on every input where that one
    returns positive sides. It differs from ``qwen_vl_utils`` 0.0.11 (what the released
    checkpoints were trained with) only at two edges that RSCoVLM's bands do not reach for
    ordinary images:

    - ``qwen_vl_utils`` clamps the first rounding to ``≥ factor``; transformers and we do not, so
      a side of at most ``factor / 2`` rounds to 0 (half to even), the area counts as 0 and the
      upscale branch rescales both sides (h×w 10×1900 in the RSCoVLM band: qwen_vl_utils
      28×1904, here 28×3108).
    - ``qwen_vl_utils`` can floor a side to 0 when downscaling a very elongated image into a
      small band (``max_pixels · short/long < factor²``); transformers and we clamp to
      ``factor``. We also clamp the upscale branch and the in-band case, so the result is never 0
      even with ``min_pixels = 0`` (where transformers can return 0).

    A clamped side can push the area past ``max_pixels``; no other rule can keep both the
    ratio limit and the band for such images.

    Args:
        height: Original height in pixels (positive).
        width: Original width in pixels (positive).
        factor: Side multiple: 28 (Qwen2/2.5-VL) or 32 (Qwen3-VL).
        min_pixels: Lower edge of the pixel band.
        max_pixels: Upper edge of the pixel band.

    Returns:
        ``(resized_height, resized_width)``, both positive multiples of ``factor``.

    Raises:
        InputError: A size is not a positive integer, the band is empty, or the aspect ratio is
            above 200.

    Examples:
        >>> smart_resize(512, 512, min_pixels=224 * 224, max_pixels=1008 * 1008)
        (504, 504)
        >>> smart_resize(7500, 11500, min_pixels=224 * 224, max_pixels=1008 * 1008)
        (812, 1232)
        >>> smart_resize(600, 600, min_pixels=448 * 448, max_pixels=448 * 448)
        (420, 420)
        >>> smart_resize(10, 1900, min_pixels=224 * 224, max_pixels=1008 * 1008)
        (28, 3108)
    """
    height, width = _as_int("height", height), _as_int("width", width)
    factor = _as_int("factor", factor)
    if height <= 0 or width <= 0:
        raise InputError(f"image size must be positive, got height={height} width={width}")
    if factor <= 0:
        raise InputError(f"factor must be positive, got {factor}")
    if not 0 <= min_pixels <= max_pixels or max_pixels <= 0:
        raise InputError(f"bad pixel band: min_pixels={min_pixels} max_pixels={max_pixels}")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT_RATIO:
        raise InputError(
            f"image {width}×{height} (w×h) has aspect ratio {ratio:.1f}; Qwen-VL models accept "
            f"at most {MAX_ASPECT_RATIO} (crop or pad it first)"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return max(factor, h_bar), max(factor, w_bar)


def exact_area_resize(height: int, width: int, side: int, factor: int = 28) -> tuple[int, int]:
    """The size a fixed-resolution evaluation ("``S`` × ``S`` pixels") should feed, exactly.

    Each side is the largest multiple of ``factor`` with ``side_k <= side_orig · S / √(h·w)``,
    decided in integer arithmetic: :func:`smart_resize` with ``min = max = S²`` computes the
    same bound in floating point and loses one factor on many sizes (600² at S = 224 gives
    196², which then leaves the checkpoint band and is resized AGAIN by the processor), so
    the size recorded and the size the model saw differ (EVAL_SUITE.md §1.9). Here a square
    image always lands on ``S`` (when ``S`` is a multiple of ``factor``) and never above.

    Examples:
        >>> exact_area_resize(600, 600, 224), smart_resize(600, 600, 28, 224**2, 224**2)
        ((224, 224), (196, 196))
        >>> exact_area_resize(800, 400, 448)
        (616, 308)
    """
    height, width = _as_int("height", height), _as_int("width", width)
    side, factor = _as_int("side", side), _as_int("factor", factor)
    if height <= 0 or width <= 0 or side <= 0 or factor <= 0:
        raise InputError(f"bad fixed-resolution resize: {height}×{width} (h×w) at {side}")
    area = height * width

    def fit(length: int) -> int:
        # largest k with (k·factor)² · h·w <= (length · side)²
        k = math.isqrt((length * side) ** 2 // area) // factor
        while ((k + 1) * factor) ** 2 * area <= (length * side) ** 2:
            k += 1
        while k > 0 and (k * factor) ** 2 * area > (length * side) ** 2:
            k -= 1
        return max(factor, k * factor)

    return fit(height), fit(width)


def visual_tokens(height: int, width: int, factor: int = 28) -> int:
    """LLM tokens of an image already resized to ``height × width`` (one per factor² pixels)."""
    if height <= 0 or width <= 0 or height % factor or width % factor:
        raise InputError(f"{height}×{width} (h×w) is not a resized size for factor {factor}")
    return (height // factor) * (width // factor)


@dataclass(frozen=True)
class PixelBand:
    """The allowed area ``[min_pixels, max_pixels]`` of a resized image, in pixels."""

    min_pixels: int
    max_pixels: int

    def __post_init__(self) -> None:
        lo, hi = _as_int("min_pixels", self.min_pixels), _as_int("max_pixels", self.max_pixels)
        if not 0 < lo <= hi:
            raise InputError(f"pixel band needs 0 < min_pixels <= max_pixels, got {lo}..{hi}")
        object.__setattr__(self, "min_pixels", lo)
        object.__setattr__(self, "max_pixels", hi)

    @classmethod
    def from_tokens(cls, min_tokens: int, max_tokens: int, factor: int = 28) -> PixelBand:
        """The band holding ``min_tokens`` to ``max_tokens`` visual tokens of factor² pixels."""
        return cls(min_tokens * factor * factor, max_tokens * factor * factor)

    def tokens(self, factor: int = 28) -> tuple[int, int]:
        """``(min_tokens, max_tokens)``: the token counts a resized image in the band can have."""
        area = factor * factor
        return -(-self.min_pixels // area), self.max_pixels // area

    @property
    def min_tokens(self) -> int:
        """Fewest visual tokens at factor 28 (Qwen2/2.5-VL); use :meth:`tokens` for others."""
        return self.tokens(28)[0]

    @property
    def max_tokens(self) -> int:
        """Most visual tokens at factor 28 (Qwen2/2.5-VL); use :meth:`tokens` for others."""
        return self.tokens(28)[1]

    def resize(self, height: int, width: int, factor: int = 28) -> tuple[int, int]:
        """:func:`smart_resize` of ``height × width`` into this band; returns ``(h, w)``."""
        return smart_resize(height, width, factor, self.min_pixels, self.max_pixels)

    def contains(self, height: int, width: int) -> bool:
        """Whether an image of ``height × width`` pixels has an area inside the band."""
        return self.min_pixels <= height * width <= self.max_pixels


RSCOVLM_BAND = PixelBand(64 * 28 * 28, 1296 * 28 * 28)
"""RSCoVLM-7B's band: 50176 (224²) to 1016064 (1008²) pixels (WIRE §7.1)."""
DETECTION_BAND = PixelBand(256 * 28 * 28, 1296 * 28 * 28)
"""RSCoVLM-det-7B's band: 200704 (448²) to 1016064 (1008²) pixels, no random resize."""


@dataclass(frozen=True)
class ModelFamily:
    """How a model family sizes images and writes coordinates.

    Attributes:
        name: Registry key, e.g. ``"qwen2_5_vl"``.
        factor: Side multiple of a resized image (pixels per visual token side).
        coords: ``"absolute"`` (integer pixels of the resized image) or ``"grid1000"``
            (integers on a 0–1000 grid over the image, independent of the resized size).
    """

    name: str
    factor: int
    coords: Literal["absolute", "grid1000"]


MODEL_FAMILIES: dict[str, ModelFamily] = {
    f.name: f
    for f in (
        ModelFamily("qwen2_vl", 28, "grid1000"),
        ModelFamily("qwen2_5_vl", 28, "absolute"),
        ModelFamily("qwen3_vl", 32, "grid1000"),
    )
}
DEFAULT_FAMILY = "qwen2_5_vl"
"""The released RSCoVLM checkpoints are Qwen2.5-VL fine-tunes."""


def get_family(name: str | ModelFamily) -> ModelFamily:
    """The registered family called ``name`` (``-`` and ``.`` read as ``_``; case ignored)."""
    if isinstance(name, ModelFamily):
        return name
    family = MODEL_FAMILIES.get(name)  # the canonical spelling: one lookup (hot in the runner)
    if family is not None:
        return family
    key = str(name).strip().lower().replace("-", "_").replace(".", "_")
    try:
        return MODEL_FAMILIES[key]
    except KeyError:
        known = ", ".join(sorted(MODEL_FAMILIES))
        raise InputError(f"unknown model family {name!r}; known families: {known}") from None


def random_resize(
    height: int, width: int, band: PixelBand, rng: np.random.Generator, factor: int = 28
) -> tuple[int, int]:
    """A random training size ``(h, w)`` whose area is uniform over ``band``.

    Draws a target area ``A ~ U[min_pixels, max_pixels]``, scales both sides by ``√(A/(h·w))``
    (rounded, at least 1) and snaps the result into the band with :func:`smart_resize`.

    This fixes the original code (WIRE §7.3), which drew ``s ~ U[min/(h·w), max/(h·w)]`` (an
    *area* ratio) and used it as a *side* scale, so most draws of a 512 tile clamped to the top
    of the band and the rest were uniform in side, not in area. Uses one ``rng.uniform`` draw.
    """
    height, width = _as_int("height", height), _as_int("width", width)
    smart_resize(height, width, factor, band.min_pixels, band.max_pixels)  # validate inputs
    area = rng.uniform(band.min_pixels, band.max_pixels)
    scale = math.sqrt(area / (height * width))
    h0, w0 = max(1, round(height * scale)), max(1, round(width * scale))
    # Rounding a very short side can nudge the ratio past the limit the original satisfied.
    if h0 > w0:
        h0 = min(h0, w0 * MAX_ASPECT_RATIO)
    else:
        w0 = min(w0, h0 * MAX_ASPECT_RATIO)
    return smart_resize(h0, w0, factor, band.min_pixels, band.max_pixels)


@dataclass(frozen=True)
class CoordMap:
    """Maps coordinates of one image between original, resized and model space.

    Box kinds (all in the space the method names): ``hbb`` ``(N, 4)`` ``[x1, y1, x2, y2]``;
    ``quad`` ``(N, 4, 2)`` (``(N, 8)`` accepted); ``obb`` ``(N, 5)`` ``[cx, cy, w, h, angle°]``
    (the :mod:`rscovlm.geometry` convention); ``point`` ``(N, 2)``. A single box may be given
    1-D; results are always batched. x values scale with widths, y values with heights.

    Attributes:
        orig_size: ``(width, height)`` of the original image.
        resized_size: ``(width, height)`` of the image as fed to the model.
        family: A :class:`ModelFamily` or its name; stored as the family object.
    """

    orig_size: tuple[int, int]
    resized_size: tuple[int, int]
    family: ModelFamily | str = DEFAULT_FAMILY

    def __post_init__(self) -> None:
        for field in ("orig_size", "resized_size"):
            size = tuple(getattr(self, field))
            if len(size) != 2:
                raise InputError(f"{field} must be (width, height), got {size!r}")
            w, h = (_as_int(f"{field} width", size[0]), _as_int(f"{field} height", size[1]))
            if w <= 0 or h <= 0:
                raise InputError(f"{field} must be positive, got {w}×{h}")
            object.__setattr__(self, field, (w, h))
        object.__setattr__(self, "family", get_family(self.family))

    @classmethod
    def for_image(
        cls,
        width: int,
        height: int,
        band: PixelBand,
        family: ModelFamily | str = DEFAULT_FAMILY,
        rng: np.random.Generator | None = None,
        random_resize_prob: float = 0.0,
    ) -> CoordMap:
        """The map of a ``width × height`` image as one sample draws it.

        With an ``rng`` and ``random_resize_prob > 0`` one ``rng.random()`` is drawn and, when
        it is below the probability, the size comes from :func:`random_resize`; otherwise from
        ``band.resize``. Either way the family's factor applies.
        """
        fam = get_family(family)
        if not 0.0 <= random_resize_prob <= 1.0:
            raise InputError(f"random_resize_prob must be in [0, 1], got {random_resize_prob}")
        if rng is not None and random_resize_prob > 0 and rng.random() < random_resize_prob:
            h, w = random_resize(height, width, band, rng, fam.factor)
        else:
            h, w = band.resize(height, width, fam.factor)
        return cls((width, height), (w, h), fam)

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: resized pixels per original pixel."""
        return (
            self.resized_size[0] / self.orig_size[0],
            self.resized_size[1] / self.orig_size[1],
        )

    @property
    def visual_tokens(self) -> int:
        """LLM tokens the resized image costs."""
        return visual_tokens(self.resized_size[1], self.resized_size[0], self.family.factor)

    def _model_extent(self) -> NDArray[np.float64]:
        """Model units across the image per axis: the resized size, or 1000 on the grid."""
        if self.family.coords == "grid1000":
            return np.array([1000.0, 1000.0])
        return np.asarray(self.resized_size, dtype=np.float64)

    def _map(
        self,
        values: ArrayLike,
        kind: str,
        num: ArrayLike,
        den: ArrayLike,
        truncate: bool = False,
        pre_truncate: bool = False,
    ) -> NDArray[np.float64]:
        """``v * num / den`` per axis (that exact order of operations), for any box kind.

        OBBs are mapped as their quads (so each axis scales by its own ratio) and refitted.
        """
        arr = _as_items(values, kind)
        if len(arr) == 0:
            return arr
        if kind == "obb":
            quads = self._map(obb_to_quad(arr), "quad", num, den, truncate, pre_truncate)
            return quad_to_obb(quads)
        if pre_truncate:
            arr = _truncate(arr)
        out = arr.reshape(len(arr), -1, 2) * np.asarray(num, float) / np.asarray(den, float)
        return (_truncate(out) if truncate else out).reshape(arr.shape)

    def to_model(
        self, boxes: ArrayLike, kind: CoordKind, *, pre_truncate: bool = False
    ) -> NDArray[np.int64]:
        """Original-pixel boxes as the model writes them (integers).

        ``absolute``: ``int(v · resized / original)`` per value, truncating toward zero like the
        released checkpoints' training data (WIRE §2.2 step 3). ``grid1000``: ``int(v · 1000 /
        original)``; truncation is chosen to match the absolute rule, and the result does not
        depend on the resized size. ``obb``: the box becomes a quad, the quad is mapped and
        truncated, refitted with :func:`rscovlm.geometry.quad_to_obb` and all five values are
        truncated (WIRE §2.5); on the grid the refit happens in grid units, which stretch a
        non-square image, so grid OBBs are approximate. ``pre_truncate`` first truncates each
        original value (``int(int(v) · resized / original)``, the refGeo rule of WIRE §3.1; for
        an OBB, its quad's vertices).
        """
        out = self._map(boxes, kind, self._model_extent(), self.orig_size, True, pre_truncate)
        return _truncate(out).astype(np.int64)

    def to_original(self, values: ArrayLike, kind: CoordKind) -> NDArray[np.float64]:
        """Model-space values back to original pixels, as floats with no rounding (WIRE §2.8).

        ``v · original / resized`` (absolute) or ``v · original / 1000`` (grid); OBBs go through
        their quads and are refitted in original pixels.
        """
        return self._map(values, kind, self.orig_size, self._model_extent())

    def to_resized(self, values: ArrayLike, kind: CoordKind) -> NDArray[np.float64]:
        """Original pixels to resized pixels, as floats (``v · resized / original``)."""
        return self._map(values, kind, self.resized_size, self.orig_size)

    def from_resized(self, values: ArrayLike, kind: CoordKind) -> NDArray[np.float64]:
        """Resized pixels to original pixels, as floats (``v · original / resized``)."""
        return self._map(values, kind, self.orig_size, self.resized_size)


def _truncate(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Truncate toward zero like Python's ``int()``, reading float noise as the integer it hides.

    A value that reaches us through an extra float step (e.g. GeoChat's percent boxes stored as
    ``p · W / 100`` pixels, then rescaled) can land at ``146.99999999999997`` where the original
    pipeline computed ``int(p · W_res / 100) = 147`` directly; values within 1e-9 (relative) of an
    integer are therefore snapped to it before truncation.
    """
    nearest = np.round(values)
    close = np.abs(values - nearest) <= 1e-9 * np.maximum(1.0, np.abs(values))
    return np.trunc(np.where(close, nearest, values))


def _as_items(values: ArrayLike, kind: str) -> NDArray[np.float64]:
    """``values`` as a float ``(N, *item_shape)`` array of finite numbers."""
    if kind not in _ITEM_SHAPES:
        raise InputError(f"unknown box kind {kind!r}; expected one of {sorted(_ITEM_SHAPES)}")
    shape = _ITEM_SHAPES[kind]
    arr = np.asarray(values, dtype=np.float64)
    if arr.size % math.prod(shape):
        raise InputError(f"{kind} values of shape {arr.shape} do not split into {shape} items")
    arr = arr.reshape(-1, *shape)
    if not np.isfinite(arr).all():
        raise InputError(f"{kind} values contain NaN or infinity")
    return arr
