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
from rscovlm.formats.results._table import DetectionTable, ResultBox, ResultColumns
from rscovlm.safe_read import read_json

__all__ = ["read_coco_columns", "read_coco_results", "write_coco"]


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


def _coords(ann: dict[str, Any]) -> list[Any] | str:
    """The 8 polygon values of an annotation (its segmentation, else its bbox's corners)."""
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg and isinstance(seg[0], list) and len(seg[0]) == 8:
        return seg[0]
    box = ann.get("bbox")
    if isinstance(box, list) and len(box) == 4:
        try:
            x, y, w, h = (float(v) for v in box)
        except (TypeError, ValueError):
            return "needs an 8-value segmentation or a bbox"
        return [x, y, x + w, y, x + w, y + h, x, y + h]
    return "needs an 8-value segmentation or a bbox"


def read_coco_columns(path: str | Path) -> ResultColumns:
    """A COCO results json in bulk (positions are annotation indices, ``unit`` says so).

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
    bad: list[tuple[int, str]] = []
    pos, images, labels, values, scores, scored = [], [], [], [], [], []
    for k, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            bad.append((k, "not an object"))
            continue
        coords = _coords(ann)
        if isinstance(coords, str):
            bad.append((k, coords))
            continue
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if not isinstance(image_id, (int, str)) or not isinstance(category_id, (int, str)):
            bad.append((k, "image_id and category_id must be numbers or strings"))
            continue
        if image_id not in names or category_id not in cats:
            bad.append((k, "unknown image_id or category_id"))
            continue
        score = ann.get("score")
        has = isinstance(score, (int, float)) and not isinstance(score, bool)
        pos.append(k)
        images.append(names[ann["image_id"]])
        labels.append(cats[ann["category_id"]])
        values.append(coords)
        scores.append(float(score) if has else 1.0)  # type: ignore[arg-type]
        scored.append(has)
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1, 8)
        ok = np.isfinite(arr).all(axis=1)
    except (TypeError, ValueError):  # some value is not a number: entry by entry
        arr = np.zeros((len(values), 8))
        ok = np.zeros(len(values), dtype=bool)
        for i, v in enumerate(values):
            try:
                arr[i] = np.asarray(v, dtype=np.float64)
                ok[i] = np.isfinite(arr[i]).all()
            except (TypeError, ValueError):
                pass
    bad += [(pos[i], "non-finite coordinate") for i in np.flatnonzero(~ok).tolist()]
    sel = np.flatnonzero(ok).tolist()
    return ResultColumns.build(
        path.name,
        [images[i] for i in sel],
        [labels[i] for i in sel],
        geometry.as_quads(arr[sel]) if sel else np.zeros((0, 4, 2)),
        [scores[i] for i in sel],
        [scored[i] for i in sel],
        [pos[i] for i in sel],
        sorted(bad),
        unit="annotation ",
    )


def read_coco_results(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` per annotation of a results json, ``(where, reason)`` for a bad one
    (:func:`read_coco_columns`, row by row).

    Raises:
        InputError: The file is not JSON or has no ``images`` / ``annotations`` lists.
    """
    return read_coco_columns(path).rows()
