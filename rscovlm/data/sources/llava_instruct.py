"""LLaVA / ShareGPT instruction json: GeoChat-Instruct, VHM-SFT, TEOChatlas.

Layout: a json list (or JSONL) of ``{id, image | video, conversations: [{from, value}]}``;
``image`` is a path (or a list of paths), ``video`` a list of frame paths (TEOChatlas temporal
samples), both relative to an image root folder. ``from`` is ``human`` / ``gpt`` (``user`` /
``assistant`` / ``system`` accepted too); ``<image>`` / ``<video>`` placeholders stay in the
text. TEOChatlas samples may carry ``timestamps`` (``%Y-%m-%d``, one per frame): frames are
sorted by timestamp (stable, so equal dates keep their order) and each image keeps its date.

Boxes written in the text are lifted into structured boxes in original pixels, their place in
the text marked ``<box:k>`` (``k`` indexes the turn's ``boxes``):

- ``box_format="geochat"``: GeoChat's ``{<x1><y1><x2><y2>|<θ>}`` on a 0–100 grid (``|<θ>``
  optional; θ in degrees, the rotation of the box about its centre, which makes it a quad);
- ``box_format="teochat"``: TEOChatlas ``[x1, y1, x2, y2]`` integer percentages (only bracket
  lists of exactly four integers; others stay text, unlike the original code, WIRE §9).

The grid maps to pixels of the *first* image (as the original training code did, WIRE §3.4),
whose size is read from its header; a sample whose boxes cannot be placed is reported.

Citations: Kuckreja et al., "GeoChat", CVPR 2024; Pang et al., "VHM: Versatile and Honest Vision
Language Model for Remote Sensing Image Analysis", AAAI 2025; Irvin et al., "TEOChat", ICLR 2025.
Licence: research use, per dataset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from rscovlm.data.record import Box, ImageRef, Record, Turn
from rscovlm.data.sources._common import Item, bad, iter_json_items, json_paths, rel
from rscovlm.errors import InputError
from rscovlm.geometry import obb_to_quad
from rscovlm.imaging import image_size

__all__ = ["GEOCHAT_BOX_RE", "TEOCHAT_BOX_RE", "iter_llava_records"]

GEOCHAT_BOX_RE = re.compile(
    r"\{<(-?\d+(?:\.\d+)?)><(-?\d+(?:\.\d+)?)><(-?\d+(?:\.\d+)?)><(-?\d+(?:\.\d+)?)>"
    r"(?:\|<(-?\d+(?:\.\d+)?)>)?\}"
)
TEOCHAT_BOX_RE = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


def iter_llava_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "instruct",
    split: str | None = None,
    image_root: str | None = None,
    box_format: Literal["geochat", "teochat"] | None = None,
) -> Iterator[Item]:
    """Yield one instruction record per conversation, in file order.

    Args:
        root: Data root of the build.
        path: The json / JSONL file under ``root``.
        source: Source name written into the records.
        split: Split name (default ``train``).
        image_root: Folder of the image and frame paths under ``root`` (default: the file's).
        box_format: Which in-text box notation to lift into structured boxes (``None``: none).
    """
    root, file, img_root = json_paths(root, path, image_root)

    def item(entry_id: str, entry: dict[str, Any]) -> Item:
        rec_id = str(entry.get("id", entry_id))
        rec = _record(entry, rec_id, root, img_root, box_format)
        if isinstance(rec, str):
            return bad(source, root, file, rec_id, rec)
        images, turns = rec
        return Record(
            id=rec_id if "id" in entry else entry_id,
            source=source,
            split=split or "train",
            task="instruction",
            images=images,
            conversation=turns,
            source_file=rel(root, file),
            meta={"video": "video" in entry},
        )

    yield from iter_json_items(root, file, source, item)


def _images(entry: dict[str, Any], root: Path, img_root: Path) -> list[ImageRef] | str:
    paths = entry.get("video", entry.get("image"))
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        return "entry without image or video paths"
    stamps = entry.get("timestamps")
    if stamps is not None:
        if not isinstance(stamps, list) or len(stamps) != len(paths):
            return f"{len(paths)} frames but timestamps {stamps!r}"
        order = sorted(range(len(paths)), key=lambda i: str(stamps[i]))
        return [
            ImageRef(path=rel(root, img_root / paths[i]), timestamp=str(stamps[i])) for i in order
        ]
    return [ImageRef(path=rel(root, img_root / p)) for p in paths]


def _record(
    entry: dict[str, Any], rec_id: str, root: Path, img_root: Path, box_format: str | None
) -> tuple[list[ImageRef], list[Turn]] | str:
    images = _images(entry, root, img_root)
    if isinstance(images, str):
        return images
    conversations = entry.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        return "entry without conversations"
    pattern = {"geochat": GEOCHAT_BOX_RE, "teochat": TEOCHAT_BOX_RE}.get(box_format or "")
    size: tuple[int, int] | None = None
    turns: list[Turn] = []
    for k, msg in enumerate(conversations):
        if not isinstance(msg, dict) or not isinstance(msg.get("value"), str):
            return f"turn {k} has no text value"
        role = _ROLES.get(str(msg.get("from", "")).lower())
        if role is None:
            return f"turn {k} has unknown role {msg.get('from')!r}"
        text, boxes = msg["value"], []
        if pattern is not None and pattern.search(text):
            if size is None:
                try:
                    size = image_size(root / images[0].path)
                except InputError as exc:
                    return f"cannot place boxes: {exc}"
                images[0].width, images[0].height = size
            text, boxes = _lift_boxes(text, pattern, size)
        turns.append(Turn(role=role, text=text, boxes=boxes))
    return images, turns


def _lift_boxes(
    text: str, pattern: re.Pattern[str], size: tuple[int, int]
) -> tuple[str, list[Box]]:
    width, height = size
    boxes: list[Box] = []

    def repl(match: re.Match[str]) -> str:
        x1, y1, x2, y2 = (float(v) for v in match.groups()[:4])
        hbb = [x1 * width / 100, y1 * height / 100, x2 * width / 100, y2 * height / 100]
        angle = match.group(5) if match.re is GEOCHAT_BOX_RE else None
        if angle is not None and float(angle) != 0.0:
            cx, cy = (hbb[0] + hbb[2]) / 2, (hbb[1] + hbb[3]) / 2
            obb = [cx, cy, hbb[2] - hbb[0], hbb[3] - hbb[1], float(angle)]
            boxes.append(Box.from_quad(obb_to_quad([obb])[0]))
        else:
            boxes.append(Box.from_hbb(hbb))
        return f"<box:{len(boxes) - 1}>"

    return pattern.sub(repl, text), boxes
