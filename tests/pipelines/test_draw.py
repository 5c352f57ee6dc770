"""Drawn detections: boxes in their class colour where the boxes are, on images and rasters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rscovlm.errors import InputError
from rscovlm.formats import DOTA_V1_0
from rscovlm.geometry import hbb_to_quad
from rscovlm.imaging import image_size
from rscovlm.pipelines.draw import PALETTE, class_colour, draw_boxes

SHIP = DOTA_V1_0.index("ship")
PLANE = DOTA_V1_0.index("plane")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_boxes_drawn_in_class_colour_on_a_small_image(tmp_path: Path) -> None:
    src = tmp_path / "grey.png"
    Image.new("RGB", (800, 600), (90, 90, 90)).save(src)
    quads = hbb_to_quad([[100, 300, 300, 500], [500, 100, 700, 200]])
    out = draw_boxes(src, quads, [SHIP, PLANE], DOTA_V1_0, tmp_path / "d.png", max_side=400)
    px = _pixels(out)
    assert px.shape == (300, 400, 3)  # halved: the longer side is max_side
    ship, plane = class_colour(SHIP), class_colour(PLANE)
    assert ship != plane and ship in PALETTE
    # The edges of the boxes, at half scale, carry their class colour ...
    # (rows are y: the ship is x 50-150, y 150-250 there; the plane x 250-350, y 50-100)
    assert tuple(px[150, 100]) == ship and tuple(px[200, 50]) == ship  # top edge, left edge
    assert tuple(px[100, 300]) == plane and tuple(px[75, 350]) == plane  # bottom, right edge
    # ... the inside and the rest of the image do not.
    assert tuple(px[200, 100]) == (90, 90, 90) and tuple(px[290, 390]) == (90, 90, 90)
    # The label tag sits above the box, in the box colour, with its text in it.
    tag = px[130:148, 50:90].reshape(-1, 3)
    colours = {tuple(c) for c in tag.tolist()}
    assert ship in colours and len(colours) > 1
    with pytest.raises(InputError, match="labels"):
        draw_boxes(src, quads, [SHIP], DOTA_V1_0, tmp_path / "x.png")


def test_big_raster_is_drawn_on_its_overview(
    big_geotiff: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    """A 20480² GeoTIFF: decimated read into a 1024-pixel overview, boxes scaled onto it."""
    path, targets = big_geotiff
    quads = np.stack([t.quad for t in targets])
    labels = [DOTA_V1_0.index(t.class_name) + k for k, t in enumerate(targets)]
    classes = [*DOTA_V1_0, *DOTA_V1_0]
    out = draw_boxes(path, quads, labels, classes, tmp_path / "big.png", max_side=1024)
    px = _pixels(out)
    width, height = image_size(path)
    assert px.shape == (round(height * 1024 / width), 1024, 3)
    for quad, label in zip(quads, labels, strict=True):
        x, y = (quad.mean(0) * 1024 / width).round().astype(int)  # tiny vehicles: 1-2 px
        patch = {tuple(c) for c in px[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).tolist()}
        assert class_colour(label) in patch
