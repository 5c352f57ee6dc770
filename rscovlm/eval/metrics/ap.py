"""Average precision from match flags: precision/recall points, the VOC07 and VOC12 rules.

The inputs are per-detection flags in processing order (descending score): ``tp`` (matched a
new ground truth), ``fp`` (matched nothing, or a ground truth already taken). A detection that
is neither (it matched a *difficult* ground truth) only moves along the ranking.

Tie handling decides *where* precision and recall are read:

- ``"group"`` (rscovlm default): one point per block of equal scores, read after the whole
  block. The cumulative counts at a block's end do not depend on how the block is ordered, so
  the curve, and the AP, are independent of the order of the predictions.
- ``"stable"``: one point per detection, ties kept in input order (a stable sort): the
  classic per-detection curve, for comparison with old numbers. Those came from the devkit's
  ``np.argsort(-scores)`` (quicksort, not stable), so their tied order, and their value, was
  whatever that sort left; every order scores at least the grouped value.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["VOC07_RECALLS", "Metric", "Ties", "average_precision", "pr_points"]

Metric = Literal["voc07", "voc12"]
Ties = Literal["group", "stable"]

#: The 11 recall levels of VOC07, as the DOTA devkit builds them (``np.arange(0, 1.1, 0.1)``).
#: Several are not the decimal value (``0.30000000000000004``, ``0.6000000000000001``, ...), so
#: a curve that reaches recall exactly 3/10 does not count at the level "0.3"; kept on purpose,
#: so the numbers match the devkit and the DOTA evaluation server to the last bit.
VOC07_RECALLS: NDArray[np.float64] = np.arange(0.0, 1.1, 0.1)

_EPS = np.finfo(np.float64).eps


def pr_points(
    tp: ArrayLike,
    fp: ArrayLike,
    n_pos: int,
    scores: ArrayLike | None = None,
    ties: Ties = "group",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The (recall, precision) points of a ranked list of detections.

    Args:
        tp: True-positive flags in processing order (descending score).
        fp: False-positive flags, same order; a detection may be neither (difficult match).
        n_pos: Number of non-difficult ground truths of the class (> 0).
        scores: The scores in processing order; needed for ``ties="group"``.
        ties: ``"group"`` reads one point at the end of each block of equal scores,
            ``"stable"`` one point per detection.

    Returns:
        ``(recall, precision)``, both non-empty only when there are detections. Precision is
        ``tp / max(tp + fp, eps)`` as in the devkit, so a point with no counted detection has
        precision 0.
    """
    tp_cum = np.cumsum(np.asarray(tp, dtype=np.float64))
    fp_cum = np.cumsum(np.asarray(fp, dtype=np.float64))
    if ties == "group" and len(tp_cum):
        if scores is None:
            raise ValueError("ties='group' needs the scores")
        s = np.asarray(scores, dtype=np.float64)
        ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
        tp_cum, fp_cum = tp_cum[ends], fp_cum[ends]
    elif ties not in ("group", "stable"):
        raise ValueError(f"ties must be 'group' or 'stable', got {ties!r}")
    recall = tp_cum / float(n_pos)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, _EPS)
    return recall, precision


def average_precision(recall: ArrayLike, precision: ArrayLike, metric: Metric = "voc07") -> float:
    """AP of a precision/recall curve whose recall never decreases.

    ``voc07``: the mean over the 11 levels of :data:`VOC07_RECALLS` of the highest precision
    at a recall ``>=`` the level (0 when the curve never gets there). The sum is exact
    (``math.fsum``), so a perfect curve gives exactly 1; the devkit's running sum of ``p / 11``
    can differ from it in the last bit (``1.0000000000000002``). ``voc12``: the area under
    the curve after making precision monotone (each point takes the highest precision at any
    larger recall), with the curve closed by ``(0, 0)`` and ``(1, 0)``.

    Examples:
        >>> average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], "voc12")
        0.8333333333333333
        >>> round(average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], "voc07"), 6)
        0.848485
    """
    rec = np.asarray(recall, dtype=np.float64)
    prec = np.asarray(precision, dtype=np.float64)
    if metric == "voc07":
        if len(rec) == 0:
            return 0.0
        # Highest precision at this point or any later one (recall is non-decreasing), and the
        # first point reaching each level.
        envelope = np.maximum.accumulate(prec[::-1])[::-1]
        first = np.searchsorted(rec, VOC07_RECALLS, side="left")
        reached = first < len(rec)
        return math.fsum(envelope[first[reached]].tolist()) / 11.0
    if metric == "voc12":
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    raise ValueError(f"metric must be 'voc07' or 'voc12', got {metric!r}")
