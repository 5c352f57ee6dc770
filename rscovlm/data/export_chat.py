"""Fixed-resolution conversation export for ms-swift and LLaMA-Factory ("messages + images").

Each supported record becomes one JSON line::

    {"messages": [{"role": "system", "content": ...}, {"role": "user", "content": "<image>..."},
                  {"role": "assistant", "content": ...}], "images": ["/abs/path.png"]}

Coordinates are written for ONE resolution per image: ``smart_resize`` of the original size into
the pixel band (no random resize), in the model family's convention (absolute resized pixels for
Qwen2.5-VL, the 0–1000 grid for Qwen2-VL / Qwen3-VL) through :class:`rscovlm.resolution.CoordMap`.
Train with the same band (swift ``MIN_PIXELS``/``MAX_PIXELS``, LLaMA-Factory
``image_min_pixels``/``image_max_pixels``) so the processor resizes to the size the boxes assume.
Online training (``data/render.py``) instead draws a resolution per sample.

Rendered tasks: detection (the trained plain format, WIRE §2.3: system prompt of the box kind,
``find the {categories}``, objects sorted, ``There are none.``), grounding (refGeo HBB, WIRE
§3.1) and open-ended VQA (question and answer verbatim). Other tasks are skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rscovlm.data.record import Record
from rscovlm.data.shards import atomic_write_text, iter_records, read_manifest
from rscovlm.formats.boxes import encode_detections
from rscovlm.formats.classes import get_classes
from rscovlm.formats.grounding import encode_grounding
from rscovlm.formats.objects import DetObject
from rscovlm.formats.prompts import (
    DET_SYSTEM_PROMPT_HBB,
    GROUNDING_USER_TEMPLATE,
    detection_system_prompt,
    detection_user_prompt,
)
from rscovlm.resolution import RSCOVLM_BAND, CoordMap, PixelBand

__all__ = ["CHAT_FORMATS", "export_chat", "render_fixed"]

CHAT_FORMATS = ("swift", "llamafactory")


def render_fixed(
    rec: Record,
    root: Path,
    classes: list[str] | None,
    band: PixelBand = RSCOVLM_BAND,
    family: str = "qwen2_5_vl",
    kind: Literal["hbb", "quad"] = "quad",
) -> dict[str, Any] | None:
    """One record as a messages + images sample, or ``None`` when its task is not rendered."""
    img = rec.images[0]
    if img.width is None or img.height is None:
        return None
    cmap = CoordMap.for_image(img.width, img.height, band, family)
    images = [str(root / img.path)]
    if rec.task == "detection":
        objs = []
        for obj in rec.objects:
            box = obj.box.quad_array() if kind == "quad" else np.asarray(obj.box.hbb)
            coords = np.asarray(cmap.to_model(box[None], kind)).reshape(-1)
            objs.append(DetObject.for_class(obj.class_name, kind, tuple(int(v) for v in coords)))
        names = classes or sorted({o.class_name for o in rec.objects})
        messages = [
            ("system", detection_system_prompt(kind)),
            ("user", "<image>" + detection_user_prompt(names)),
            ("assistant", encode_detections(objs, kind)),
        ]
    elif rec.task == "grounding" and len(rec.referring) == 1:
        ref = rec.referring[0]
        coords = np.asarray(cmap.to_model(np.asarray(ref.box.hbb)[None], "hbb", pre_truncate=True))
        expression = ref.expression
        messages = [
            ("system", DET_SYSTEM_PROMPT_HBB),
            ("user", "<image>" + GROUNDING_USER_TEMPLATE.format(prompt=expression)),
            ("assistant", encode_grounding([int(v) for v in coords.reshape(-1)], expression)),
        ]
    elif rec.task == "vqa" and len(rec.qa) == 1 and not rec.qa[0].choices:
        messages = [("user", "<image>" + rec.qa[0].question), ("assistant", rec.qa[0].answer)]
    else:
        return None
    return {
        "messages": [{"role": r, "content": c} for r, c in messages if c is not None],
        "images": images,
        "id": rec.uid,
    }


def _classes_by_source(manifest: dict[str, Any]) -> dict[str, list[str] | None]:
    out: dict[str, list[str] | None] = {}
    for src in manifest["recipe"]["sources"]:
        spec = src.get("classes")
        out[src["name"]] = (
            list(get_classes(spec)) if isinstance(spec, str) else spec if spec else None
        )
    return out


def export_chat(
    built_dir: str | Path,
    out: str | Path,
    fmt: str,
    *,
    band: PixelBand = RSCOVLM_BAND,
    family: str = "qwen2_5_vl",
    kind: Literal["hbb", "quad"] = "quad",
    source: str | None = None,
) -> dict[str, int]:
    """Write the JSONL (and, for LLaMA-Factory, a ``dataset_info.json`` beside it).

    Returns:
        ``{"samples": n, "skipped_<task>": m, ...}``.
    """
    manifest = read_manifest(built_dir)
    root = Path(manifest["data_root"])
    classes = _classes_by_source(manifest)
    lines: list[str] = []
    skipped: Counter[str] = Counter()
    records: Iterable[Record] = iter_records(built_dir, source)
    for rec in records:
        names = classes.get(rec.source) or rec.meta.get("classes")
        if names is None and isinstance(rec.meta.get("class_list"), str):
            names = list(get_classes(rec.meta["class_list"]))
        sample = render_fixed(rec, root, names, band, family, kind)
        if sample is None:
            skipped[f"skipped_{rec.task}"] += 1
        else:
            lines.append(json.dumps(sample, ensure_ascii=False))
    out = Path(out)
    atomic_write_text(out, "".join(line + "\n" for line in lines))
    if fmt == "llamafactory":
        info = {
            out.stem: {
                "file_name": out.name,
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"},
            }
        }  # fmt: skip
        atomic_write_text(out.parent / "dataset_info.json", json.dumps(info, indent=2) + "\n")
    return {"samples": len(lines), **dict(sorted(skipped.items()))}
