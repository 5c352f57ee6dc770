"""Rotated-box detection metrics: AP / mAP, mAP_nc and the detector threshold sweep.

The protocol (parameters, defaults, and what each choice does):

- **Boxes.** Ground truth and predictions are quads ``(4, 2)`` in original-image pixels, one
  class each; predictions carry a score (1 for models that give none).
- **Matching** (``iou_mode``). ``"dota"`` (default): the DOTA devkit / evaluation server
  rule; polygon IoU of the quads as given, a prediction matches when ``IoU > t`` (strictly).
  ``"mmrotate"``: mmrotate's ``eval_rbbox_map``; both sides are first replaced by their
  minimum-area rectangles, a prediction matches when ``IoU >= t``. Either way, per class,
  going down the ranking, each prediction looks at its highest-IoU ground truth of the same
  image and class: a true positive if it passes ``t`` and is not taken yet, a false positive if
  it is taken or nothing passes, ignored (neither) if it is a *difficult* object.
- **Difficult objects** are ignored by default (``ignore_difficult=True``, the devkit). They
  neither count as positives nor penalise a prediction that finds them. mmrotate 1.x's DOTA
  dataset keeps them as ordinary objects unless its ``diff_thr`` is lowered; pass
  ``ignore_difficult=False`` to count them.
- **AP** (``metric``). ``"voc07"`` (default): 11-point interpolated AP at the devkit's recall
  levels (see :data:`rscovlm.eval.metrics.ap.VOC07_RECALLS`). ``"voc12"``: area under the
  monotone precision envelope. IoU threshold ``t`` default 0.5; several may be evaluated.
- **mAP** is the mean AP over classes with at least one non-difficult ground truth; the other
  classes are listed in :attr:`DetectionResult.excluded`, never averaged in as 0 or 1.
- **Ties** (``ties``). ``"group"`` (default): precision and recall are read only at the end
  of each block of equal scores, so the result does not depend on the order of the
  predictions. ``"stable"``: one point per prediction, tied predictions in input order.
- **mAP_nc** (``unit_scores=True``): every kept prediction scores 1, so the whole set is one
  tie block and each class contributes the single point (recall, precision) of the set. This
  is how models without confidences (VLMs) are scored.
- **Threshold sweep** for scored detectors: for ``tau`` in :data:`SWEEP_TAUS` (0, 0.05, ...,
  0.95) keep the predictions with ``score > tau``, set them to 1 and compute mAP_nc; pick the
  best ``tau`` on a validation set (the smallest on a tie) and apply it to the test set.

Speed: IoUs are computed once per evaluator, one vectorised call per image (STRtree-pruned);
every threshold, tie mode and score threshold afterwards is sorting and counting in numpy. The
pairs of every class are kept (:attr:`DetectionEvaluator.overlaps`), so the mF1 of the same
predictions (:class:`rscovlm.eval.metrics.mf1.F1Evaluator`) needs no second geometry pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm.eval.metrics.ap import Metric, Ties, average_precision, pr_points
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.matching import best_match, compute_overlaps, fit_rectangles, match_flags

__all__ = [
    "IOU_MODES",
    "SWEEP_TAUS",
    "ClassAP",
    "DetBoxes",
    "DetectionEvaluator",
    "DetectionResult",
    "IouMode",
    "ThresholdSweep",
    "evaluate_detection",
]

IouMode = Literal["dota", "mmrotate"]
IOU_MODES: tuple[IouMode, ...] = ("dota", "mmrotate")
#: Score thresholds of the detector sweep: 0, 0.05, ..., 0.95 (rounded decimals).
SWEEP_TAUS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(20))


@dataclass(frozen=True)
class ClassAP:
    """One class's numbers; ``ap``/``recall`` are ``None`` without non-difficult ground truth."""

    ap: float | None
    n_gt: int
    n_difficult: int
    n_det: int
    tp: int
    fp: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class DetectionResult:
    """mAP and per-class AP at one IoU threshold, with every setting that produced them."""

    mean_ap: float | None
    metric: Metric
    iou_mode: IouMode
    iou_threshold: float
    ties: Ties
    unit_scores: bool
    score_threshold: float | None
    ignore_difficult: bool
    per_class: dict[str, ClassAP]
    excluded: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``mAP`` first; ``None`` where a number is undefined)."""
        return {
            "mAP": self.mean_ap,
            "metric": self.metric,
            "iou_mode": self.iou_mode,
            "iou_threshold": self.iou_threshold,
            "ties": self.ties,
            "unit_scores": self.unit_scores,
            "score_threshold": self.score_threshold,
            "ignore_difficult": self.ignore_difficult,
            "per_class": {name: vars(c).copy() for name, c in self.per_class.items()},
            "excluded_classes": list(self.excluded),
        }


@dataclass(frozen=True)
class ThresholdSweep:
    """mAP_nc for each score threshold ``tau``; ``best_tau`` maximises it (smallest on a tie)."""

    taus: tuple[float, ...]
    maps: tuple[float | None, ...]
    best_tau: float
    best_map: float | None
    results: tuple[DetectionResult, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        """The curve and the pick, JSON-ready."""
        return {
            "curve": [{"tau": t, "mAP_nc": m} for t, m in zip(self.taus, self.maps, strict=True)],
            "best_tau": self.best_tau,
            "best_mAP_nc": self.best_map,
        }


class DetectionEvaluator:
    """One prediction set against one ground truth; overlaps are computed once, here.

    Args:
        gt: Ground truth boxes (``difficult`` honoured); scores are ignored.
        pred: Predictions, with image and class indices in the same spaces as ``gt``.
        classes: Class names, indexed by the labels.
        iou_mode: ``"dota"`` or ``"mmrotate"`` (see the module header).
        ignore_difficult: Ignore difficult ground truth (default) or count it as normal.
        cross_class: Keep the pairs of different classes in :attr:`overlaps` too (default),
            for an :class:`rscovlm.eval.metrics.mf1.F1Evaluator` to reuse; ``False`` clips only
            same-class pairs (AP alone: fewer pairs, the same numbers).

    Examples:
        >>> square = [[0, 0], [10, 0], [10, 10], [0, 10]]
        >>> gt = DetBoxes.create([0], [0], [square])
        >>> pred = DetBoxes.create([0, 0], [0, 0], [square, square], scores=[0.9, 0.8])
        >>> result = DetectionEvaluator(gt, pred, ["plane"]).evaluate()
        >>> result.mean_ap, result.per_class["plane"].fp
        (1.0, 1)
    """

    def __init__(
        self,
        gt: DetBoxes,
        pred: DetBoxes,
        classes: Sequence[str],
        *,
        iou_mode: IouMode = "dota",
        ignore_difficult: bool = True,
        cross_class: bool = True,
    ) -> None:
        if iou_mode not in IOU_MODES:
            raise ValueError(f"iou_mode must be one of {IOU_MODES}, got {iou_mode!r}")
        self.gt, self.pred, self.classes = gt, pred, tuple(classes)
        self.iou_mode: IouMode = iou_mode
        self.ignore_difficult = ignore_difficult
        n_cls = len(self.classes)
        for name, boxes in (("ground truth", gt), ("prediction", pred)):
            if len(boxes) and (boxes.label.min() < 0 or boxes.label.max() >= n_cls):
                raise ValueError(f"{name} labels must lie in [0, {n_cls})")
        gt_quads, pred_quads = gt.quads, pred.quads
        if iou_mode == "mmrotate":
            gt_quads, pred_quads = fit_rectangles(gt_quads), fit_rectangles(pred_quads)
        # Every pair of one image, any class, by default: mF1 / strict F1 reuse the cross-class
        # pairs (``overlaps``) instead of redoing the geometry; AP alone needs its own class only.
        self.overlaps = compute_overlaps(
            gt.image, gt.label, gt_quads, pred.image, pred.label, pred_quads,
            same_class=not cross_class,
        )  # fmt: skip
        same = pred.label[self.overlaps.pred] == gt.label[self.overlaps.gt]
        self._best_gt, self._best_iou = best_match(self.overlaps.select(same), len(pred))
        self._difficult = gt.difficult if ignore_difficult else np.zeros(len(gt), dtype=bool)
        self._n_pos = np.bincount(gt.label[~self._difficult], minlength=n_cls)
        self._n_difficult = np.bincount(gt.label[self._difficult], minlength=n_cls)
        self._orders: dict[tuple[float | None, bool], NDArray[np.int64]] = {}

    def evaluate(
        self,
        iou_threshold: float = 0.5,
        *,
        metric: Metric = "voc07",
        ties: Ties = "group",
        unit_scores: bool = False,
        score_threshold: float | None = None,
    ) -> DetectionResult:
        """AP per class and mAP.

        Args:
            iou_threshold: Matching threshold (``>`` for ``dota``, ``>=`` for ``mmrotate``).
            metric: ``"voc07"`` or ``"voc12"``.
            ties: ``"group"`` (order-independent) or ``"stable"`` (input order).
            unit_scores: Score every kept prediction 1 (mAP_nc).
            score_threshold: Keep only predictions with ``score > score_threshold``.
        """
        if metric not in ("voc07", "voc12"):
            raise ValueError(f"metric must be 'voc07' or 'voc12', got {metric!r}")
        if ties not in ("group", "stable"):
            raise ValueError(f"ties must be 'group' or 'stable', got {ties!r}")
        pred = self.pred
        scores = np.ones(len(pred)) if unit_scores else pred.scores
        order = self._order(score_threshold, unit_scores)
        strict = self.iou_mode == "dota"
        tp, fp = match_flags(
            self._best_gt, self._best_iou, self._difficult, order, iou_threshold, strict
        )
        labels = pred.label[order]
        bounds = np.searchsorted(labels, np.arange(len(self.classes) + 1))
        per_class: dict[str, ClassAP] = {}
        for c, name in enumerate(self.classes):
            part = slice(bounds[c], bounds[c + 1])
            per_class[name] = self._class_ap(
                c, tp[part], fp[part], scores[order[part]], metric, ties
            )
        aps = [c.ap for c in per_class.values() if c.ap is not None]
        excluded = tuple(name for name, c in per_class.items() if c.ap is None)
        return DetectionResult(
            mean_ap=float(np.mean(aps)) if aps else None,
            metric=metric,
            iou_mode=self.iou_mode,
            iou_threshold=float(iou_threshold),
            ties=ties,
            unit_scores=unit_scores,
            score_threshold=score_threshold,
            ignore_difficult=self.ignore_difficult,
            per_class=per_class,
            excluded=excluded,
        )

    def _order(self, score_threshold: float | None, unit_scores: bool) -> NDArray[np.int64]:
        """The kept predictions class-major, then by descending score; lexsort is stable, so
        ties stay in input order. Cached: mAP@[.5:.95] evaluates ten thresholds on one order,
        and a 200,000-box lexsort is most of one evaluation."""
        key = (score_threshold, unit_scores)
        if key not in self._orders:
            pred = self.pred
            kept = np.arange(len(pred))
            if score_threshold is not None:
                kept = kept[pred.scores > score_threshold]
            scores = np.ones(len(pred)) if unit_scores else pred.scores
            self._orders[key] = kept[np.lexsort((-scores[kept], pred.label[kept]))]
        return self._orders[key]

    def _class_ap(
        self,
        c: int,
        tp: NDArray[np.bool_],
        fp: NDArray[np.bool_],
        scores: NDArray[np.float64],
        metric: Metric,
        ties: Ties,
    ) -> ClassAP:
        n_pos, n_tp, n_fp = int(self._n_pos[c]), int(tp.sum()), int(fp.sum())
        precision = n_tp / (n_tp + n_fp) if n_tp + n_fp else None
        ap = recall = None
        if n_pos:
            rec, prec = pr_points(tp, fp, n_pos, scores, ties)
            ap, recall = average_precision(rec, prec, metric), n_tp / n_pos
        return ClassAP(ap, n_pos, int(self._n_difficult[c]), len(tp), n_tp, n_fp, precision, recall)

    def sweep(
        self,
        taus: Sequence[float] = SWEEP_TAUS,
        *,
        iou_threshold: float = 0.5,
        metric: Metric = "voc07",
    ) -> ThresholdSweep:
        """mAP_nc for each ``tau`` (keep ``score > tau``, set the kept to 1; grouped ties)."""
        if not taus:
            raise ValueError("taus must not be empty")
        results = tuple(
            self.evaluate(iou_threshold, metric=metric, unit_scores=True, score_threshold=t)
            for t in taus
        )
        maps = tuple(r.mean_ap for r in results)
        ranked = [(-m if m is not None else math.inf, i) for i, m in enumerate(maps)]
        best = min(ranked)[1]
        return ThresholdSweep(tuple(taus), maps, float(taus[best]), maps[best], results)


def evaluate_detection(
    gt: DetBoxes,
    pred: DetBoxes,
    classes: Sequence[str],
    *,
    iou_thresholds: float | ArrayLike = 0.5,
    metric: Metric = "voc07",
    iou_mode: IouMode = "dota",
    ties: Ties = "group",
    unit_scores: bool = False,
    score_threshold: float | None = None,
    ignore_difficult: bool = True,
) -> list[DetectionResult]:
    """Evaluate at one or several IoU thresholds; one :class:`DetectionResult` per threshold."""
    evaluator = DetectionEvaluator(
        gt, pred, classes, iou_mode=iou_mode, ignore_difficult=ignore_difficult
    )
    thresholds = np.atleast_1d(np.asarray(iou_thresholds, dtype=np.float64)).tolist()
    return [
        evaluator.evaluate(
            t, metric=metric, ties=ties, unit_scores=unit_scores, score_threshold=score_threshold
        )
        for t in thresholds
    ]
