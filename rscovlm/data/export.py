"""``rscovlm data export``: a built dataset in other tools' formats.

- ``coco``: one COCO detection json of every detection record (or those of one source):
  ``images`` with the paths relative to the data root, ``categories`` in the order of the
  source's class list when one is recorded, else by first appearance, ``annotations`` with
  ``bbox`` [x, y, w, h], the quad as an 8-value ``segmentation`` polygon (the form of the
  official RSCoVLM DOTA-512 training files), ``area``, ``iscrowd`` 0 and ``difficult``/``partial``
  flags. Images are not copied.
- ``swift`` / ``llamafactory``: every record rendered by :func:`rscovlm.data.render.render`
  at one fixed resolution, as "messages + images" JSON lines, every image written beside them at
  the size its boxes assume, with the settings each framework needs to feed it unchanged; see
  :mod:`rscovlm.data.export_chat`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rscovlm.data.record import Record
from rscovlm.data.shards import iter_records, read_manifest
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.formats.classes import get_classes
from rscovlm.geometry import quad_area

__all__ = ["EXPORT_FORMATS", "export_dataset", "records_to_coco"]

EXPORT_FORMATS = ("coco", "swift", "llamafactory")


def records_to_coco(records: Iterable[Record], classes: list[str] | None = None) -> dict[str, Any]:
    """COCO detection json of the detection ``records`` (others are skipped).

    Args:
        records: Built records (image sizes filled in).
        classes: Category order; classes not listed are appended in order of appearance.
    """
    categories: dict[str, int] = {c: i + 1 for i, c in enumerate(classes or [])}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for rec in records:
        if rec.task != "detection":
            continue
        image_id = len(images) + 1
        img = rec.images[0]
        images.append(
            {"id": image_id, "file_name": img.path, "width": img.width, "height": img.height,
             "record_id": rec.uid}
        )  # fmt: skip
        for obj in rec.objects:
            cat = categories.setdefault(obj.class_name, len(categories) + 1)
            x1, y1, x2, y2 = obj.box.hbb
            quad = obj.box.quad_array()
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "segmentation": [quad.reshape(-1).tolist()],
                    "area": float(quad_area(quad)[0]),
                    "iscrowd": 0,
                    "difficult": int(obj.difficult),
                    "partial": int(obj.partial),
                }
            )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in categories.items()],
    }


def export_dataset(
    built_dir: str | Path,
    out: str | Path,
    fmt: str = "coco",
    source: str | None = None,
    **chat_options: Any,
) -> dict[str, int]:
    """Export a built dataset; returns counts of what was written.

    Args:
        built_dir: A folder written by the build.
        out: Output file.
        fmt: One of :data:`EXPORT_FORMATS`.
        source: Export only this source.
        chat_options: Keyword arguments of :func:`rscovlm.data.export_chat.export_chat`
            (``band``, ``family``, ``kind``, ``seed``, ``measure``, ``max_length``, ...).

    Raises:
        InputError: Unknown format, not a built dataset, or no record to export.
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; supported: {', '.join(EXPORT_FORMATS)}")
    if fmt != "coco":
        from rscovlm.data.export_chat import export_chat

        return export_chat(built_dir, out, fmt, source=source, **chat_options).counts
    manifest = read_manifest(built_dir)
    classes: list[str] | None = None
    for src in manifest["recipe"]["sources"]:
        if source in (None, src["name"]) and isinstance(src.get("classes"), str):
            classes = list(get_classes(src["classes"]))
            break
    coco = records_to_coco(iter_records(built_dir, source), classes)
    if not coco["images"]:
        raise InputError(
            f"{built_dir} has no detection record to export"
            + (f" in source {source!r}" if source else "")
        )
    atomic_write_text(out, json.dumps(coco) + "\n")
    return {"images": len(coco["images"]), "annotations": len(coco["annotations"])}
