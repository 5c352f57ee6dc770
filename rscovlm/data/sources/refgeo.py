"""VLM-R1 REC json and refGeo: referring expressions with boxes in original pixels.

Layout *(varies)*: a json list or JSONL of ``{image, normal_caption | problem | question,
solution: [x1, y1, x2, y2] (original pixels), normalized_solution (0–1000)}``. refGeo lines add
``bbox`` (same as solution), ``poly`` ``[[x, y] × 4]``, ``image_width`` / ``image_height`` and a
``dataset`` name (AVVG, DIOR-RSVG, GeoChat, RSVG, VRSBench). A polygon, when present, is kept as
the box's quad; note that refGeo polygon answers were trained counter-clockwise (WIRE §3.1), an
ordering the renderer applies, not this reader.

Citation: Shen et al., "VLM-R1", 2025; Zhang et al., "GeoGround: A Unified Large Vision-Language
Model for Remote Sensing Visual Grounding", 2024 (refGeo). Licence: research use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rscovlm.data.record import Box, Record, Referring
from rscovlm.data.sources._common import (
    Item,
    bad,
    finite_floats,
    image_ref,
    iter_json_items,
    json_paths,
    rel,
)

__all__ = ["iter_refgeo_records"]

_TEXT_KEYS = ("normal_caption", "question", "problem", "expression", "caption")


def iter_refgeo_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "refgeo",
    split: str | None = None,
    image_root: str | None = None,
) -> Iterator[Item]:
    """Yield one grounding record per line, in file order.

    Args:
        root: Data root of the build.
        path: The json / JSONL file under ``root``.
        source: Source name written into the records.
        split: Split name (default ``train``).
        image_root: Folder of the ``image`` paths under ``root`` (default: the file's folder).
    """
    root, file, img_root = json_paths(root, path, image_root)

    def item(entry_id: str, entry: dict[str, Any]) -> Item:
        rec = _record(entry, entry_id, root, img_root, source, split, rel(root, file))
        return bad(source, root, file, entry_id, rec) if isinstance(rec, str) else rec

    yield from iter_json_items(root, file, source, item)


def _record(
    entry: dict[str, Any],
    entry_id: str,
    root: Path,
    img_root: Path,
    source: str,
    split: str | None,
    source_file: str,
) -> Record | str:
    image = entry.get("image")
    if isinstance(image, list) and len(image) == 1:
        image = image[0]
    if not isinstance(image, str) or not image:
        return "entry without an image path"
    text = next((entry[k] for k in _TEXT_KEYS if isinstance(entry.get(k), str)), None)
    if text is None:
        return "entry without an expression (normal_caption / problem / question)"
    text = text.replace("<image>", "").strip()
    raw = entry.get("solution", entry.get("bbox"))
    hbb = finite_floats(raw if isinstance(raw, list) else [], 4)
    if isinstance(hbb, str):
        return f"solution {raw!r}: {hbb}"
    box = Box.from_hbb(hbb)
    poly = entry.get("poly")
    if poly is not None:
        flat = (
            [v for p in poly for v in p]
            if isinstance(poly, list) and poly and isinstance(poly[0], list)
            else poly
        )
        quad = finite_floats(flat if isinstance(flat, list) else [], 8)
        if isinstance(quad, str):
            return f"poly {poly!r}: {quad}"
        box = Box(hbb=hbb, quad=[quad[i : i + 2] for i in range(0, 8, 2)])
    width, height = entry.get("image_width"), entry.get("image_height")
    meta = {k: entry[k] for k in ("dataset", "id", "normalized_solution") if k in entry}
    return Record(
        id=entry_id,
        source=source,
        split=split or "train",
        task="grounding",
        images=[
            image_ref(
                root,
                img_root / image,
                width if isinstance(width, int) else None,
                height if isinstance(height, int) else None,
            )
        ],
        referring=[Referring(expression=text, box=box)],
        source_file=source_file,
        meta=meta,
    )
