"""GeoChat-Bench referring: ``Pr(F1=1, IoU=0.5)`` — every object found, nothing extra.

**Official** (EVAL_SUITE.md §3.4, ``compute_geochat_referring_acc``):

1. boxes: *plain* takes every ``x1,y1,…,y4`` 8-int run of the output (no spaces after commas),
   or else every 4-int run; no match **crashes** the original (empty tensor). *json* strips the
   fence and ``json.loads`` it without a try, reading ``item['bbox_2d']``: any non-JSON
   output crashes. Here a crash is ``official=None`` with ``extra["official_reason"]``, never
   an exception;
2. pred AND gt are rescaled by ``orig / resized`` (a confirmed bug for the GT);
3. a 4-box becomes ``[x1,y1],[x2,y1],[x2,y2],[x1,y2]``; an 8-box's points are ordered by
   ``argsort(-atan2(y - cy, x - cx))``;
4. GIoU (``IoU - (hull - union) / hull``, hull = convex hull of both; invalid polygon or zero
   union → 0), greedy matching of the global maximum until it is < 0.5;
5. ``F1 = 2TP / (2TP + FP + FN)``; correct iff ``F1 >= 1``.

**Strict**: every box of the output — bracketed groups or plain runs of 4 (HBB), 5 (GeoChat
``[x1, y1, x2, y2, angle]``: that box rotated by ``angle`` degrees about its centre, the
``cv2.boxPoints`` convention) or 8 (quad) numbers — in the model's space times ``scale``
(the GT is NOT rescaled), plain polygon IoU, the same greedy one-to-one matching at IoU ≥ 0.5,
correct iff every GT is matched and no box is left over. No box is a parse failure (wrong).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from shapely.geometry import MultiPoint, Polygon

from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.formats import _text
from rscovlm.geometry import obb_to_quad

__all__ = [
    "box_corners",
    "geochat_referring_report",
    "greedy_tp",
    "official_boxes",
    "polygon_giou",
    "score_geochat_referring",
    "strict_boxes",
    "to_polygon_points",
]

PromptType = Literal["plain", "json"]
_CHAIN = re.compile(r"\d+(?:,\d+)*")
_GROUP = re.compile(r"\[([^\[\]]{1,400})\]")
_PLAIN_RUN = re.compile(rf"(?<![0-9A-Za-z_.])(?:{_text.NUM})(?:[ \t]*,[ \t]*{_text.NUM})+")
_MAX_BOXES = 200  # an output with more boxes is cut (and the rest counted as extra boxes)
_MAX_SCAN = 100_000
_THRESHOLD = 0.5
_INT_DIGIT_LIMIT = 4300


def _findall_runs(text: str, k: int) -> list[list[str]]:
    """``re.findall`` of ``(\\d+),…,(\\d+)`` (``k`` groups), in linear time.

    The official pattern backtracks quadratically on long digit runs. Its matches are exactly
    the consecutive ``k``-chunks of each maximal comma-joined digit chain, from the chain's
    start (a match can only begin where a chain or the previous match ends), so this gives the
    same list.

    Examples:
        >>> _findall_runs("1,2,3,4,5,6,7,8,9 and 10,11,12,13", 4)
        [['1', '2', '3', '4'], ['5', '6', '7', '8'], ['10', '11', '12', '13']]
    """
    out: list[list[str]] = []
    for chain in _CHAIN.finditer(text):
        runs = chain.group(0).split(",")
        out.extend(runs[i : i + k] for i in range(0, len(runs) - k + 1, k))
    return out


class _OfficialCrashError(Exception):
    """The original raises here; the message says how."""


def official_boxes(output: str, prompt_type: PromptType = "plain") -> list[list[float]]:
    """The official box list (§3.4 step 1); raises :class:`_OfficialCrashError` where it crashes."""
    if prompt_type == "plain":
        found = _findall_runs(output, 8) or _findall_runs(output, 4)
        if not found:
            raise _OfficialCrashError("no 4/8-int box (ValueError: empty tensor)")
        if any(len(v) > _INT_DIGIT_LIMIT for box in found for v in box):
            raise _OfficialCrashError("ValueError: int digit limit")
        try:
            return [[float(int(v)) for v in box] for box in found]
        except OverflowError:
            raise _OfficialCrashError("OverflowError: int too large for a tensor") from None
    body = output.strip()
    body = body.removeprefix("```json").removesuffix("\n```")
    try:
        items = json.loads(body)
        return [[float(v) for v in item["bbox_2d"]] for item in items]
    except Exception as err:
        raise _OfficialCrashError(f"{type(err).__name__} in json.loads/bbox_2d") from None


def to_polygon_points(box: Sequence[float]) -> np.ndarray:
    """Official corner list (§3.4 step 3) of a 4- or 8-number box, ``(k, 2)``."""
    b = [float(v) for v in box]
    if len(b) == 4:
        x1, y1, x2, y2 = b
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)
    pts = np.asarray(b[:8], dtype=np.float64).reshape(4, 2)
    c = pts.mean(axis=0)
    order = np.argsort(-np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0]))
    return pts[order]


def polygon_giou(a: np.ndarray, b: np.ndarray) -> float:
    """Official GIoU of two corner lists: invalid polygon or zero union → 0.

    Examples:
        >>> sq = to_polygon_points([0, 0, 2, 2])
        >>> polygon_giou(sq, sq), round(polygon_giou(sq, to_polygon_points([2, 0, 4, 2])), 3)
        (1.0, 0.0)
    """
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.0
    pa, pb = Polygon(a), Polygon(b)
    if not (pa.is_valid and pb.is_valid):
        return 0.0
    inter = pa.intersection(pb).area
    union = pa.area + pb.area - inter
    if union <= 0:
        return 0.0
    hull = MultiPoint(np.vstack([a, b])).convex_hull.area
    value = inter / union - ((hull - union) / hull if hull > 0 else 0.0)
    return float(value) if math.isfinite(value) else 0.0


def greedy_tp(matrix: np.ndarray, threshold: float = _THRESHOLD) -> int:
    """Greedy matching: take the global maximum while ``>= threshold``, clear its row/column.

    Greedy, not optimal: below, 0.9 is taken first and the 0.6/0.7 pair is lost.

    Examples:
        >>> greedy_tp(np.array([[0.9, 0.6], [0.7, 0.1]]))
        1
    """
    m = np.array(matrix, dtype=np.float64)
    tp = 0
    while m.size and np.max(m) >= threshold:
        i, j = np.unravel_index(int(np.argmax(m)), m.shape)
        m[i, :] = -np.inf
        m[:, j] = -np.inf
        tp += 1
    return tp


def _f1(tp: int, n_pred: int, n_gt: int) -> float:
    denom = 2 * tp + (n_pred - tp) + (n_gt - tp)
    return 2 * tp / denom if denom else 0.0


@functools.lru_cache(maxsize=4096)
def _geochat_corners(x1: float, y1: float, x2: float, y2: float, angle: float) -> tuple:
    obb = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, angle]
    return tuple(map(tuple, obb_to_quad([obb])[0].tolist()))


def _geochat_quad(box: Sequence[float]) -> np.ndarray:
    x1, y1, x2, y2, angle = (float(v) for v in box[:5])
    return np.array(_geochat_corners(x1, y1, x2, y2, angle), dtype=np.float64)


def _as_quad(box: Sequence[float]) -> np.ndarray | None:
    if len(box) == 4:
        x1, y1, x2, y2 = (float(v) for v in box)
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)
    if len(box) == 5:
        return _geochat_quad(box)
    if len(box) == 8:
        return np.asarray(box, dtype=np.float64).reshape(4, 2)
    return None


def box_corners(box: Sequence[float]) -> np.ndarray | None:
    """The ``(4, 2)`` corners of a box of 4 (HBB), 5 (GeoChat rotated) or 8 (quad) numbers, as
    the strict rule reads it (``None`` for any other length); the report draws with it.

    Examples:
        >>> box_corners([0, 0, 4, 2]).tolist()
        [[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]]
        >>> box_corners([1, 2, 3]) is None
        True
    """
    try:
        return _as_quad([float(v) for v in box])
    except (TypeError, ValueError):
        return None


def strict_boxes(output: str) -> list[np.ndarray]:
    """Every box of an output as a ``(4, 2)`` corner array (see the module docstring).

    Examples:
        >>> [q.tolist()[2] for q in strict_boxes("[[0, 0, 4, 2, 0]][[1,1,2,2]]")]
        [[4.0, 2.0], [2.0, 2.0]]
    """
    text = output[:_MAX_SCAN]
    spans = [m.group(1) for m in _GROUP.finditer(text)]
    if not spans:
        spans = [m.group(0) for m in _PLAIN_RUN.finditer(text)]
    boxes: list[np.ndarray] = []
    for span in spans:
        numbers = _text.numbers_in(span)
        if not numbers:
            continue
        quad = _as_quad(numbers)
        if quad is not None and np.all(np.isfinite(quad)):
            boxes.append(quad)
        if len(boxes) >= _MAX_BOXES:
            break
    return boxes


def _iou_matrix(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(preds), len(gts)))
    gpolys = [MultiPoint(g).convex_hull for g in gts]
    for i, p in enumerate(preds):
        pp = MultiPoint(p).convex_hull
        for j, gp in enumerate(gpolys):
            union = pp.union(gp).area
            out[i, j] = pp.intersection(gp).area / union if union > 0 else 0.0
    return out


def _official(
    output: str, gt_boxes: Sequence[Sequence[float]], scale: tuple[float, float], prompt: str
) -> tuple[float | None, str | None, dict[str, Any]]:
    try:
        preds = official_boxes(output, prompt)  # type: ignore[arg-type]
    except _OfficialCrashError as err:
        return None, f"official crashes: {err}", {}
    sx, sy = scale

    def rescale(box: Sequence[float]) -> np.ndarray:
        if len(box) == 5:  # GeoChat GT given as [x1,y1,x2,y2,angle]: its quad's corners
            box = _geochat_quad(box).reshape(-1).tolist()
        pts = to_polygon_points(box)
        return pts * np.array([sx, sy])

    try:
        p_pts = [rescale(b) for b in preds if len(b) in (4, 8)]
        g_pts = [rescale(b) for b in gt_boxes]
    except Exception as err:
        return None, f"official crashes: {type(err).__name__}", {}
    if len(p_pts) != len(preds):
        return None, "official crashes: a bbox_2d that is neither 4 nor 8 numbers", {}
    m = np.zeros((len(p_pts), len(g_pts)))
    for i, p in enumerate(p_pts):
        for j, g in enumerate(g_pts):
            m[i, j] = polygon_giou(p, g)
    tp = greedy_tp(m)
    f1 = _f1(tp, len(p_pts), len(g_pts))
    return float(f1 >= 1.0), None, {"official_tp": tp, "official_f1": f1}


def score_geochat_referring(
    output: str,
    gt_boxes: Sequence[Sequence[float]],
    scale: tuple[float, float] = (1.0, 1.0),
    prompt_type: PromptType = "plain",
) -> SampleScore:
    """Score one referring answer against its GT boxes (lists of 4, 5 or 8 numbers).

    ``scale`` maps model coordinates to the GT space (strict) and is, as in the original,
    applied to both pred and GT on the official side.

    Examples:
        >>> s = score_geochat_referring("[[10, 10, 20, 20, 90]]", [[10, 10, 20, 20, 90]])
        >>> s.strict, s.official, s.extra["official_reason"]
        (1.0, None, 'official crashes: no 4/8-int box (ValueError: empty tensor)')
        >>> score_geochat_referring("10,10,20,20 car", [[10, 10, 20, 20]]).official
        1.0
    """
    try:
        official, off_reason, extra = _official(output, gt_boxes, scale, prompt_type)
    except Exception as err:  # last line of defence: the original would have died here too
        official, off_reason, extra = None, f"official crashes: {type(err).__name__}", {}
    if off_reason:
        extra["official_reason"] = off_reason
    sx, sy = scale
    preds = [q * np.array([sx, sy]) for q in strict_boxes(output)]
    gts = [q for q in (_as_quad([float(v) for v in b]) for b in gt_boxes) if q is not None]
    if not preds:
        return SampleScore(0.0, official, False, "no box found", extra)
    ious = _iou_matrix(preds, gts)
    tp = greedy_tp(ious)
    f1 = _f1(tp, len(preds), len(gts))
    extra.update({"tp": tp, "n_pred": len(preds), "n_gt": len(gts), "f1": f1})
    # what the report draws: the boxes read (GT space) and the best overlap any of them reached
    extra["boxes"] = [q.reshape(8).tolist() for q in preds]
    extra["iou"] = float(ious.max()) if ious.size else 0.0
    return SampleScore(float(f1 >= 1.0), official, True, None, extra)


def geochat_referring_report(
    scores: Sequence[SampleScore],
    size_groups: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    n_objects: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``Pr(F1=1, IoU=0.5)`` overall and per ``size_*``, ``type_*``, ``count_single|multiple``.

    Values are fractions (as the original). ``n_objects`` is ``len(obj_ids)`` per sample.
    """
    scores = list(scores)
    entries: dict[str, list[SampleScore]] = {"Pr(F1=1, IoU=0.5)": scores}
    for prefix, keys in (("size", size_groups), ("type", types)):
        if keys is not None:
            for key, score in zip(keys, scores, strict=True):
                entries.setdefault(f"{prefix}_{key}", []).append(score)
    if n_objects is not None:
        for n, score in zip(n_objects, scores, strict=True):
            entries.setdefault(f"count_{'single' if n == 1 else 'multiple'}", []).append(score)
    return build_report(
        entries,
        scores,
        notes=["official: GIoU, GT rescaled like the prediction; crashes where noted"],
    )
