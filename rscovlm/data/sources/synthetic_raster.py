"""A huge synthetic GeoTIFF with a few small targets: the input of the Zoom-in Chain demo.

The raster is written window by window (one strip of blocks at a time), tiled, deflate-compressed
and georeferenced, so neither writing nor reading it ever holds the whole image in memory; the
smooth ground compresses to a few tens of MB at 20480². ``zoom_vqa.jsonl`` beside it holds one
colour question per target in the LRS-VQA training layout, each with one crop box, which the
``lrs_vqa`` adapter reads as Zoom-in Chain samples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rscovlm.data.sources._synthetic_draw import (
    COLOURS,
    ground_field,
    object_polygons,
    position_name,
)
from rscovlm.data.sources.synthetic import SyntheticObject
from rscovlm.geometry import obb_to_quad, quad_to_hbb

__all__ = ["write_large_geotiff"]


def write_large_geotiff(
    path: str | Path,
    size: int = 20480,
    n_targets: int = 4,
    seed: int = 0,
    block: int = 512,
    crs: str = "EPSG:32650",
    gsd: float = 0.5,
) -> list[SyntheticObject]:
    """Write a ``size``² RGB GeoTIFF window by window, with ``n_targets`` small vehicles.

    The file is tiled (``block``² blocks), deflate-compressed with a horizontal predictor, and
    georeferenced (``crs``, ``gsd`` metres per pixel). Targets sit in distinct cells of a 3×3
    grid, each a distinct colour; ``zoom_vqa.jsonl`` beside the file asks for each target's
    colour with one crop box (a Zoom-in Chain sample in the LRS-VQA training layout).

    Returns:
        The targets, quads in pixels of the full image.
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    if n_targets > 9:
        raise ValueError("at most 9 targets (one per cell of a 3×3 grid)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1_000_003])
    cells = rng.permutation(9)[:n_targets]
    colours = list(COLOURS)
    targets: list[SyntheticObject] = []
    for k, cell in enumerate(cells):
        cx = (int(cell) % 3 + rng.uniform(0.2, 0.8)) * size / 3
        cy = (int(cell) // 3 + rng.uniform(0.2, 0.8)) * size / 3
        quad = obb_to_quad([[cx, cy, 24.0, 11.0, float(rng.uniform(-90, 90))]])[0]
        targets.append(SyntheticObject("small-vehicle", quad, colours[k % len(colours)]))
    coarse = rng.uniform(0, 1, (size // 1024 + 3, size // 1024 + 3, 3))
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "tiled": True, "blockxsize": block, "blockysize": block, "compress": "deflate",
        "predictor": 2, "crs": crs, "transform": Affine(gsd, 0.0, 500000.0, 0.0, -gsd, 4000000.0),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        for y0 in range(0, size, block):
            h = min(block, size - y0)
            strip = ground_field(None, size, h, (110, 120, 95), coarse=coarse, y0=y0, total=size)
            img = Image.fromarray(strip)
            draw = ImageDraw.Draw(img)
            for t in targets:
                hbb = quad_to_hbb(t.quad)[0]
                if hbb[3] >= y0 and hbb[1] <= y0 + h:
                    for polygon, colour in object_polygons(t.class_name, t.quad, t.colour):
                        draw.polygon([(x, y - y0) for x, y in polygon.tolist()], fill=colour)
            dst.write(np.moveaxis(np.asarray(img), -1, 0), window=Window(0, y0, size, h))
    with (path.parent / "zoom_vqa.jsonl").open("w", encoding="utf-8") as fh:
        for k, t in enumerate(targets):
            hbb = quad_to_hbb(t.quad)[0]
            c = hbb.reshape(2, 2).mean(axis=0)
            crop = [max(0, math.floor(c[0] - 128)), max(0, math.floor(c[1] - 128))]
            crop += [min(size, crop[0] + 256), min(size, crop[1] + 256)]
            where = position_name(c, size, size)
            entry = {
                "question_id": f"{path.stem}_q{k}",
                "image": path.name,
                "image_size": [size, size],
                "category": "object color",
                "question": f"What color is the small vehicle in the {where} part of the image?",
                "answer": t.colour,
                "bbox_info": {"crop_hbox": [crop], "rbox": [t.quad.reshape(-1).round(1).tolist()]},
            }
            fh.write(json.dumps(entry) + "\n")
    return targets
