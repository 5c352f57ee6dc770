"""Referring segmentation (RRSIS-D): mIoU, oIoU and P@0.5…0.9 on binary masks.

The official code has NO metric for ``res_rrsisd_*`` (EVAL_SUITE.md §3.10: ``NotImplementedError``),
so both sides use the metric the RRSIS-D literature reports (LAVT-style):

- per sample ``IoU = |P ∩ G| / |P ∪ G|`` (an empty union, both masks empty, counts 1);
- ``mIoU`` = mean of the per-sample IoUs; ``oIoU`` = Σ intersections / Σ unions;
- ``P@t`` = fraction of samples with ``IoU >= t`` for t in 0.5, 0.6, 0.7, 0.8, 0.9 (percent).

The prediction is the model's row-wise RLE grid (:func:`rscovlm.formats.rle.parse_rle`), one
cell per 28×28 patch of the resized image, blown up to the GT mask's size by nearest
neighbour. An unreadable answer is a parse failure with an empty mask (IoU 0 unless the GT is
empty). ``strict`` and ``official`` are equal here: there is no official rule to differ from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from rscovlm.errors import InputError
from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.formats.rle import parse_rle

__all__ = ["PRECISION_THRESHOLDS", "mask_iou", "score_mask", "score_rle", "segmentation_report"]

PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def mask_iou(pred: ArrayLike, gt: ArrayLike) -> tuple[float, int, int]:
    """``(IoU, intersection, union)`` of two same-shape masks (non-zero = foreground).

    Examples:
        >>> mask_iou([[1, 1], [0, 0]], [[1, 0], [0, 0]])
        (0.5, 1, 2)
    """
    p, g = np.asarray(pred) != 0, np.asarray(gt) != 0
    if p.shape != g.shape:
        raise InputError(f"mask shapes differ: {p.shape} vs {g.shape}")
    inter = int(np.logical_and(p, g).sum())
    union = int(np.logical_or(p, g).sum())
    return (inter / union if union else 1.0), inter, union


def _upsample(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * grid.shape[0] // shape[0]).clip(0, grid.shape[0] - 1)
    cols = (np.arange(shape[1]) * grid.shape[1] // shape[1]).clip(0, grid.shape[1] - 1)
    return grid[np.ix_(rows, cols)]


def score_mask(pred: ArrayLike, gt: ArrayLike) -> SampleScore:
    """Score a predicted mask already at the GT's size."""
    value, inter, union = mask_iou(pred, gt)
    return SampleScore(value, value, True, None, {"iou": value, "inter": inter, "union": union})


def score_rle(output: str, gt: ArrayLike, grid_shape: tuple[int, int] | None = None) -> SampleScore:
    """Score an RLE answer against a GT mask (original pixels).

    Args:
        output: The model output (``<seg>…</seg>`` row-wise RLE).
        gt: The ground-truth mask.
        grid_shape: Expected ``(rows, cols)`` of the token grid, if known.

    Examples:
        >>> s = score_rle("<seg>1*2;0*2;</seg>", np.array([[1, 1], [0, 0]]))
        >>> s.strict, s.parsed
        (1.0, True)
        >>> score_rle("no idea", np.ones((4, 4))).parsed
        False
    """
    g = np.asarray(gt) != 0
    parsed = parse_rle(output, grid_shape)
    if parsed.mask is None or parsed.mask.size == 0 or g.size == 0:
        value, inter, union = mask_iou(np.zeros_like(g), g)
        extra = {"iou": value, "inter": inter, "union": union}
        return SampleScore(value, value, False, parsed.reason or "empty mask", extra)
    pred = _upsample(parsed.mask != 0, (g.shape[0], g.shape[1]))
    return score_mask(pred, g)


def segmentation_report(scores: Sequence[SampleScore]) -> dict[str, Any]:
    """``mIoU``, ``oIoU`` and ``P@0.5``…``P@0.9`` in percent (strict = official)."""
    scores = list(scores)
    report = build_report({"mIoU": scores}, scores, scale=100.0, notes=["no official metric"])
    inter = sum(int(s.extra.get("inter", 0)) for s in scores)
    union = sum(int(s.extra.get("union", 0)) for s in scores)
    for side in ("strict", "official"):
        report[side]["oIoU"] = 100.0 * inter / union if union else None
        for t in PRECISION_THRESHOLDS:
            hits = [float(s.extra.get("iou", 0.0) >= t) for s in scores]
            report[side][f"P@{t}"] = 100.0 * sum(hits) / len(hits) if hits else None
    return report
