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


def clip_quads(
    quads: ArrayLike, rect: ArrayLike, *, inside: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Clip quads to ``rect = (x0, y0, x1, y1)`` for DOTA-style tiling.

    Returns:
        ``(clipped (N, 4, 2), kept_fraction (N,))``: a quad entirely inside ``rect`` comes back
        unchanged with fraction 1; one partly inside becomes the minimum-area rectangle of its
        clipped polygon (canonical clockwise order), with fraction = clipped area / area; one
        with nothing inside (or invalid) becomes a zero quad with fraction 0. Tiling keeps
        objects with a fraction >= 0.7.

    Args:
        quads: ``(N, 4, 2)`` or one ``(4, 2)``.
        rect: The window.
        inside: Shrink a clipped rectangle that pokes out of ``rect`` about its polygon's
            centroid until every corner lies inside (:func:`_fit_inside`): what a target in an
            image needs. Tiling keeps the plain minimum-area rectangle (``False``), whose
            overlap with the same object's whole box in a neighbouring patch is what merges
            the pieces back.

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
        within = ((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)).all(axis=1) & valid
    out[within], frac[within] = original[within], 1.0
    part = np.flatnonzero(valid & ~within)
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
            corners = _rect_corners(*_min_area_rect(pts))
            if inside:
                centroids = shapely.get_coordinates(shapely.centroid(clipped[hit]))
                corners = _fit_inside(corners, centroids, (x0, y0, x1, y1))
            out[part] = canonical_quad(corners)
    return out, frac


def _fit_inside(
    corners: FloatArray, centers: FloatArray, rect: tuple[float, float, float, float]
) -> FloatArray:
    """Rectangles ``(N, 4, 2)`` shrunk about ``centers`` (points inside ``rect``) until every
    corner lies inside ``rect``.

    The minimum-area rectangle of a clipped polygon pokes out of the window wherever the polygon
    has a slanted edge along the border (a DOTA quad cut at the image edge). Left as it is, a
    quad or OBB target would name pixels the model never sees while the horizontal box is
    clipped. Scaling about the polygon's centroid keeps it a rectangle (so its OBB is itself)
    of the same orientation, and gives up only the sliver that was outside anyway.
    """
    lo = np.array(rect[:2], dtype=np.float64)
    hi = np.array(rect[2:], dtype=np.float64)
    g = centers[:, None, :]
    d = corners - g
    tol = 1e-9 * np.maximum(1.0, np.abs(np.concatenate([lo, hi])).max())
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(corners > hi + tol, (hi - g) / d, 1.0)
        under = np.where(corners < lo - tol, (lo - g) / d, 1.0)
    scale = np.clip(np.minimum(over, under).min(axis=(1, 2)), 0.0, 1.0)[:, None, None]
    fitted = np.where(scale < 1.0, g + scale * d, corners)
    return np.clip(fitted, lo, hi)  # float noise of the scaling lands on the border
