"""HRSC2016 ship detection (oriented boxes with angles in radians).

Layout (see ``shared/DATASETS.md``)::

    FullDataSet/AllImages/100000001.bmp
    FullDataSet/Annotations/100000001.xml     (the FullDataSet/ level is optional)
    ImageSets/{trainval,test}.txt              image ids, one per line

Each ``HRSC_Objects/HRSC_Object`` carries ``Class_ID``, ``difficult``, the horizontal box
``box_xmin…box_ymax`` and the rotated box ``mbox_cx, mbox_cy, mbox_w, mbox_h, mbox_ang``.

Angle convention: ``mbox_ang`` is in radians and turns the ``mbox_w`` side from +x toward +y in
y-down image coordinates — the same sense as :mod:`rscovlm.geometry`'s obb angle, only in radians
(checked on the real sample: the ship's ``header_x/header_y`` bow point lies on the ``w`` axis).
``mbox_w`` is not always the long side; :func:`rscovlm.geometry.obb_to_quad` does not care. The
usual protocol is single-class ``ship`` (class list ``hrsc``); ``Class_ID`` goes to ``meta``.

Citation: Liu et al., "A High Resolution Optical Satellite Image Dataset for Ship Recognition
and Some New Baselines", ICPRAM 2017. Licence: academic research use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

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
from rscovlm.geometry import obb_to_quad

__all__ = ["iter_hrsc_records"]

_MBOX = ("mbox_cx", "mbox_cy", "mbox_w", "mbox_h", "mbox_ang")


def iter_hrsc_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "hrsc",
    split: str | None = None,
) -> Iterator[Item]:
    """Yield one detection record per HRSC2016 image (oriented ``ship`` objects), in id order.

    Args:
        root: Data root of the build.
        path: The HRSC2016 folder under ``root``.
        source: Source name written into the records.
        split: ``trainval`` or ``test`` (reads ``ImageSets/<split>.txt``); ``None`` reads every
            annotation file.
    """
    root = Path(root)
    base = root / path
    full = base / "FullDataSet" if (base / "FullDataSet").is_dir() else base
    ann_dir, img_dir = full / "Annotations", full / "AllImages"
    list_file = next(
        (
            p
            for p in (base / "ImageSets" / f"{split}.txt", full / "ImageSets" / f"{split}.txt")
            if split is not None and p.is_file()
        ),
        None,
    )
    if list_file is not None:
        ids = read_id_list(list_file)
    else:
        ids = [p.stem for p in iter_sorted_files(ann_dir, (".xml",))]
    for image_id in ids:
        xml_path = ann_dir / f"{image_id}.xml"
        node = parse_xml(xml_path)
        if isinstance(node, str):
            yield bad(source, root, xml_path, image_id, node)
            continue
        objects: list[Instance] = []
        class_ids: list[str] = []
        reason = None
        for k, obj in enumerate(node.iter("HRSC_Object")):
            try:
                cx, cy, w, h, ang = (xml_float(obj, t) for t in _MBOX)
            except ValueError as exc:
                reason = f"object {k}: {exc}"
                break
            quad = obb_to_quad([[cx, cy, w, h, math.degrees(ang)]])[0]
            difficult = xml_text(obj, "difficult", "0") == "1"
            objects.append(
                Instance(class_name="ship", box=Box.from_quad(quad), difficult=difficult)
            )
            class_ids.append(xml_text(obj, "Class_ID"))
        if reason is not None:
            yield bad(source, root, xml_path, image_id, reason)
            continue
        image = find_image([img_dir], image_id, (".bmp", ".jpg", ".png")) or img_dir / (
            f"{image_id}.{xml_text(node, 'Img_FileFmt') or 'bmp'}"
        )
        yield detection_record(
            root,
            image_id,
            image,
            source=source,
            split=split or "trainval",
            objects=objects,
            size=xml_size(node, "Img_SizeWidth", "Img_SizeHeight"),
            source_file=xml_path,
            meta={"class_list": "hrsc", "class_ids": class_ids},
        )
