"""Detection-to-ground-truth matching: sparse overlaps, best ground truth, TP/FP flags.

Matching is split in two so the expensive part runs once per evaluation:

1. :func:`compute_overlaps` computes the IoU of every (prediction, ground truth) pair of the same
   image (and, by default, the same class) with :func:`rscovlm.geometry.quad_iou_grouped`, one
   call for all images, and keeps the pairs with IoU > 0. :func:`best_match` then
   picks each prediction's highest-IoU ground truth (the first in ground-truth order on a tie,
   like ``argmax``). Neither depends on scores, thresholds or prediction order.
2. :func:`match_flags` replays the VOC/DOTA greedy rule for one processing order and one IoU
   threshold: going down the ranking, a prediction whose best ground truth passes the threshold
   is a true positive if that ground truth is not taken yet, a false positive if it is, and
   neither if it is *difficult*; a prediction that passes nothing is a false positive. The set
   of ground truths taken after any prefix is the set of best ground truths in that prefix, so
   the TP count at the end of a block of tied scores does not depend on the order inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rscovlm import geometry

__all__ = ["Overlaps", "best_match", "compute_overlaps", "fit_rectangles", "match_flags"]

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Overlaps:
    """Every compared (prediction, ground truth) pair with IoU > 0, as three flat arrays."""

    pred: IntArray
    gt: IntArray
    iou: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.pred)

    def select(self, mask: NDArray[np.bool_]) -> Overlaps:
        """The pairs where ``mask`` holds."""
        return Overlaps(self.pred[mask], self.gt[mask], self.iou[mask])


def fit_rectangles(quads: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each quad replaced by its minimum-area rectangle (mmrotate's ``qbox2rbox``, as quads)."""
    if len(quads) == 0:
        return np.zeros((0, 4, 2))
    return geometry.as_quads(geometry.obb_to_quad(geometry.quad_to_obb(quads)))


def compute_overlaps(
    gt_image: IntArray,
    gt_label: IntArray,
    gt_quads: NDArray[np.float64],
    pred_image: IntArray,
    pred_label: IntArray,
    pred_quads: NDArray[np.float64],
    *,
    same_class: bool = True,
) -> Overlaps:
    """IoU of the prediction/ground-truth pairs that share an image (and a class).

    One :func:`rscovlm.geometry.quad_iou_grouped` call for the whole set (grouped by image, or
    by image and class): the envelope search and the clipping run once over all images, and
    with ``same_class`` the pairs of different classes are never clipped at all.

    Args:
        gt_image, gt_label, gt_quads: Ground truth image index, class index, ``(M, 4, 2)``.
        pred_image, pred_label, pred_quads: The same for the predictions, ``(N, 4, 2)``.
        same_class: Keep only pairs of the same class (AP); ``False`` keeps every pair of the
            same image (confusion matrices).

    Returns:
        The pairs with IoU > 0, ordered by image, then prediction, then ground truth.
    """
    g_img = np.asarray(gt_image, dtype=np.int64).reshape(-1)
    p_img = np.asarray(pred_image, dtype=np.int64).reshape(-1)
    g_key, p_key = g_img, p_img
    if same_class:
        g_lab = np.asarray(gt_label, dtype=np.int64).reshape(-1)
        p_lab = np.asarray(pred_label, dtype=np.int64).reshape(-1)
        n_lab = int(max(g_lab.max(initial=0), p_lab.max(initial=0))) + 1
        g_key, p_key = g_img * n_lab + g_lab, p_img * n_lab + p_lab
    pred, gt, iou = geometry.quad_iou_grouped(pred_quads, p_key, gt_quads, g_key)
    n_img = int(max(g_img.max(initial=0), p_img.max(initial=0))) + 1
    n_p, n_g = max(len(p_img), 1), max(len(g_img), 1)
    if n_img * n_p * n_g < 2**62:
        # One int64 key, (image, prediction, ground truth) in mixed radix: the pairs are
        # distinct, so its argsort is the lexsort's order at a third of the cost.
        order = np.argsort((p_img[pred] * n_p + pred) * n_g + gt)
    else:  # pragma: no cover - beyond 2**62 image x prediction x ground-truth combinations
        order = np.lexsort((gt, pred, p_img[pred]))
    return Overlaps(pred[order], gt[order], iou[order])


def best_match(overlaps: Overlaps, n_pred: int) -> tuple[IntArray, NDArray[np.float64]]:
    """Each prediction's highest-IoU ground truth (``-1`` and IoU 0 when it overlaps none).

    Equal IoUs go to the lowest ground-truth index (file order), as ``argmax`` does.
    """
    best_gt = np.full(n_pred, -1, dtype=np.int64)
    best_iou = np.zeros(n_pred, dtype=np.float64)
    if len(overlaps):
        pred, gt, iou = overlaps.pred, overlaps.gt, overlaps.iou
        dp, dg = np.diff(pred), np.diff(gt)
        new_run = dp != 0
        runs = 1 + int(new_run.sum())
        if runs == np.count_nonzero(np.bincount(pred)) and (dg[~new_run] > 0).all():
            # Each prediction's pairs in one run, ground truth ascending in it (the order of
            # compute_overlaps): the run maximum, then its first (lowest-gt) holder, with no
            # sort; the same pairs as the lexsort below, by exact comparisons only.
            starts = np.flatnonzero(np.append(True, new_run))
            top = np.maximum.reduceat(iou, starts)
            group = np.cumsum(np.append(False, new_run))
            holders = np.flatnonzero(iou == top[group])
            first = holders[np.append(True, group[holders[1:]] != group[holders[:-1]])]
        else:
            order = np.lexsort((gt, -iou, pred))
            pred_sorted = pred[order]
            first = order[np.append(True, pred_sorted[1:] != pred_sorted[:-1])]
        best_gt[pred[first]] = gt[first]
        best_iou[pred[first]] = iou[first]
    return best_gt, best_iou


def match_flags(
    best_gt: IntArray,
    best_iou: NDArray[np.float64],
    gt_difficult: NDArray[np.bool_],
    order: IntArray,
    iou_threshold: float,
    strict: bool,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """TP and FP flags of the predictions ``order`` (processing order), for one threshold.

    Args:
        best_gt, best_iou: From :func:`best_match`, indexed by prediction.
        gt_difficult: Per ground truth; a prediction whose best match is difficult is ignored.
        order: Prediction indices in processing order (highest score first).
        iou_threshold: The matching threshold.
        strict: ``IoU > threshold`` (DOTA devkit) instead of ``IoU >= threshold`` (mmrotate).

    Returns:
        ``(tp, fp)`` boolean arrays aligned with ``order``; both false means ignored.
    """
    gt = best_gt[order]
    iou = best_iou[order]
    hit = (iou > iou_threshold) if strict else (iou >= iou_threshold)
    hit &= gt >= 0
    ignored = np.zeros(len(order), dtype=bool)
    ignored[hit] = gt_difficult[gt[hit]]
    counted = np.flatnonzero(hit & ~ignored)
    tp = np.zeros(len(order), dtype=bool)
    # The first prediction to reach a ground truth takes it: the smallest position per ground
    # truth, by one unbuffered minimum (linear; np.unique's sort was most of an evaluation).
    first = np.full(len(gt_difficult), len(counted), dtype=np.int64)
    np.minimum.at(first, gt[counted], np.arange(len(counted), dtype=np.int64))
    tp[counted[first[first < len(counted)]]] = True
    fp = ~hit | (hit & ~ignored & ~tp)
    return tp, fp
