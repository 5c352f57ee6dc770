"""DIOR and DIOR-R object detection (horizontal and oriented VOC-style XML).

Layout (see ``shared/DATASETS.md``)::

    JPEGImages-trainval/00001.jpg   JPEGImages-test/11726.jpg   (some releases: JPEGImages/)
    Annotations/Horizontal Bounding Boxes/00001.xml   VOC <bndbox> xmin ymin xmax ymax
    Annotations/Oriented Bounding Boxes/00001.xml     <robndbox> x_left_top ... y_left_bottom
    ImageSets/Main/{train,val,test}.txt               image ids, one per line

800×800 images, 20 classes (``rscovlm.formats.classes.DIOR``; the files spell some in mixed
case, e.g. ``Expressway-Service-area``, and the build compares normalised names). The XML's
``<size>`` gives the image size. Without a split list every annotation file is read.

Citation: Li et al., "Object detection in optical remote sensing images: A survey and a new
benchmark", ISPRS J. 2020 (DIOR); Cheng et al., "Anchor-free oriented proposal generator for
object detection", TGRS 2022 (DIOR-R). Licence: academic research use.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from rscovlm.data.record import Box, Instance
from rscovlm.data.sources._common import (
    Item,
    bad,
    detection_record,
    find_image,
    iter_sorted_files,
    parse_xml,
    read_id_list,
    xml_float,
    xml_size,
    xml_text,
)

__all__ = ["iter_dior_records"]

_ANN_DIRS = {"hbb": "Horizontal Bounding Boxes", "obb": "Oriented Bounding Boxes"}
_IMAGE_DIRS = ("JPEGImages-trainval", "JPEGImages-test", "JPEGImages")
_OBB_TAGS = (
    ("x_left_top", "y_left_top"),
    ("x_right_top", "y_right_top"),
    ("x_right_bottom", "y_right_bottom"),
    ("x_left_bottom", "y_left_bottom"),
)


def iter_dior_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "dior",
    split: str | None = None,
    box: Literal["hbb", "obb"] = "obb",
) -> Iterator[Item]:
    """Yield one detection record per DIOR image, in id order.

    Args:
        root: Data root of the build.
        path: The DIOR folder under ``root``.
        source: Source name written into the records.
        split: ``train``, ``val`` or ``test``: read ``ImageSets/Main/<split>.txt``; ``None``
            reads every annotation file and marks the records ``trainval``.
        box: ``obb`` (DIOR-R, ``<robndbox>`` quads) or ``hbb`` (DIOR, ``<bndbox>``).
    """
    root = Path(root)
    base = root / path
    ann_dir = base / "Annotations" / _ANN_DIRS[box]
    image_dirs = [base / d for d in _IMAGE_DIRS]
    if split is not None and (base / "ImageSets" / "Main" / f"{split}.txt").is_file():
        list_file = base / "ImageSets" / "Main" / f"{split}.txt"
        ids = read_id_list(list_file)
    else:
        ids = [p.stem for p in iter_sorted_files(ann_dir, (".xml",))]
    for image_id in ids:
        xml_path = ann_dir / f"{image_id}.xml"
        node = parse_xml(xml_path)
        if isinstance(node, str):
            yield bad(source, root, xml_path, image_id, node)
            continue
        objects: list[Instance] | str = _objects(node, box)
        if isinstance(objects, str):
            yield bad(source, root, xml_path, image_id, objects)
            continue
        image = find_image(image_dirs, image_id, (".jpg", ".png")) or image_dirs[0] / (
            xml_text(node, "filename") or f"{image_id}.jpg"
        )
        yield detection_record(
            root,
            image_id,
            image,
            source=source,
            split=split or "trainval",
            objects=objects,
            size=xml_size(node),
            source_file=xml_path,
            meta={"class_list": "dior", "box": box},
        )


def _objects(node: ET.Element, box: str) -> list[Instance] | str:
    out: list[Instance] = []
    for k, obj in enumerate(node.iter("object")):
        name = xml_text(obj, "name")
        if not name:
            return f"object {k} has no <name>"
        try:
            if box == "obb":
                rb = obj.find("robndbox")
                if rb is None:
                    return f"object {k} has no <robndbox>"
                quad = [[xml_float(rb, tx), xml_float(rb, ty)] for tx, ty in _OBB_TAGS]
                geom = Box.from_quad(quad)
            else:
                bb = obj.find("bndbox")
                if bb is None:
                    return f"object {k} has no <bndbox>"
                geom = Box.from_hbb([xml_float(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")])
        except ValueError as exc:
            return f"object {k}: {exc}"
        difficult = xml_text(obj, "difficult", "0") == "1"
        out.append(Instance(class_name=name, box=geom, difficult=difficult))
    return out
