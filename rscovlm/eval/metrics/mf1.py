"""mF1: LMMRotate's confusion-matrix F1, and a strict one-to-one F1 beside it.

**mF1 (LMMRotate's definition, quirks kept).** For ``C`` classes a ``(C+1) x (C+1)`` confusion
matrix, rows = ground-truth class, columns = predicted class, the last row/column =
background. Geometry as in LMMRotate: both sides are replaced by their minimum-area rectangles
(``iou_mode="mmrotate"``) and a pair *hits* when ``IoU >= 0.5``, across all classes of the
image. For every kept prediction (``score >= s``):

- each ground truth it hits adds 1 to ``cm[gt_class, pred_class]``;
- if it hits nothing, it adds 1 to ``cm[background, pred_class]``.

Each ground truth that no prediction of its own class hits adds 1 to ``cm[gt_class,
background]``. Then ``P_i = cm[i, i] / column_sum_i`` and ``R_i = cm[i, i] / row_sum_i`` (0 when
the sum is 0), ``mP`` and ``mR`` are plain means over all ``C + 1`` entries, and ``mF1 = 2 mP mR
/ (mP + mR)`` (0 when both are 0). For detectors, the best over ``s`` in 0, 0.1, ..., 0.9.

Quirks, documented rather than fixed, so numbers stay comparable with LMMRotate:

- **Background in the means.** ``cm[background, background]`` is always 0, so the background's
  P and R are 0 and both means are at most ``C / (C + 1)``; a class that neither occurs nor is
  predicted also counts as P = R = 0.
- **One detection may hit several ground truths** (and one ground truth may be hit by several
  detections): every hit is counted, so duplicates inflate the diagonal instead of being
  penalised, and one box over two touching objects counts twice.
- **Scores are kept at** ``>= s`` (the AP sweep keeps ``> tau``).
- LMMRotate takes ``C`` from the largest ground-truth label present; rscovlm uses the full
  class list (identical whenever the last class occurs).

Difficult objects follow the AP protocol by default (``ignore_difficult=True``): their hits are
not counted, a prediction whose only hits are difficult is not a background FP, and a missed
difficult object is not a miss. ``ignore_difficult=False`` is LMMRotate run on mmrotate 1.x
defaults, which keep difficult objects.

**Strict F1** (beside it): per class, the same greedy one-to-one matching as AP at the same
IoU (each ground truth matched at most once, highest score first), ``P_c = TP / (TP + FP)`` (0
without predictions), ``R_c = TP / n_gt``, means over the classes with a non-difficult ground
truth (no background entry), ``F1 = 2 mP mR / (mP + mR)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rscovlm import geometry
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.detection import IOU_MODES, IouMode
from rscovlm.eval.metrics.matching import (
    Overlaps,
    best_match,
    compute_overlaps,
    fit_rectangles,
    match_flags,
)

__all__ = ["MF1_SCORE_THRESHOLDS", "F1Evaluator", "F1Result", "F1Sweep", "lmmrotate_f1"]

#: Score thresholds of the mF1 sweep: 0, 0.1, ..., 0.9.
MF1_SCORE_THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(10))


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def lmmrotate_f1(confusion: NDArray[np.int64]) -> tuple[float, float, float]:
    """``(mP, mR, mF1)`` of a ``(C+1) x (C+1)`` confusion matrix, background included.

    Examples:
        >>> lmmrotate_f1(np.array([[2, 1], [0, 0]]))  # one class: 2 hits, 1 miss
        (0.5, 0.3333333333333333, 0.4)
    """
    tp = np.diag(confusion).astype(np.float64)
    col, row = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = tp / np.where(col == 0, 1, col)
    recall = tp / np.where(row == 0, 1, row)
    mp, mr = float(precision.mean()), float(recall.mean())
    return mp, mr, _f1(mp, mr)


@dataclass(frozen=True)
class F1Result:
    """Both F1 flavours at one score threshold (``strict_*`` are ``None`` without any GT)."""

    score_threshold: float
    mf1: float
    mp: float
    mr: float
    strict_f1: float | None
    strict_p: float | None
    strict_r: float | None
    confusion: NDArray[np.int64] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (the matrix as nested lists)."""
        out = {k: v for k, v in vars(self).items() if k != "confusion"}
        out["confusion"] = self.confusion.tolist()
        return out


