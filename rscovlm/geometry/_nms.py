"""Greedy rotated non-maximum suppression of quads by polygon IoU."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rscovlm.geometry import _convex
from rscovlm.geometry._iou import _iou_at
from rscovlm.geometry._kinds import IntArray
from rscovlm.geometry._validity import _repair


def rotated_nms(
    quads: ArrayLike,
    scores: ArrayLike,
    iou_threshold: float,
    labels: ArrayLike | None = None,
) -> IntArray:
    """Greedy non-maximum suppression of quads by polygon IoU.

    Boxes are visited by descending score (ties: lower index first; NaN scores last); a box is
    dropped when its IoU with an already kept box is ``> iou_threshold``. With ``labels``, only
    boxes of the same label suppress each other. Only pairs whose envelopes meet (an STRtree) and
    whose IoU upper bound passes the threshold get a polygon IoU (the same values as
    :func:`quad_iou_matrix`), so the cost follows the overlaps rather than N².

    Returns:
        Indices of the kept boxes, int64, in visiting order.

    Raises:
        ValueError: if the lengths disagree or ``iou_threshold`` is not in ``[0, 1]``.
    """
    prep = _repair(quads)
    area, n = prep.area, len(prep.q)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != n or (labels is not None and len(np.asarray(labels).reshape(-1)) != n):
        raise ValueError(f"{n} quads need {n} scores (and labels), got {len(s)}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    order = np.argsort(-s, kind="stable")
    if n == 0:
        return order.astype(np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    hbb = prep.hbb()
    valid = np.flatnonzero(prep.valid)
    i, j = _convex.envelope_pairs(hbb[valid], hbb[valid])  # pairs whose envelopes meet
    i, j = valid[i], valid[j]
    keep = rank[i] < rank[j]  # i is visited first; drops self pairs and duplicates
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        keep &= lab[i] == lab[j]
    i, j = i[keep], j[keep]
    # Exact pruning before the costly polygon overlay: the intersection is at most the hbbs'
    # intersection and the smaller area, and IoU grows with the intersection (slack for rounding).
    wh = np.clip(np.minimum(hbb[i, 2:], hbb[j, 2:]) - np.maximum(hbb[i, :2], hbb[j, :2]), 0, None)
    bound = np.minimum(wh[:, 0] * wh[:, 1], np.minimum(area[i], area[j]))
    keep = bound / (area[i] + area[j] - bound) > iou_threshold - 1e-9
    i, j = i[keep], j[keep]
    hit = _iou_at(prep, prep, i, j) > iou_threshold
    i, j = i[hit], j[hit]
    by_rank = np.argsort(rank[i], kind="stable")
    i, j = i[by_rank], j[by_rank]
    suppressed = np.zeros(n, dtype=bool)
    # Only boxes that would suppress something need visiting; the rest cannot change anything.
    sources, starts = np.unique(rank[i], return_index=True)
    ends = np.append(starts, len(i))[1:]
    for src_rank, lo, hi in zip(sources.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if not suppressed[order[src_rank]]:
            suppressed[j[lo:hi]] = True
    return order[~suppressed[order]].astype(np.int64)
