"""Split-patch names and the ONE merge of patch boxes back into whole images.

Patches are named ``<base>__<m>__<x>___<y>``: the DOTA devkit writes the resize *rate* in the
middle field (``P0000__1__0___512``, ``P0000__0.5__0___512``) while mmrotate writes the patch
size (``P0000__1024__0___512``). :func:`parse_patch_name` reads both; rscovlm writes the rate
(:func:`format_patch_name`), which both toolchains merge correctly. Patch pixel ``p`` is
original pixel ``(p + (x, y)) / rate``.

:func:`merge_boxes` is the merge every path uses — the tiler's
(:func:`rscovlm.data.split.merge_patch_objects`), tiled detection (``rscovlm detect``) and the
evaluation's patch merge (``rscovlm eval merge``) — so the same raw outputs give the same final
boxes whichever command merged them. It lives here, beside the names and the tiler, because
the merge is the inverse of the tiling.

The merge is class-wise rotated NMS per original image (polygon IoU; a box is dropped when its
IoU with a kept box of the same image and class is ``> iou``; 0.1 as the DOTA devkit). A VLM
scores every box 1, so the visiting order of ties decides what is kept, and it must not depend
on the order of patches or lines: boxes are visited by score (high first), then by area (large
first: of two copies of one object, the one cut by a patch border is the smaller, and patch
names carry no patch size, so area is the border proxy every path can compute), then by their
coordinates (a canonical key that makes the order total).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm import geometry

__all__ = [
    "DEFAULT_MERGE_IOU",
    "PatchName",
    "format_patch_name",
    "merge_boxes",
    "merge_order",
    "parse_patch_name",
]

DEFAULT_MERGE_IOU = 0.1
"""Same-class boxes overlapping more than this are merged (the DOTA devkit's merge)."""

_PATCH_RE = re.compile(r"^(?P<base>.+?)__(?P<mid>\d+(?:\.\d+)?)__(?P<x>-?\d+)___(?P<y>-?\d+)$")
# A middle field above this is a patch size (mmrotate), not a resize rate (DOTA devkit).
_MAX_RATE = 16.0


@dataclass(frozen=True)
class PatchName:
    """A split patch's origin: patch pixel ``p`` is original pixel ``(p + (x, y)) / rate``."""

    base: str
    rate: float
    x: int
    y: int

    def to_original(self, points: ArrayLike) -> NDArray[np.float64]:
        """Map ``(..., 2)`` patch pixel coordinates back to the original image."""
        pts = np.asarray(points, dtype=np.float64)
        return (pts + np.array([self.x, self.y], dtype=np.float64)) / self.rate

    @property
    def name(self) -> str:
        """The patch name (:func:`format_patch_name`)."""
        return format_patch_name(self.base, self.rate, self.x, self.y)


def parse_patch_name(name: str) -> PatchName | None:
    """Read ``P0001__1024__0___512`` / ``P0001__0.5__0___512``; ``None`` for a plain name.

    A middle field with a decimal point or at most 16 is the devkit's resize rate; a larger
    integer is mmrotate's patch size, whose patches always have rate 1.

    Examples:
        >>> parse_patch_name("P2805__1024__0___512")
        PatchName(base='P2805', rate=1.0, x=0, y=512)
        >>> parse_patch_name("P0004__0.5__824___0").rate
        0.5
        >>> parse_patch_name("P0004") is None
        True
    """
    stem = Path(name).stem if "." in Path(name).name[-5:] else name
    match = _PATCH_RE.match(stem)
    if match is None:
        return None
    mid = match["mid"]
    value = float(mid)
    rate = value if ("." in mid or value <= _MAX_RATE) else 1.0
    if rate <= 0:
        return None
    return PatchName(match["base"], rate, int(match["x"]), int(match["y"]))


def format_patch_name(base: str, rate: float, x: int, y: int) -> str:
    """The devkit-style patch name (rate in the middle), readable by mmrotate's merger too.

    The rate is written short (``1``, ``0.5``) when that reads back exactly, else in full, so
    a merge from the name maps a box exactly as the tiler that named the patch.

    Examples:
        >>> format_patch_name("P0001", 1.0, 0, 512)
        'P0001__1__0___512'
        >>> format_patch_name("P0001", 0.5, 824, 0)
        'P0001__0.5__824___0'
        >>> parse_patch_name(format_patch_name("P0001", 1 / 3, 0, 0)).rate == 1 / 3
        True
    """
    rate_text = f"{rate:g}"
    if float(rate_text) != rate:
        rate_text = repr(float(rate))
    return f"{base}__{rate_text}__{int(x)}___{int(y)}"


def merge_order(
    quads: ArrayLike, labels: ArrayLike, scores: ArrayLike, image: ArrayLike | None = None
) -> NDArray[np.int64]:
    """The canonical visiting order: image, class, score (high first), area (large first),
    then the eight coordinates. Independent of the input order for distinct boxes."""
    q = geometry.as_quads(quads)
    lab = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    img = np.zeros(len(q), np.int64) if image is None else np.asarray(image).reshape(-1)
    if not len(q):
        return np.zeros(0, dtype=np.int64)
    flat = q.reshape(len(q), 8)
    coords = [flat[:, j] for j in range(7, -1, -1)]
    area = geometry.quad_area(q)
    return np.lexsort((*coords, -area, -s, lab, img)).astype(np.int64)


def merge_boxes(
    quads: ArrayLike,
    labels: ArrayLike,
    scores: ArrayLike,
    iou: float = DEFAULT_MERGE_IOU,
    *,
    image: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Indices of the boxes kept by the merge (see the module docstring), in visiting order.

    Args:
        quads: ``(N, 4, 2)`` boxes, already in original-image pixels.
        labels: ``(N,)`` class of each box (ints or names); only one class suppresses itself.
        scores: ``(N,)`` scores (1 for a VLM).
        iou: NMS threshold in ``[0, 1]``; 1 keeps every box.
        image: ``(N,)`` index of each box's original image (default: all on one image).

    Returns:
        The kept indices ordered by image, class, score, area and coordinates.

    Examples:
        >>> q = geometry.hbb_to_quad([[10, 0, 110, 100], [0, 0, 60, 100]])
        >>> merge_boxes(q, [0, 0], [1.0, 1.0]).tolist()  # the less cut (larger) box stays
        [0]
    """
    q = geometry.as_quads(quads)
    lab = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    img = np.zeros(len(q), np.int64) if image is None else np.asarray(image).reshape(-1)
    order = merge_order(q, lab, s, img)
    if not len(order):
        return order
    img_sorted = img[order]
    # One NMS call per original image: images share coordinate frames, so a single call would
    # make the spatial index pair up boxes of different images only to discard them.
    cuts = np.flatnonzero(img_sorted[1:] != img_sorted[:-1]) + 1
    kept: list[NDArray[np.int64]] = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(order)], strict=True):
        rows = order[lo:hi]
        keep = geometry.rotated_nms(q[rows], s[rows], iou, labels=lab[rows])
        kept.append(rows[np.sort(keep)])  # sorted positions = the canonical order
    return np.concatenate(kept).astype(np.int64)
