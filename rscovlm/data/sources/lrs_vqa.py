"""LRS-VQA: VQA on large remote-sensing images, benchmark and Zoom-in Chain training files.

Benchmark (``LRS_VQA_merged.jsonl``, 7,333 questions), one question per line: ``question_id``
(``FAIR_n``, ``STAR_n``, ``GLH-Bridge_n``), ``image`` (relative path), ``category`` (8 kinds:
``rural or urban``, ``count``, ``reasoning``, ``object status``, ``object category``,
``object shape``, ``object color``, ``object background``), ``text`` (question + the
answer-format suffix, kept verbatim since the eval prompt uses it as is), ``ground_truth``,
``image_size`` [W, H], and for non-count questions ``hbox`` [x1, y1, x2, y2], ``rbox`` (8
floats), ``abs_size``, ``size_bin``. Images (up to 27,328 px a side) are not in the file.

Training files (json list or JSONL) carry ``bbox_info: {crop_hbox: [[x1, y1, x2, y2], ...],
rbox: [...]}`` and either ``question``/``answer`` or the multiple-choice fields ``Text``,
``Answer choices``, ``Ground truth``. Crop boxes become the record's ``zoom`` regions: one region
makes a Zoom-in Chain sample, several a single-turn QA (decided by the renderer, WIRE §4.3).

Citation: Luo et al., "When Large Vision-Language Model Meets Large Remote Sensing Imagery:
Coarse-to-Fine Text-Guided Token Pruning", ICCV 2025. Licence: research use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rscovlm.data.record import QA, Box, Record
from rscovlm.data.sources._common import (
    Item,
    bad,
    finite_floats,
    image_ref,
    iter_json_items,
    json_paths,
    rel,
)

__all__ = ["LRS_VQA_CATEGORIES", "iter_lrs_vqa_records"]

LRS_VQA_CATEGORIES = (
    "rural or urban",
    "count",
    "reasoning",
    "object status",
    "object category",
    "object shape",
    "object color",
    "object background",
)


def iter_lrs_vqa_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "lrs_vqa",
    split: str | None = None,
    image_root: str | None = None,
) -> Iterator[Item]:
    """Yield one VQA record per question of an LRS-VQA benchmark or training file, in file order.

    Args:
        root: Data root of the build.
        path: The json / JSONL file under ``root``.
        source: Source name written into the records.
        split: Split name (default ``test`` for the benchmark, ``train`` for training files).
        image_root: Folder the ``image`` paths are relative to, under ``root`` (default: the
            file's folder).
    """
    root, file, img_root = json_paths(root, path, image_root)

    def item(entry_id: str, entry: dict[str, Any]) -> Item:
        rec = _record(entry, root, img_root, source, split, rel(root, file))
        if isinstance(rec, str):
            return bad(source, root, file, str(entry.get("question_id", entry_id)), rec)
        return rec

    yield from iter_json_items(root, file, source, item)


def _record(
    entry: dict[str, Any],
    root: Path,
    img_root: Path,
    source: str,
    split: str | None,
    source_file: str,
) -> Record | str:
    qid = entry.get("question_id", entry.get("id", entry.get("Question_id")))
    image = entry.get("image", entry.get("Image"))
    if qid is None or not isinstance(image, str) or not image:
        return "entry without question_id or image"
    choices = entry.get("Answer choices")
    if "Text" in entry:
        question, answer = entry.get("Text"), entry.get("Ground truth")
    elif "text" in entry:
        question, answer = entry.get("text"), entry.get("ground_truth")
    else:
        question, answer = entry.get("question"), entry.get("answer")
    if not isinstance(question, str) or answer is None:
        return "entry without question text or answer"
    size = _size(entry)
    if isinstance(size, str):
        return size
    evidence: list[Box] = []
    zoom: list[Box] = []
    bbox_info = entry.get("bbox_info")
    try:
        if "hbox" in entry:
            evidence.append(_box(entry["hbox"], entry.get("rbox")))
        if isinstance(bbox_info, dict):
            zoom = [Box.from_hbb(_floats(b, 4)) for b in bbox_info.get("crop_hbox") or []]
            rboxes = bbox_info.get("rbox") or []
            if rboxes and not isinstance(rboxes[0], list):
                rboxes = [rboxes]
            evidence += [Box.from_quad(_floats(r, 8)) for r in rboxes]
    except ValueError as exc:
        return str(exc)
    meta = {k: entry[k] for k in ("abs_size", "size_bin") if k in entry}
    meta["question_id"] = qid
    default_split = "train" if isinstance(bbox_info, dict) else "test"
    return Record(
        id=str(qid),
        source=source,
        split=split or default_split,
        task="vqa",
        images=[image_ref(root, img_root / image, *size)],
        qa=[
            QA(
                question=question,
                answer=str(answer),
                category=entry.get("category", entry.get("Category")),
                choices=list(choices) if isinstance(choices, list) else None,
                evidence=evidence,
            )
        ],
        zoom=zoom,
        source_file=source_file,
        meta=meta,
    )


def _size(entry: dict[str, Any]) -> tuple[int | None, int | None] | str:
    size = entry.get("image_size")
    if size is None and "image_ori_width" in entry:
        size = [entry.get("image_ori_width"), entry.get("image_ori_height")]
    if size is None:
        return None, None
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        return f"image_size {size!r} is not [W, H]"
    return width, height


def _floats(values: Any, count: int) -> list[float]:
    out = finite_floats(values if isinstance(values, list) else [], count)
    if isinstance(out, str):
        raise ValueError(f"box {values!r}: {out}")
    return out


def _box(hbox: Any, rbox: Any) -> Box:
    hbb = _floats(hbox, 4)
    if rbox is None:
        return Box.from_hbb(hbb)
    quad = _floats(rbox, 8)
    return Box(hbb=hbb, quad=[quad[i : i + 2] for i in range(0, 8, 2)])
