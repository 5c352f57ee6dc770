"""Failure-gallery pictures: the sample's image with the true (green) and predicted (red) boxes
and, for zoom traces, the crop boxes (blue), downscaled and inlined as a base64 PNG.

The image is read through :func:`rscovlm.imaging.read_region` (size check before decoding, a
window read for patches of big rasters) and only from inside the benchmark root: a sample line
naming ``../../etc/passwd`` is not followed (links the root itself holds are, as the runner
followed them). A missing image is drawn as a grey canvas of the boxes' extent, so the boxes
are still visible (the real EarthDial GeoChat outputs come without
their images).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rscovlm.errors import InputError
from rscovlm.eval.metrics.geochat_referring import box_corners
from rscovlm.imaging import read_region
from rscovlm.safe_read import check_inside

__all__ = ["THUMB", "gallery_image", "sample_boxes"]

THUMB = 320
"""Longest side of a gallery picture (px): 24 of them stay well under a few MB of HTML."""
_TRUE, _PRED, _CROP = (40, 180, 60), (220, 40, 40), (40, 90, 220)


def _quads(boxes: Any) -> list[np.ndarray]:
    """Corner arrays of a list of boxes (numbers, or dicts with ``quad``/``box``)."""
    out: list[np.ndarray] = []
    if isinstance(boxes, dict):
        boxes = [boxes]
    if not isinstance(boxes, list):
        return out
    if boxes and all(isinstance(v, int | float) for v in boxes):
        boxes = [boxes]
    for box in boxes:
        if isinstance(box, dict):
            box = box.get("quad", box.get("box"))
        if isinstance(box, list) and all(isinstance(v, int | float) for v in box):
            q = box_corners(box)
            if q is not None and np.all(np.isfinite(q)):
                out.append(q)
    return out


def sample_boxes(line: dict[str, Any]) -> dict[str, list[np.ndarray]]:
    """``{"true", "pred", "crop"}`` corner arrays of a sample line, in the coordinates of its
    image window (detection predictions are stored in whole-image coordinates)."""
    ref, extra = line.get("reference"), line.get("extra") or {}
    true = _quads(ref.get("boxes", ref.get("box")) if isinstance(ref, dict) else ref)
    pred_src = extra.get("quads", extra.get("boxes", extra.get("box")))
    pred = _quads(pred_src)
    image = line.get("image") or {}
    window = image.get("window") if isinstance(image, dict) else None
    if "quads" in extra and isinstance(window, list) and len(window) == 4:
        pred = [q - np.array(window[:2], dtype=np.float64) for q in pred]
    crops = _quads(extra.get("crop_boxes", line.get("crop_boxes")))
    return {"true": true, "pred": pred, "crop": crops}


def _load(root: Path | None, image: dict[str, Any]) -> Image.Image | None:
    source = image.get("source")
    if root is None or not isinstance(source, str) or not source:
        return None
    # lexical confinement (``..`` and absolute names refused), symlinks followed: the runner
    # read the sample through the root's links (datasets are often linked in), so the page
    # must draw the same pixels; only the sample line is untrusted, not the root's layout
    if check_inside(source, root, follow_symlinks=True):
        return None
    path = root / source
    if not path.is_file():
        return None
    window = image.get("window")
    box = tuple(int(v) for v in window) if isinstance(window, list) and len(window) == 4 else None
    try:
        return read_region(path, box)  # type: ignore[arg-type]
    except InputError:
        return None


def _extent(quads: Iterable[np.ndarray]) -> tuple[int, int]:
    pts = list(quads)
    if not pts:
        return 100, 100
    hi = np.concatenate(pts).max(axis=0)
    return max(1, int(np.ceil(hi[0]))), max(1, int(np.ceil(hi[1])))


def gallery_image(line: dict[str, Any], root: Path | None) -> tuple[str, bool] | None:
    """``(data:image/png;base64,…, image found)`` of a sample line; ``None`` when there is
    neither an image nor a box to draw (a blank canvas would say nothing)."""
    boxes = sample_boxes(line)
    image = line.get("image") if isinstance(line.get("image"), dict) else {}
    img = _load(root, image)
    found = img is not None
    if not found and not any(boxes.values()):
        return None
    grid = image.get("grid")
    if isinstance(grid, bool) or not isinstance(grid, int | float) or not grid > 0:
        grid = None  # boxes in the image's own pixels
    else:
        grid = round(grid)
    if img is None:
        size = (grid, grid) if grid else None
        w, h = size or _extent([*boxes["true"], *boxes["pred"], *boxes["crop"]])
        img = Image.new("RGB", (w, h), (200, 200, 200))
        sx = sy = 1.0
    else:
        img = img.convert("RGB")
        sx, sy = (img.width / grid, img.height / grid) if grid else (1.0, 1.0)
    factor = THUMB / max(img.width, img.height)  # down for big images, up for a 100-grid
    img = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))))
    draw = ImageDraw.Draw(img)
    scale = np.array([sx * factor, sy * factor])
    for key, color in (("crop", _CROP), ("true", _TRUE), ("pred", _PRED)):
        for q in boxes[key]:
            pts: Sequence[tuple[float, float]] = [tuple(p) for p in (q * scale).tolist()]
            draw.polygon(pts, outline=color, width=2)
    buf = io.BytesIO()
    # a 256-colour palette: a third of the bytes of an RGB PNG, and the boxes keep their colours
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), found
