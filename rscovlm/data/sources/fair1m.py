"""FAIR1M 1.0 / 2.0 fine-grained oriented object detection.

Layout (see ``shared/DATASETS.md``)::

    images/0.tif
    labelXml/0.xml

Each ``<object>`` holds ``<possibleresult><name>Boeing737</name></possibleresult>`` and
``<points>`` with five ``<point>x,y</point>`` (the fifth repeats the first). The ``<size>``
element gives the image size. 37 fine-grained classes; RSCoVLM evaluates the 34 of
``rscovlm.formats.classes.FAIR1M_V1_0`` (names contain spaces, e.g. ``Small Car``).

Citation: Sun et al., "FAIR1M: A benchmark dataset for fine-grained object recognition in
high-resolution remote sensing imagery", ISPRS J. 2022. Licence: academic research use.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from rscovlm.data.record import Box, Instance
from rscovlm.data.sources._common import (
    Item,
    bad,
    detection_record,
    find_image,
    finite_floats,
    iter_sorted_files,
    parse_xml,
    xml_size,
    xml_text,
)

__all__ = ["iter_fair1m_records"]


def iter_fair1m_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "fair1m",
    split: str | None = None,
    image_dir: str = "images",
    label_dir: str = "labelXml",
) -> Iterator[Item]:
    """Yield one detection record per FAIR1M image, in label-file name order.

    Args:
        root: Data root of the build.
        path: The FAIR1M split folder under ``root`` (holding ``images`` and ``labelXml``).
        source: Source name written into the records.
        split: Split name written into the records (default ``train``).
        image_dir: Image folder name under ``path``.
        label_dir: Label folder name under ``path``.
    """
    root = Path(root)
    base = root / path
    for xml_path in iter_sorted_files(base / label_dir, (".xml",)):
        image_id = xml_path.stem
        node = parse_xml(xml_path)
        if isinstance(node, str):
            yield bad(source, root, xml_path, image_id, node)
            continue
        objects = _objects(node)
        if isinstance(objects, str):
            yield bad(source, root, xml_path, image_id, objects)
            continue
        filename = xml_text(node, "source/filename")
        image = find_image([base / image_dir], image_id, (".tif", ".tiff", ".png", ".jpg"))
        image = image or base / image_dir / (filename or f"{image_id}.tif")
        yield detection_record(
            root,
            image_id,
            image,
            source=source,
            split=split or "train",
            objects=objects,
            size=xml_size(node),
            source_file=xml_path,
            meta={"class_list": "fair1m1.0"},
        )


def _objects(node: ET.Element) -> list[Instance] | str:
    out: list[Instance] = []
    for k, obj in enumerate(node.iter("object")):
        name = xml_text(obj, "possibleresult/name")
        if not name:
            return f"object {k} has no <possibleresult><name>"
        points = [(p.text or "").strip() for p in obj.iter("point")]
        if len(points) == 5 and points[4] == points[0]:
            points = points[:4]
        if len(points) != 4:
            return f"object {k} has {len(points)} distinct <point>s, expected 4"
        values = finite_floats(v for p in points for v in p.split(","))
        if isinstance(values, str) or len(values) != 8:
            return f"object {k}: {values if isinstance(values, str) else 'bad <point> text'}"
        out.append(Instance(class_name=name, box=Box.from_quad(values)))
    return out
