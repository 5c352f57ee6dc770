"""Boxes and class labels drawn on an image, or on a downsampled overview of a big raster.

What ``rscovlm detect --draw DIR`` writes, and the same code draws ground truth (so a picture of
predictions and one of labels are directly comparable). The picture is at most ``max_side``
pixels on its longer side: a 30000² GeoTIFF is read decimated by rasterio
(:func:`rscovlm.imaging.read_region` with an output size — overviews when the file has them,
never a full decode and never PIL on the raster), and the quads, in original pixels, are scaled
onto it. Each class has a fixed colour (its index in the class list picks from
:data:`PALETTE`), so a class keeps its colour across images and runs; labels are drawn last, on
a filled tag of the box colour, so boxes never hide them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw, ImageFont

from rscovlm.errors import InputError
from rscovlm.files import atomic_writer
from rscovlm.imaging import image_size, read_region
from rscovlm.pipelines.detect import DetectionResult

__all__ = ["DEFAULT_DRAW_SIDE", "PALETTE", "class_colour", "draw_boxes", "draw_result"]

DEFAULT_DRAW_SIDE = 2048
"""Longer side of a drawn picture: enough to see vehicles on a DOTA scene, small to open."""

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 255, 255),
)  # fmt: skip
"""Distinct colours (Sasha Trubetskoy's 20); class ``i`` gets ``PALETTE[i % 20]``."""


def class_colour(index: int) -> tuple[int, int, int]:
    """The colour of class ``index`` (stable: the class list decides, not the image)."""
    return PALETTE[index % len(PALETTE)]


def _overview(image: Path, max_side: int) -> tuple[Image.Image, float, float]:
    """The image at most ``max_side`` on its longer side and the x, y scale from original."""
    width, height = image_size(image)
    scale = min(1.0, max_side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = read_region(image, None, size if size != (width, height) else None)
    return picture.convert("RGB"), size[0] / width, size[1] / height


def _text_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light tags, white on dark ones (ITU-R BT.601 luma)."""
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def draw_boxes(
    image: str | Path,
    quads: ArrayLike,
    labels: Sequence[int],
    classes: Sequence[str],
    out: str | Path,
    *,
    max_side: int = DEFAULT_DRAW_SIDE,
) -> Path:
    """Draw ``quads`` (``(N, 4, 2)``, original pixels) labelled ``classes[labels[i]]`` on
    ``image`` (or its overview) and write a PNG to ``out`` (atomically).

    Raises:
        InputError: The image cannot be read, ``max_side`` < 1, or labels and quads disagree.
    """
    if max_side < 1:
        raise InputError(f"max_side must be ≥ 1, got {max_side}")
    pts = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    if len(pts) != len(labels):
        raise InputError(f"{len(pts)} boxes but {len(labels)} labels")
    picture, sx, sy = _overview(Path(image), max_side)
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 500))
    font = ImageFont.load_default(size=max(10, 6 * width))
    scaled = pts * np.array([sx, sy])
    for quad, label in zip(scaled, labels, strict=True):
        ring = [tuple(p) for p in quad.tolist()]
        draw.line([*ring, ring[0]], fill=class_colour(int(label)), width=width, joint="curve")
    for quad, label in zip(scaled, labels, strict=True):
        colour = class_colour(int(label))
        top = quad[np.argmin(quad[:, 1])]  # the tag sits above the highest vertex
        text = classes[int(label)]
        left, upper, right, lower = draw.textbbox((0, 0), text, font=font)
        x = float(np.clip(top[0], 0, max(0, picture.width - (right - left) - 2)))
        y = float(max(0.0, top[1] - (lower - upper) - 2 * width))
        draw.rectangle((x, y, x + right - left + 2, y + lower - upper + 2), fill=colour)
        draw.text((x + 1 - left, y + 1 - upper), text, fill=_text_colour(colour), font=font)
    with atomic_writer(out) as tmp:
        picture.save(tmp, format="PNG")
    return Path(out)


def draw_result(
    result: DetectionResult, out: str | Path, *, max_side: int = DEFAULT_DRAW_SIDE
) -> Path:
    """Draw the kept boxes of one :func:`~rscovlm.pipelines.detect.detect_image` run."""
    return draw_boxes(
        result.image, result.quads, result.labels.tolist(), result.classes, out, max_side=max_side
    )
