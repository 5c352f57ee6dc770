"""DIOR-RSVG and RSVG: referring expressions in VOC-style XML.

Layout::

    JPEGImages/00001.jpg
    Annotations/00001.xml     each <object> has <name>, <bndbox> and <description>
    train.txt  val.txt  test.txt

Each ``<object>`` with a non-empty ``<description>`` is one referring expression and becomes one
grounding record (id ``<image id>_<k>``). The split files *vary*: the DIOR-RSVG release lists
integer indices into all expressions, counted over the annotation files in name order
(``split_index="expression"``, the default); other copies list image ids
(``split_index="image"``). RSVG (DOTA-based) uses the same XML idea on DOTA images. DIOR-RSVG:
800×800 images, the 20 DIOR classes, ~38k expressions.

Citation: Zhan et al., "RSVG: Exploring Data and Models for Visual Grounding on Remote Sensing
Data", TGRS 2023 (DIOR-RSVG); Sun et al., "Visual Grounding in Remote Sensing Images", ACM MM
2022 (RSVG). Licence: research use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from rscovlm.data.record import Box, Record, Referring
from rscovlm.data.sources._common import (
    Item,
    bad,
    find_image,
    image_ref,
    iter_sorted_files,
    parse_xml,
    read_id_list,
    rel,
    xml_float,
    xml_size,
    xml_text,
)

__all__ = ["iter_rsvg_records"]


def iter_rsvg_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "dior_rsvg",
    split: str | None = None,
    split_index: Literal["expression", "image"] = "expression",
    image_dir: str = "JPEGImages",
) -> Iterator[Item]:
    """Yield one grounding record per referring expression, in file then object order.

    Args:
        root: Data root of the build.
        path: The dataset folder under ``root``.
        source: Source name written into the records.
        split: ``train``, ``val`` or ``test`` (reads ``<split>.txt``); ``None`` reads all.
        split_index: What the split file lists: expression indices or image ids.
        image_dir: Image folder under ``path``.
    """
    root = Path(root)
    base = root / path
    wanted: set[str] | None = None
    if split is not None:
        list_file = base / f"{split}.txt"
        if not list_file.is_file():
            yield bad(source, root, list_file, split, "split file not found")
            return
        wanted = set(read_id_list(list_file))
    count = -1
    for xml_path in iter_sorted_files(base / "Annotations", (".xml",)):
        image_id = xml_path.stem
        node = parse_xml(xml_path)
        if isinstance(node, str):
            yield bad(source, root, xml_path, image_id, node)
            continue
        image = find_image([base / image_dir], image_id) or base / image_dir / (
            xml_text(node, "filename") or f"{image_id}.jpg"
        )
        size = xml_size(node)
        for k, obj in enumerate(node.iter("object")):
            count += 1
            key = str(count) if split_index == "expression" else image_id
            if wanted is not None and key not in wanted:
                continue
            rec_id = f"{image_id}_{k}"
            expression = xml_text(obj, "description")
            bb = obj.find("bndbox")
            try:
                if bb is None:
                    raise ValueError("object has no <bndbox>")
                box = Box.from_hbb([xml_float(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")])
            except ValueError as exc:
                yield bad(source, root, xml_path, rec_id, str(exc))
                continue
            yield Record(
                id=rec_id,
                source=source,
                split=split or "train",
                task="grounding",
                images=[image_ref(root, image, *size)],
                referring=[
                    Referring(expression=expression, box=box, class_name=xml_text(obj, "name"))
                ],
                source_file=rel(root, xml_path),
                meta={"index": count},
            )
