"""Clipping boxes to an image or a tiling window."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike

from rscovlm.geometry._kinds import FloatArray, _rows, as_quads, canonical_quad
from rscovlm.geometry._obb import _min_area_rect, _rect_corners
from rscovlm.geometry._validity import _prepare


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
