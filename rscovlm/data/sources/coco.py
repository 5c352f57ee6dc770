"""COCO-style detection json (the file-level reader).

Layout: ``images[{id, file_name, width, height}]``, ``annotations[{id, image_id, category_id,
bbox: [x, y, w, h], segmentation: [[x1, y1, ...]], iscrowd}]``, ``categories[{id, name}]``. The
official RSCoVLM DOTA-512 training files are of this form, with each oriented object as one
8-value segmentation polygon; other detection sets give only ``bbox``. A ``difficult`` or
``ignore`` field on an annotation (some RS conversions write one) is honoured.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rscovlm import safe_read
from rscovlm.data.record import Box, Instance, Record
from rscovlm.data.sources._common import Item, bad, rel
from rscovlm.errors import InputError
from rscovlm.geometry import quad_to_hbb

__all__ = [
    "CocoDetection",
    "CocoImage",
    "CocoObject",
    "iter_coco_records",
    "read_coco_detection",
]


@dataclass(frozen=True)
class CocoImage:
    id: int | str
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoObject:
    """One object; ``quad`` is ``(4, 2)`` original pixels (a box's corners when no polygon)."""

    quad: NDArray[np.float64]
    class_name: str
    difficult: bool = False
    from_polygon: bool = False


@dataclass
class CocoDetection:
    """A parsed file: objects per image id, plus every unreadable entry with its reason."""

    images: dict[int | str, CocoImage] = field(default_factory=dict)
    categories: dict[int | str, str] = field(default_factory=dict)
    objects: dict[int | str, list[CocoObject]] = field(default_factory=dict)
    bad_entries: list[tuple[str, str]] = field(default_factory=list)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Category names in the file's order."""
        return tuple(self.categories.values())


def read_coco_detection(path: str | Path) -> CocoDetection:
    """Read a COCO detection json; bad annotations are reported in ``bad_entries``, not raised.

    Raises:
        InputError: the file cannot be read or is not a COCO detection json at all.
    """
    data = safe_read.read_json(path, "COCO json")  # InputError: unreadable, not UTF-8, bounds
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError(f"{path} is not a COCO detection json (no 'images' list)")
    result = CocoDetection()
    categories = data.get("categories", [])
    for cat in categories if isinstance(categories, list) else [categories]:
        if isinstance(cat, dict) and _is_id(cat.get("id")) and "name" in cat:
            if cat["id"] in result.categories:
                result.bad_entries.append((_shown(cat), f"duplicate category id {cat['id']!r}"))
                continue
            result.categories[cat["id"]] = str(cat["name"])
        else:
            result.bad_entries.append((_shown(cat), "category without id and name"))
    for img in data["images"]:
        image = _parse_image(img)
        if isinstance(image, str):
            result.bad_entries.append((_shown(img), image))
            continue
        if image.id in result.images:
            # two images under one id would share (and steal) each other's annotations: the
            # first keeps the id, the second is reported, never silently overwritten
            result.bad_entries.append((_shown(img), f"duplicate image id {image.id!r}"))
            continue
        result.images[image.id] = image
        result.objects.setdefault(image.id, [])
    annotations = data.get("annotations", [])
    for ann in annotations if isinstance(annotations, list) else [annotations]:
        parsed = _parse_annotation(ann, result.categories)
        if isinstance(parsed, str):
            result.bad_entries.append((_shown(ann), parsed))
            continue
        image_id, obj = parsed
        if image_id not in result.images:
            result.bad_entries.append((_shown(ann), f"unknown image_id {image_id!r}"))
            continue
        result.objects[image_id].append(obj)
    return result


def _is_id(value: Any) -> bool:
    """COCO ids are numbers or strings (a list or an object cannot key anything)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _shown(entry: Any) -> str:
    """The start of an entry, for its report line (surrogate-safe, at most 80 characters)."""
    return safe_read.printable(repr(entry)[:80])


def _parse_image(img: Any) -> CocoImage | str:
    """One ``images`` entry, or the reason it cannot be one."""
    if not isinstance(img, dict) or not all(k in img for k in ("id", "file_name")):
        return "image without id, file_name, width, height"
    if not _is_id(img["id"]):
        return f"image id must be a number or a string, got {type(img['id']).__name__}"
    size = []
    for key in ("width", "height"):
        value = img.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)  # some converters write sizes as strings
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "image without id, file_name, width, height"
        if not math.isfinite(value) or value <= 0 or value != int(value):
            return f"image {key} must be a positive whole number, got {value!r}"
        size.append(int(value))
    return CocoImage(img["id"], str(img["file_name"]), size[0], size[1])


def _parse_annotation(ann: Any, categories: dict[int | str, str]) -> tuple[Any, CocoObject] | str:
    if not isinstance(ann, dict):
        return "annotation is not an object"
    if not _is_id(ann.get("category_id")) or not _is_id(ann.get("image_id")):
        return "image_id and category_id must be numbers or strings"
    if ann.get("category_id") not in categories:
        return f"unknown category_id {ann.get('category_id')!r}"
    difficult = bool(ann.get("difficult", 0) or ann.get("ignore", 0) or ann.get("iscrowd", 0))
    quad = _polygon_quad(ann.get("segmentation"))
    from_polygon = quad is not None
    if quad is None:
        bbox = ann.get("bbox")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError, OverflowError):
            return "neither a 4-vertex polygon nor a bbox [x, y, w, h]"
        quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)
    if not np.isfinite(quad).all():
        return "non-finite coordinate"
    return ann.get("image_id"), CocoObject(
        quad, categories[ann["category_id"]], difficult, from_polygon
    )


def _polygon_quad(segmentation: Any) -> NDArray[np.float64] | None:
    """The single 8-value polygon of an annotation, or ``None`` (RLE, several parts, none)."""
    if not isinstance(segmentation, list) or len(segmentation) != 1:
        return None
    poly = segmentation[0]
    if not isinstance(poly, list) or len(poly) != 8:
        return None
    try:
        values = [float(v) for v in poly]
    except (TypeError, ValueError, OverflowError):
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return np.asarray(values, dtype=np.float64).reshape(4, 2)


# --- Record adapter (rscovlm.data.build) ----------------------------------------------------


def iter_coco_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "coco",
    split: str | None = None,
    image_dir: str = "images",
    class_list: str | None = None,
) -> Iterator[Item]:
    """Yield one detection record per image of a COCO json, in the file's image order.

    Args:
        root: Data root of the build.
        path: The annotation json under ``root``.
        source: Source name written into the records.
        split: Split name written into the records (default ``train``).
        image_dir: Folder of ``file_name`` paths, relative to the json's folder.
        class_list: Class list name recorded in ``meta`` (the build checks classes against the
            recipe's list; by default the file's own ``categories``).

    Objects from a 4-vertex polygon keep it as a quad; bbox-only objects become horizontal
    boxes. Unreadable annotations are reported one by one (their image is still read).
    """
    root = Path(root)
    ann_path = root / path
    try:
        coco = read_coco_detection(ann_path)
    except InputError as exc:
        yield bad(source, root, ann_path, Path(path).name, str(exc))
        return
    for k, (entry, reason) in enumerate(coco.bad_entries):
        yield bad(source, root, ann_path, f"bad_entry_{k}", f"{reason}: {entry}")
    img_root = ann_path.parent / image_dir
    classes = list(coco.class_names)
    for image_id, image in coco.images.items():
        objects = [
            Instance(
                class_name=o.class_name,
                box=Box.from_quad(o.quad)
                if o.from_polygon
                else Box.from_hbb(quad_to_hbb(o.quad)[0]),
                difficult=o.difficult,
            )
            for o in coco.objects.get(image_id, [])
        ]
        yield Record(
            id=str(image_id),
            source=source,
            split=split or "train",
            task="detection",
            images=[
                {
                    "path": rel(root, img_root / image.file_name),
                    "width": image.width,
                    "height": image.height,
                }
            ],
            objects=objects,
            source_file=rel(root, ann_path),
            meta={"class_list": class_list} if class_list else {"classes": classes},
        )
