"""COCO detection results json: every class a category (ids from 1), one annotation per box
with its 8-value ``segmentation`` polygon, ``bbox`` ``[x, y, w, h]``, ``area`` and ``score``.

The file is also a COCO detection json that :func:`rscovlm.data.sources.coco.read_coco_detection`
reads as a dataset; :func:`read_coco_results` reads it back as results (scores included).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rscovlm import geometry
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.formats.results._table import DetectionTable, ResultBox
from rscovlm.safe_read import read_json

__all__ = ["read_coco_results", "write_coco"]


def write_coco(table: DetectionTable, path: str | Path) -> Path:
    """Write ``table`` as one COCO json (images numbered from 1 in table order)."""
    hbb = geometry.quad_to_hbb(table.quads) if len(table) else np.zeros((0, 4))
    area = geometry.quad_area(table.quads) if len(table) else np.zeros(0)
    annotations = [
        {
            "id": k + 1,
            "image_id": int(img) + 1,
            "category_id": int(label) + 1,
            "segmentation": [quad.reshape(-1).tolist()],
            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            "area": float(a),
            "score": float(s),
            "iscrowd": 0,
        }
        for k, (img, quad, label, b, a, s) in enumerate(
            zip(table.image, table.quads, table.label, hbb, area, table.scores, strict=True)
        )
    ]
    images: list[dict[str, Any]] = []
    for k, info in enumerate(table.images):
        entry: dict[str, Any] = {"id": k + 1, "file_name": info.file_name or info.id}
        if info.size is not None:
            entry.update(width=info.size[0], height=info.size[1])
        images.append(entry)
    doc = {
        "images": images,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(table.classes)],
        "annotations": annotations,
    }
    return atomic_write_text(path, json.dumps(doc) + "\n")


def _quad(ann: dict[str, Any]) -> np.ndarray | str:
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg and isinstance(seg[0], list) and len(seg[0]) == 8:
        values = np.asarray(seg[0], dtype=np.float64)
    elif isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
        x, y, w, h = (float(v) for v in ann["bbox"])
        values = geometry.hbb_to_quad([x, y, x + w, y + h])
    else:
        return "needs an 8-value segmentation or a bbox"
    if not np.isfinite(values).all():
        return "non-finite coordinate"
    return geometry.as_quads(values)[0]


def read_coco_results(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` per annotation of a results json, ``(where, reason)`` for a bad one.

    The image id of a box is its image's ``file_name`` stem; its label the category name.

    Raises:
        InputError: The file is not JSON or has no ``images`` / ``annotations`` lists.
    """
    path = Path(path)
    doc = read_json(path, "COCO results")
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise InputError(f"{path} is not a COCO json (no 'annotations' list)")
    names = {
        i["id"]: Path(str(i.get("file_name", i["id"]))).stem
        for i in doc.get("images", [])
        if isinstance(i, dict) and isinstance(i.get("id"), (int, str))
    }
    cats = {
        c["id"]: str(c.get("name"))
        for c in doc.get("categories", [])
        if isinstance(c, dict) and isinstance(c.get("id"), (int, str))
    }
    for k, ann in enumerate(doc["annotations"]):
        where = f"{path.name}:annotation {k}"
        if not isinstance(ann, dict):
            yield where, "not an object"
            continue
        quad = _quad(ann)
        if isinstance(quad, str):
            yield where, quad
            continue
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if not isinstance(image_id, (int, str)) or not isinstance(category_id, (int, str)):
            yield where, "image_id and category_id must be numbers or strings"
            continue
        if image_id not in names or category_id not in cats:
            yield where, "unknown image_id or category_id"
            continue
        score = ann.get("score")
        scored = isinstance(score, (int, float)) and not isinstance(score, bool)
        yield where, ResultBox(
            names[ann["image_id"]], cats[ann["category_id"]], quad,
            float(score) if scored else 1.0, scored,
        )  # fmt: skip
