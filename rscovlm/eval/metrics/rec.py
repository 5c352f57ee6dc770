"""Referring expression comprehension (one box): official ``acc@0.5`` and strict continuous IoU.

**Official** (EVAL_SUITE.md §2, §3.1–§3.3), reproduced with its bugs:

- :func:`official_extract_box` = ``extract_qwen25vl_bbox_answer``: *plain* reads only the first
  line, four comma-joined ints (no spaces) and a required label; *json* the first bracketed
  4-tuple anywhere, as floats. When all four values are ≤ 1 the box is "normalised" and each
  value becomes ``int(v * 1000)``. In plain mode ``v`` is a *string*, so ``'1' * 1000`` makes a
  1000-digit int. rscovlm never builds it: such a coordinate is a :class:`RepeatedDigits`
  (exact, with its digit count), and the official score of that output is 0 — the box lies
  ~10**999 px away, and the original then either overflows in ``resize_bbox`` (VLM-R1) or
  fails ``assert not normalized`` (GeoGround): wrong either way.
- :func:`official_iou`: overlap counts only when BOTH extents are > 1 (the ``+1`` pixel
  convention applied to float boxes), else 0.
- the prediction is always rescaled by ``orig / resized`` (even a "normalised" one), and a
  sample is correct iff ``IoU > 0.5`` (strict inequality); reported ``100 · correct / N``.

**Strict**: the first box anywhere (:func:`rscovlm.formats.grounding.parse_grounding`: plain or
JSON, ints or floats; a quad or oriented box becomes its enclosing HBB), rescaled by the same
factors, continuous IoU (no ``+1``), correct iff ``IoU >= 0.5``. No box is a parse failure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rscovlm.eval.metrics.score import SampleScore, build_report, group_by
from rscovlm.formats.grounding import parse_grounding
from rscovlm.geometry import obb_to_hbb, quad_to_hbb

__all__ = [
    "OfficialBox",
    "RepeatedDigits",
    "geoground_report",
    "iou",
    "official_extract_box",
    "official_iou",
    "rec_report",
    "score_rec",
]

PromptType = Literal["plain", "json"]
_PLAIN_RE = re.compile(r"(\d+),(\d+),(\d+),(\d+)\s+(.+?)\s*$")
_F = r"(\s*-?\d*\.?\d+\s*)"
_JSON_RE = re.compile(rf"\[{_F},\s*{_F},\s*{_F},\s*{_F}\]")
_MAX_SCAN = 100_000  # characters of one output searched (the official reads all; same result
# for any realistic output, and bounded time for a runaway one)


@dataclass(frozen=True)
class RepeatedDigits:
    """The official plain-mode ``int(v * 1000)`` of a digit string ``v``, never materialised.

    Examples:
        >>> RepeatedDigits("1", 1000).n_digits, RepeatedDigits("01", 1000).n_digits
        (1000, 1999)
    """

    digits: str
    times: int

    @property
    def n_digits(self) -> int:
        """Decimal digits of the int the original builds (leading zeros dropped)."""
        lead = len(self.digits) - len(self.digits.lstrip("0"))
        return len(self.digits) * self.times - lead

    def __repr__(self) -> str:
        return f"<{self.n_digits}-digit int>"


Coord = float | int | RepeatedDigits


@dataclass(frozen=True)
class OfficialBox:
    """What ``extract_qwen25vl_bbox_answer`` returns: the box and the "normalised" flag."""

    box: tuple[Coord, Coord, Coord, Coord]
    normalized: bool
    error: str | None = None  # the exception the original raises while parsing, if any

    @property
    def huge(self) -> bool:
        """Whether a coordinate is a 1000-digit int (the plain-mode bug)."""
        return any(isinstance(v, RepeatedDigits) for v in self.box)


_ZERO = OfficialBox((0, 0, 0, 0), False)


#: CPython refuses ``int()`` of longer digit strings (``sys.get_int_max_str_digits`` default).
_INT_DIGIT_LIMIT = 4300
_INT_LIMIT_ERROR = "ValueError: Exceeds the limit (4300 digits) for integer string conversion"


def _times_1000(v: str) -> Coord:
    if all(ch == "0" for ch in v):
        return 0
    return RepeatedDigits(v, 1000)


def official_extract_box(content: str, prompt_type: PromptType = "plain") -> OfficialBox:
    """``extract_qwen25vl_bbox_answer`` (§2), bug included, on any string.

    Examples:
        >>> official_extract_box("12,34,56,78 the car\\n").box
        (12, 34, 56, 78)
        >>> official_extract_box("0,0,1,1 car").box
        (0, 0, <1000-digit int>, <1000-digit int>)
        >>> b = official_extract_box("[0.1, 0.2, 0.5, 0.6]", "json")
        >>> b.box, b.normalized
        ((100, 200, 500, 600), True)
    """
    if prompt_type == "plain":
        found = _PLAIN_RE.match(content.strip().split("\n")[0].strip())
        if not found:
            return _ZERO
        strings = found.groups()[:4]
        if all(float(v) <= 1 for v in strings):  # digit strings: float() is exact enough
            if any(len(v) * 1000 > _INT_DIGIT_LIMIT for v in strings):
                return OfficialBox((0, 0, 0, 0), True, _INT_LIMIT_ERROR)
            a, b, c, d = (_times_1000(v) for v in strings)
            return OfficialBox((a, b, c, d), True)
        if any(len(v) > _INT_DIGIT_LIMIT for v in strings):
            return OfficialBox((0, 0, 0, 0), False, _INT_LIMIT_ERROR)
        a, b, c, d = (int(v) for v in strings)
        return OfficialBox((a, b, c, d), False)
    found = _JSON_RE.search(content[:_MAX_SCAN])
    if not found:
        return _ZERO
    values = [float(v) for v in found.groups()]
    if all(v <= 1 for v in values):
        if not all(math.isfinite(v * 1000) for v in values):
            return OfficialBox((0, 0, 0, 0), True, "OverflowError: cannot convert float infinity")
        a, b, c, d = (int(v * 1000) for v in values)
        return OfficialBox((a, b, c, d), True)
    a, b, c, d = values
    return OfficialBox((a, b, c, d), False)


def official_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """The official REC IoU (§2): overlap only when both extents are > 1.

    Examples:
        >>> official_iou([0, 0, 10, 10], [5, 5, 15, 15])
        0.14285714285714285
        >>> official_iou([0, 0, 10, 10], [9, 0, 20, 10])
        0.0
    """
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    inter = ix * iy if (ix > 1 and iy > 1) else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if not union or not math.isfinite(union):  # the original divides; 0 would raise there
        return 0.0
    value = inter / union
    return float(value) if math.isfinite(value) else 0.0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard continuous IoU of two ``x1,y1,x2,y2`` boxes (an inverted box has no area).

    Examples:
        >>> iou([0, 0, 10, 10], [9, 0, 20, 10])
        0.05
    """
    wa, ha = max(0.0, a[2] - a[0]), max(0.0, a[3] - a[1])
    wb, hb = max(0.0, b[2] - b[0]), max(0.0, b[3] - b[1])
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = wa * ha + wb * hb - inter
    if not (union > 0) or not math.isfinite(union):
        return 0.0
    value = inter / union
    return float(value) if math.isfinite(value) else 0.0