@dataclass(frozen=True)
class F1Sweep:
    """F1 at every score threshold, and the best of each flavour (smallest threshold on a tie)."""

    results: tuple[F1Result, ...]

    @property
    def best(self) -> F1Result:
        """The threshold with the highest mF1."""
        return max(self.results, key=lambda r: (r.mf1, -r.score_threshold))

    @property
    def best_strict(self) -> F1Result:
        """The threshold with the highest strict F1."""
        return max(self.results, key=lambda r: (r.strict_f1 or 0.0, -r.score_threshold))

    def to_dict(self) -> dict[str, Any]:
        """The curve and both picks, JSON-ready (matrices only for the picks)."""
        curve = [
            {"score_threshold": r.score_threshold, "mF1": r.mf1, "strict_f1": r.strict_f1}
            for r in self.results
        ]
        return {
            "curve": curve,
            "best": self.best.to_dict(),
            "best_strict": self.best_strict.to_dict(),
        }


#: A quad is its own minimum-area rectangle when its sides are parallel and perpendicular to
#: this relative tolerance (what ``obb -> quad`` and shortest float text give).
RECT_TOL = 1e-9
#: Reused IoUs this close to the hit threshold are recomputed on the fitted rectangles.
RECHECK = 1e-6


def is_rectangle(quads: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether each quad already is a rectangle (so LMMRotate's fitted rectangle is itself).

    Examples:
        >>> sq = [[0, 0], [2, 0], [2, 1], [0, 1]]
        >>> is_rectangle(np.array([sq, [[0, 0], [2, 0], [3, 1], [0, 1]]], float)).tolist()
        [True, False]
    """
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    a, b = q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]
    c, d = q[:, 3] - q[:, 2], q[:, 0] - q[:, 3]
    la, lb = np.hypot(*a.T), np.hypot(*b.T)
    scale = np.maximum(la, lb)
    ok = (la > 0) & (lb > 0)
    ok &= np.hypot(*(a + c).T) <= RECT_TOL * scale
    ok &= np.hypot(*(b + d).T) <= RECT_TOL * scale
    ok &= np.abs((a * b).sum(axis=1)) <= RECT_TOL * la * lb
    return ok


def _subset_overlaps(
    gt: DetBoxes, gq: NDArray[np.float64], g_idx: NDArray[np.int64],
    pred: DetBoxes, pq: NDArray[np.float64], p_idx: NDArray[np.int64],
) -> Overlaps:  # fmt: skip
    """Any-class pairs between a subset of the ground truth and a subset of the predictions."""
    if not len(g_idx) or not len(p_idx):
        return Overlaps(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    sub = compute_overlaps(
        gt.image[g_idx], gt.label[g_idx], gq[g_idx],
        pred.image[p_idx], pred.label[p_idx], pq[p_idx], same_class=False,
    )  # fmt: skip
    return Overlaps(p_idx[sub.pred], g_idx[sub.gt], sub.iou)


def _pairs(
    gt: DetBoxes,
    pred: DetBoxes,
    iou_mode: IouMode,
    iou_threshold: float,
    overlaps: Overlaps | None,
    overlaps_mode: IouMode,
) -> Overlaps:
    """The any-class pairs (IoU > 0) in the geometry of ``iou_mode``, reusing ``overlaps``.

    - No ``overlaps``: computed here (rectangles fitted for ``"mmrotate"``).
    - ``overlaps`` in the same geometry: used as they are.
    - ``overlaps`` of the quads as given (``"dota"``) for LMMRotate's rectangles: a quad that
      already is a rectangle (:func:`is_rectangle`) is its own fitted rectangle, so a pair of
      two such boxes keeps its IoU (equal to rounding, ~1e-15). Only pairs with a
      non-rectangular side are recomputed, on fitted rectangles; reused IoUs within
      :data:`RECHECK` of the threshold are recomputed on the fitted rectangles too, so no hit
      decision depends on the rounding. Detectors write rectangles (a DOTA-trained detector's
      Task1 file is ``obb -> quad``), so for them this skips the second geometry pass.
    """
    if overlaps is not None and overlaps_mode == iou_mode:
        return overlaps
    if iou_mode == "dota":
        return compute_overlaps(
            gt.image, gt.label, gt.quads, pred.image, pred.label, pred.quads, same_class=False
        )
    if overlaps is None:
        gq, pq = fit_rectangles(gt.quads), fit_rectangles(pred.quads)
        return compute_overlaps(
            gt.image, gt.label, gq, pred.image, pred.label, pq, same_class=False
        )
    rect_g, rect_p = is_rectangle(gt.quads), is_rectangle(pred.quads)
    gq, pq = gt.quads.copy(), pred.quads.copy()
    if (~rect_g).any():
        gq[~rect_g] = fit_rectangles(gt.quads[~rect_g])
    if (~rect_p).any():
        pq[~rect_p] = fit_rectangles(pred.quads[~rect_p])
    kept = overlaps.select(rect_g[overlaps.gt] & rect_p[overlaps.pred])
    near = np.flatnonzero(np.abs(kept.iou - iou_threshold) <= RECHECK)
    iou = kept.iou.copy()
    if len(near):
        p, g = kept.pred[near], kept.gt[near]
        iou[near] = geometry.quad_iou_pairs(
            fit_rectangles(pred.quads[p]), fit_rectangles(gt.quads[g])
        )
    all_p = np.arange(len(pred))
    extra = [
        _subset_overlaps(gt, gq, np.flatnonzero(~rect_g), pred, pq, all_p),
        _subset_overlaps(gt, gq, np.flatnonzero(rect_g), pred, pq, np.flatnonzero(~rect_p)),
    ]
    return Overlaps(
        np.concatenate([kept.pred, *(e.pred for e in extra)]),
        np.concatenate([kept.gt, *(e.gt for e in extra)]),
        np.concatenate([iou, *(e.iou for e in extra)]),
    )


class F1Evaluator:
    """mF1 and strict F1 of one prediction set; pair IoUs are computed once, here.

    Args:
        gt, pred: Ground truth and predictions in the same image and class index spaces.
        classes: Class names (their number is ``C``).
        iou_threshold: Hit threshold (0.5).
        iou_mode: ``"mmrotate"`` (LMMRotate: rectangles, ``>=``) or ``"dota"`` (quads, ``>``).
        ignore_difficult: See the module header.
        overlaps: The any-class pairs an AP evaluation of the same boxes already computed
            (:attr:`rscovlm.eval.metrics.detection.DetectionEvaluator.overlaps`), in the
            geometry ``overlaps_mode``; reused instead of a second pass (see :func:`_pairs`).
        overlaps_mode: The ``iou_mode`` those overlaps were computed in.
    """

    def __init__(
        self,
        gt: DetBoxes,
        pred: DetBoxes,
        classes: Sequence[str],
        *,
        iou_threshold: float = 0.5,
        iou_mode: IouMode = "mmrotate",
        ignore_difficult: bool = True,
        overlaps: Overlaps | None = None,
        overlaps_mode: IouMode = "dota",
    ) -> None:
        if iou_mode not in IOU_MODES:
            raise ValueError(f"iou_mode must be one of {IOU_MODES}, got {iou_mode!r}")
        self.gt, self.pred, self.n_classes = gt, pred, len(classes)
        self.iou_threshold, self._strict = iou_threshold, iou_mode == "dota"
        pairs = _pairs(gt, pred, iou_mode, iou_threshold, overlaps, overlaps_mode)
        hit = pairs.iou > iou_threshold if self._strict else pairs.iou >= iou_threshold
        self._hits = pairs.select(hit)
        self._difficult = gt.difficult if ignore_difficult else np.zeros(len(gt), dtype=bool)
        same = pred.label[self._hits.pred] == gt.label[self._hits.gt]
        self._best_gt, self._best_iou = best_match(self._hits.select(same), len(pred))
        self._n_pos = np.bincount(gt.label[~self._difficult], minlength=self.n_classes)
        # Strict matching once for the whole ranking: the predictions kept at any score
        # threshold are a prefix of it, and the greedy flags of a prefix are the prefix of the
        # flags (who takes a ground truth depends only on who came before).
        self._rank = np.argsort(-pred.scores, kind="stable")
        self._rank_scores = pred.scores[self._rank]
        self._tp, self._fp = match_flags(
            self._best_gt, self._best_iou, self._difficult, self._rank, iou_threshold, self._strict
        )

    def confusion(self, score_threshold: float = 0.0) -> NDArray[np.int64]:
        """The LMMRotate confusion matrix of the predictions with ``score >= score_threshold``."""
        gt, pred, n = self.gt, self.pred, self.n_classes
        kept = pred.scores >= score_threshold
        hits = self._hits.select(kept[self._hits.pred])
        touched = np.zeros(len(pred), dtype=bool)
        touched[hits.pred] = True  # any hit, difficult included: not a background FP
        hits = hits.select(~self._difficult[hits.gt])
        g_lab, p_lab = gt.label[hits.gt], pred.label[hits.pred]
        cells = g_lab * (n + 1) + p_lab
        covered = np.zeros(len(gt), dtype=bool)
        covered[hits.gt[g_lab == p_lab]] = True
        missed = ~covered & ~self._difficult
        background_fp = kept & ~touched
        cells = np.concatenate(
            [cells, n * (n + 1) + pred.label[background_fp], gt.label[missed] * (n + 1) + n]
        )
        return np.bincount(cells, minlength=(n + 1) ** 2).reshape(n + 1, n + 1).astype(np.int64)

    def strict(self, score_threshold: float = 0.0) -> tuple[float, float, float] | None:
        """``(F1, mP, mR)`` of greedy one-to-one matching; ``None`` without any ground truth."""
        n = self.n_classes
        # The ranking descends, so ``score >= threshold`` holds exactly on a prefix of it.
        k = int(np.count_nonzero(self._rank_scores >= score_threshold))
        labels = self.pred.label[self._rank[:k]]
        n_tp = np.bincount(labels[self._tp[:k]], minlength=n)
        n_fp = np.bincount(labels[self._fp[:k]], minlength=n)
        has_gt = self._n_pos > 0
        if not has_gt.any():
            return None
        counted = n_tp + n_fp
        precision = np.where(counted > 0, n_tp / np.maximum(counted, 1), 0.0)[has_gt]
        recall = (n_tp / np.maximum(self._n_pos, 1))[has_gt]
        mp, mr = float(precision.mean()), float(recall.mean())
        return _f1(mp, mr), mp, mr

    def at(self, score_threshold: float = 0.0) -> F1Result:
        """Both flavours at one score threshold."""
        cm = self.confusion(score_threshold)
        mp, mr, mf1 = lmmrotate_f1(cm)
        strict = self.strict(score_threshold)
        sf1, sp, sr = strict if strict is not None else (None, None, None)
        return F1Result(float(score_threshold), mf1, mp, mr, sf1, sp, sr, cm)

    def sweep(self, thresholds: Sequence[float] = MF1_SCORE_THRESHOLDS) -> F1Sweep:
        """Both flavours at every threshold (for score-less predictions all rows agree)."""
        if not thresholds:
            raise ValueError("thresholds must not be empty")
        return F1Sweep(tuple(self.at(t) for t in thresholds))
