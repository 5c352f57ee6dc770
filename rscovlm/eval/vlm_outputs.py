"""Raw VLM detection outputs (JSONL, one image per line) to boxes in original pixels.

Schema of a line::

    {"image_id": "P0001__1024__0___0", "output": "<the model's answer>",
     "orig_size": [width, height], "resized_size": [width, height], "family": "qwen2_5_vl"}

- ``output`` is read with :func:`rscovlm.formats.tool_calls.strip_think` and
  :func:`rscovlm.formats.boxes.parse_detections` (plain lines or JSON; hbb, obb and quad boxes
  are all scored, unlike the original eval that dropped everything but 8-number quads). Lines
  the parser rejects are counted as unreadable; "There are none." is an image without boxes.
- Labels are matched to the class list by :class:`rscovlm.formats.labels.LabelMatcher` (exact,
  normalised, then fuzzy with a cutoff); a label matching no class is counted, never forced.
- Coordinates go back to original pixels with
  :meth:`rscovlm.resolution.CoordMap.to_original` (``v * original / resized`` as floats, or
  ``v * original / 1000`` for grid families; WIRE §2.8).
- ``family`` is optional (default ``qwen2_5_vl``, the released checkpoints); ``resized_size``
  may be left out for grid families, whose coordinates do not depend on it.
- VLMs give no confidences: every box scores 1 (the mAP_nc protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rscovlm import geometry
from rscovlm.errors import InputError
from rscovlm.formats.boxes import Rejected, parse_detections
from rscovlm.formats.tool_calls import strip_think
from rscovlm.resolution import DEFAULT_FAMILY, CoordMap, get_family

__all__ = ["VlmBoxes", "vlm_record_boxes"]

_TO_QUAD = {"quad": geometry.as_quads, "hbb": geometry.hbb_to_quad, "obb": geometry.obb_to_quad}


@dataclass
class VlmBoxes:
    """The boxes of one output line: ``(label text, (4, 2) quad)`` pairs in original pixels."""

    image_id: str
    boxes: list[tuple[str, NDArray[np.float64]]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    empty: bool = False


def _size(record: dict[str, Any], key: str) -> tuple[int, int] | None:
    value = record.get(key)
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise InputError(f"{key} must be [width, height], got {value!r}")
    return (value[0], value[1])


def vlm_record_boxes(record: dict[str, Any], default_family: str | None = None) -> VlmBoxes:
    """Parse one output line and map its boxes to original pixels.

    Raises:
        InputError: the line misses a field or a size is malformed (the caller counts the line
            as unreadable; model text itself never raises).

    Examples:
        >>> rec = {"image_id": "P1", "output": "10,20,30,40 plane\\nsorry",
        ...        "orig_size": [1000, 1000], "resized_size": [500, 500]}
        >>> out = vlm_record_boxes(rec)
        >>> out.boxes[0][0], out.boxes[0][1][2].tolist(), len(out.rejected)
        ('plane', [60.0, 80.0], 1)
    """
    image_id, text = record.get("image_id"), record.get("output")
    if image_id is None or not isinstance(text, str):
        raise InputError("needs image_id and output (str)")
    family = get_family(record.get("family") or default_family or DEFAULT_FAMILY)
    orig = _size(record, "orig_size")
    resized = _size(record, "resized_size")
    if orig is None:
        raise InputError("needs orig_size [width, height]")
    if resized is None:
        if family.coords != "grid1000":
            raise InputError(f"needs resized_size [width, height] for family {family.name}")
        resized = orig
    cmap = CoordMap(orig, resized, family)
    parsed = parse_detections(strip_think(text))
    out = VlmBoxes(str(image_id), rejected=list(parsed.rejected), empty=parsed.empty)
    for obj in parsed.objects:
        values = cmap.to_original(np.asarray(obj.coords, dtype=np.float64), obj.kind)
        quad = geometry.as_quads(_TO_QUAD[obj.kind](values))[0]
        out.boxes.append((obj.label, quad))
    return out