def _strict_box(output: str) -> tuple[tuple[float, float, float, float] | None, str | None]:
    parsed = parse_grounding(output)
    if parsed.box is None:
        return None, parsed.reason or "no box found"
    values = np.asarray(parsed.box, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return None, "non-finite coordinates"
    if parsed.kind == "quad":
        values = quad_to_hbb(values.reshape(1, 8))[0]
    elif parsed.kind == "obb":
        values = obb_to_hbb(values.reshape(1, 5))[0]
    x1, y1, x2, y2 = (float(v) for v in values[:4])
    return (x1, y1, x2, y2), None


def score_rec(
    output: str,
    gt_box: Sequence[float],
    scale: tuple[float, float] = (1.0, 1.0),
    prompt_type: PromptType = "plain",
) -> SampleScore:
    """Score one REC answer against its ground-truth HBB (original pixels).

    Args:
        output: The model output.
        gt_box: ``x1, y1, x2, y2`` in original pixels.
        scale: ``(W_orig / W_resized, H_orig / H_resized)``: model box → original pixels.
        prompt_type: Which official parser applies (``--grounding_prompt_type``).

    Examples:
        >>> s = score_rec("12,34,56,78 car", [12, 34, 56, 78])
        >>> s.strict, s.official, s.extra["iou"]
        (1.0, 1.0, 1.0)
        >>> score_rec("0,0,1,1 car", [0, 0, 1, 1]).official
        0.0
    """
    sx, sy = scale
    gt = tuple(float(v) for v in gt_box)
    extra: dict[str, Any] = {}
    off = official_extract_box(output, prompt_type)
    extra["official_box"] = off.box
    extra["official_normalized"] = off.normalized
    official_reason: str | None = None
    if off.error is not None:
        official_iou_value = 0.0
        official_reason = f"official crashes: {off.error}"
    elif off.huge:
        official_iou_value = 0.0
        extra["official_note"] = (
            "plain normalised box: the original builds a 1000-digit int, then overflows or "
            "asserts; counted wrong"
        )
    else:
        try:
            o = [float(v) for v in off.box]  # type: ignore[arg-type]
            official_iou_value = official_iou([o[0] * sx, o[1] * sy, o[2] * sx, o[3] * sy], gt)
        except OverflowError:  # a 400-digit int: resize_bbox overflows in the original too
            official_iou_value = 0.0
            official_reason = "official crashes: OverflowError in resize_bbox"
    extra["official_iou"] = official_iou_value
    official = None if official_reason else float(official_iou_value > 0.5)
    if official_reason:
        extra["official_reason"] = official_reason
    box, reason = _strict_box(output)
    if box is None:
        extra["iou"] = 0.0
        return SampleScore(0.0, official, False, reason, extra)
    pred = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    value = iou(pred, gt)
    extra["box"] = pred
    extra["iou"] = value
    return SampleScore(float(value >= 0.5), official, True, None, extra)


def rec_report(scores: Sequence[SampleScore]) -> dict[str, Any]:
    """``{"acc@0.5"}`` (percent) for VLM-R1 REC and ``vrsbench_referring`` (§3.1, §3.3).

    The strict side adds ``mIoU`` (percent, continuous IoU, failures count 0).
    """
    scores = list(scores)
    report = build_report(
        {"acc@0.5": scores},
        scores,
        scale=100.0,
        notes=["official: IoU with the '+1' strict-extent rule, IoU > 0.5, box always rescaled"],
    )
    ious = [float(s.extra.get("iou", 0.0)) for s in scores]
    report["strict"]["mIoU"] = 100.0 * float(np.mean(ious)) if ious else None
    return report


def geoground_report(scores: Sequence[SampleScore], subsets: Sequence[str]) -> dict[str, Any]:
    """GeoGround (§3.2): one ``acc@0.5`` (percent) per ``dataset_name`` and no overall officially.

    The strict side adds ``overall`` (all samples pooled).
    """
    scores = list(scores)
    groups = {str(k): v for k, v in group_by(scores, list(subsets)).items()}
    report = build_report(groups, scores, scale=100.0, notes=["official: no overall value"])
    report["strict"]["overall"] = build_report({"o": scores}, scores, 100.0)["strict"]["o"]
    return report
