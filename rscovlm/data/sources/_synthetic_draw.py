"""Drawing primitives of the procedural scenes: ground texture, object shapes, position names."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["COLOURS", "ground_field", "object_polygons", "position_name"]

#: Colour names and RGB values; the first four are the vehicle palette.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "blue": (40, 70, 205),
    "white": (238, 238, 238),
    "yellow": (228, 205, 40),
    "black": (25, 25, 25),
    "green": (60, 150, 70),
}


def ground_field(
    rng: np.random.Generator | None,
    width: int,
    height: int,
    tone: tuple[int, int, int],
    coarse: NDArray[np.float64] | None = None,
    y0: int = 0,
    total: int | None = None,
) -> NDArray[np.uint8]:
    """A smooth textured ground ``(height, width, 3)`` uint8 around the RGB ``tone``.

    A coarse random grid is interpolated bilinearly (so windows of one big image, given the same
    ``coarse`` grid, ``y0`` offset and ``total`` side, join seamlessly); with ``rng`` a fine
    seeded grain is added (small scenes only: grain compresses badly in huge rasters).
    """
    if coarse is None:
        if rng is None:
            raise ValueError("ground_field needs rng or a coarse grid")
        coarse = rng.uniform(0, 1, (6, 6, 3))
    total = total or max(width, height)
    # Bilinear interpolation is separable: field_c = Wy @ coarse_c @ Wx.T (BLAS, no gathers).
    wy = _linear_weights(np.arange(y0, y0 + height), total, coarse.shape[0]).astype(np.float32)
    wx = _linear_weights(np.arange(width), total, coarse.shape[1]).astype(np.float32)
    coarse = coarse.astype(np.float32)
    field = np.stack([wy @ coarse[:, :, c] @ wx.T for c in range(3)], axis=-1)
    out = np.asarray(tone, dtype=np.float32) + (field - np.float32(0.5)) * np.float32(50.0)
    if rng is not None:
        out = out + rng.normal(0.0, 6.0, (height, width, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def _linear_weights(pos: NDArray[np.int64], total: int, n: int) -> NDArray[np.float64]:
    """``(len(pos), n)`` linear-interpolation weights of pixel centres on an ``n - 1`` grid."""
    t = (pos + 0.5) / total * (n - 2)
    i = np.minimum(np.floor(t).astype(int), n - 2)
    f = t - i
    w = np.zeros((len(pos), n))
    w[np.arange(len(pos)), i] = 1 - f
    w[np.arange(len(pos)), i + 1] = f
    return w


def object_polygons(
    class_name: str, quad: NDArray[np.float64], colour: str
) -> list[tuple[NDArray[np.float64], tuple[int, int, int]]]:
    """Polygons to fill for one object, from its oriented box ``quad`` ``(4, 2)``.

    Vehicles and pools are their box; a plane is a fuselage plus wings inside its box; a storage
    tank a 16-gon inscribed in its box; a tennis court its box with a white centre line.
    """
    rgb = COLOURS.get(colour, (200, 200, 200))
    q = np.asarray(quad, dtype=np.float64)
    centre = q.mean(axis=0)
    u, v = (q[1] - q[0]) / 2, (q[3] - q[0]) / 2  # half extents along the box axes

    def rect(su: float, sv: float, du: float = 0.0) -> NDArray[np.float64]:
        c = centre + du * u
        return np.array([c - su * u - sv * v, c + su * u - sv * v, c + su * u + sv * v,
                         c - su * u + sv * v])  # fmt: skip

    if class_name == "plane":
        return [
            (rect(1.0, 0.14), rgb),
            (rect(0.16, 1.0, du=0.1), rgb),
            (rect(0.1, 0.4, -0.85), rgb),
        ]
    if class_name == "storage-tank":
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ring = centre + np.cos(t)[:, None] * u + np.sin(t)[:, None] * v
        return [(ring, rgb), (centre + 0.6 * (ring - centre), (200, 200, 205))]
    if class_name == "tennis-court":
        return [(q, rgb), (rect(0.03, 1.0), COLOURS["white"])]
    return [(q, rgb)]


def position_name(point: NDArray[np.float64], width: int, height: int) -> str:
    """The 3×3-grid position of a point: ``top left``, ``top``, …, ``center``, …, ``bottom right``.

    Examples:
        >>> position_name(np.array([10.0, 10.0]), 300, 300)
        'top left'
    """
    col = min(int(point[0] / width * 3), 2)
    row = min(int(point[1] / height * 3), 2)
    vertical = ("top", "", "bottom")[row]
    horizontal = ("left", "", "right")[col]
    return " ".join(p for p in (vertical, horizontal) if p) or "center"
