"""mF1 (LMMRotate confusion matrix, quirks included) and the strict one-to-one F1."""

from __future__ import annotations

import numpy as np
import pytest

from rscovlm.eval.detection_io import GroundTruth
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.mf1 import MF1_SCORE_THRESHOLDS, F1Evaluator, lmmrotate_f1


def _rect(x1: float, y1: float, x2: float, y2: float) -> list[list[float]]:
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


# Classes a (0) and b (1). g1 (a) and g2 (b) overlap with IoU 0.9.
GT = DetBoxes.create([0, 0], [0, 1], [_rect(0, 0, 10, 10), _rect(0, 0, 10, 9)])


def test_one_detection_hits_two_ground_truths() -> None:
    # p1 (a) covers g1 (IoU 1) and g2 (IoU 0.9): both hits count, cm[a,a] and cm[b,a].
    # p2 (b) hits nothing: background FP cm[bg,b]. g2 has no hit of its own class: cm[b,bg].
    pred = DetBoxes.create([0, 0], [0, 1], [_rect(0, 0, 10, 10), _rect(50, 50, 60, 60)])
    ev = F1Evaluator(GT, pred, ["a", "b"])
    cm = ev.confusion()
    assert cm.tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]
    # P = [1/2, 0, 0] and R = [1, 0, 0] over the 3 entries, background included:
    #   mP = 1/6, mR = 1/3, mF1 = 2·(1/18)/(1/2) = 2/9
    result = ev.at()
    assert result.mp == pytest.approx(1 / 6) and result.mr == pytest.approx(1 / 3)
    assert result.mf1 == pytest.approx(2 / 9)
    # Strict: a has 1 TP of 1 (P = R = 1), b has 1 FP and 1 miss (P = R = 0) -> F1 1/2.
    assert (result.strict_f1, result.strict_p, result.strict_r) == (0.5, 0.5, 0.5)


def test_duplicates_inflate_the_diagonal() -> None:
    # Two copies of the same box on g1: LMMRotate counts both as hits of g1.
    gt = DetBoxes.create([0], [0], [_rect(0, 0, 10, 10)])
    pred = DetBoxes.create([0, 0], [0, 0], [_rect(0, 0, 10, 10)] * 2, scores=[0.9, 0.8])
    ev = F1Evaluator(gt, pred, ["a"])
    assert ev.confusion().tolist() == [[2, 0], [0, 0]]
    # P_a = R_a = 1, background 0: mP = mR = mF1 = 1/2 (at most C/(C+1) even when perfect).
    result = ev.at()
    assert result.mf1 == 0.5
    # Strict: 1 TP, 1 FP -> P 1/2, R 1 -> F1 2/3.
    assert result.strict_f1 == pytest.approx(2 / 3)


def test_score_thresholds_and_the_best_one() -> None:
    gt = DetBoxes.create([0], [0], [_rect(0, 0, 10, 10)])
    pred = DetBoxes.create(
        [0, 0], [0, 0], [_rect(0, 0, 10, 10), _rect(30, 30, 40, 40)], scores=[0.9, 0.15]
    )
    sweep = F1Evaluator(gt, pred, ["a"]).sweep()
    assert [r.score_threshold for r in sweep.results] == list(MF1_SCORE_THRESHOLDS)
    # At s = 0 and 0.1 the FP is kept (score >= s): P_a = 1/2; from 0.2 on it is gone.
    assert sweep.results[1].confusion.tolist() == [[1, 0], [1, 0]]
    assert sweep.results[2].confusion.tolist() == [[1, 0], [0, 0]]
    assert sweep.best.score_threshold == 0.2
    assert sweep.best_strict.strict_f1 == 1.0


def test_difficult_objects_follow_the_ap_protocol() -> None:
    gt = DetBoxes.create([0, 0], [0, 0], [_rect(0, 0, 10, 10), _rect(30, 0, 40, 10)], None, [0, 1])
    pred = DetBoxes.create([0], [0], [_rect(30, 0, 40, 10)])  # finds only the difficult one
    ignored = F1Evaluator(gt, pred, ["a"]).confusion()
    assert ignored.tolist() == [[0, 1], [0, 0]]  # not a background FP, difficult not a miss
    counted = F1Evaluator(gt, pred, ["a"], ignore_difficult=False).confusion()
    assert counted.tolist() == [[1, 1], [0, 0]]


def test_lmmrotate_f1_with_empty_matrix() -> None:
    assert lmmrotate_f1(np.zeros((3, 3), dtype=np.int64)) == (0.0, 0.0, 0.0)


def test_real_dota_perfect_predictions(dota_gt: GroundTruth) -> None:
    gt = dota_gt.boxes
    result = F1Evaluator(gt, gt, dota_gt.classes).at()
    assert result.strict_f1 == 1.0
    # 12 classes occur; the soccer field inside a track field is hit across classes, and
    # background plus the 3 absent classes count as 0: mF1 stays below 12/16.
    n = len(dota_gt.classes) + 1
    assert result.mf1 < 12 / n
    assert result.confusion[3, 10] == 1 and result.confusion[10, 3] == 1


def _f1_scene(seed: int, rectangles: bool) -> tuple[DetBoxes, DetBoxes]:
    """Rectangles (or general quads) on 3 images; copies, jitter, class swaps, exact-0.5 IoUs."""
    from rscovlm import geometry

    rng = np.random.default_rng(seed)
    n = 60
    obb = np.stack([*rng.uniform(0, 200, (2, n)), rng.uniform(8, 40, n), rng.uniform(4, 20, n),
                    rng.uniform(-90, 90, n)], 1)  # fmt: skip
    quads = geometry.obb_to_quad(obb)
    if not rectangles:
        quads = quads + rng.normal(0, 1.0, quads.shape)
    gt = DetBoxes.create(rng.integers(0, 3, n), rng.integers(0, 3, n), quads,
                         difficult=rng.random(n) < 0.1)  # fmt: skip
    src = rng.integers(0, n, 80)
    p_obb = obb[src].copy()
    p_obb[:, :2] += rng.normal(0, 2.0, (80, 2))
    p_quads = geometry.obb_to_quad(p_obb)
    # half-height copies of axis-aligned boxes: IoU exactly 0.5 with their ground truth
    half = np.array([_rect(300, 300, 310, 310), _rect(300, 300, 310, 305)], float)
    gt = DetBoxes.concat([gt, DetBoxes.create([0], [0], half[:1])])
    label = np.where(rng.random(80) < 0.2, rng.integers(0, 3, 80), gt.label[src])
    pred = DetBoxes.create(
        np.concatenate([gt.image[src], [0]]), np.concatenate([label, [0]]),
        np.concatenate([p_quads, half[1:]]), scores=rng.random(81),
    )  # fmt: skip
    return gt, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rectangles", [True, False])
@pytest.mark.parametrize("ap_mode", ["dota", "mmrotate"])
def test_reusing_the_ap_overlaps_changes_no_number(
    seed: int, rectangles: bool, ap_mode: str
) -> None:
    from rscovlm.eval.metrics.detection import DetectionEvaluator

    gt, pred = _f1_scene(seed, rectangles)
    classes = ["a", "b", "c"]
    ap = DetectionEvaluator(gt, pred, classes, iou_mode=ap_mode)  # type: ignore[arg-type]
    for f1_mode in ("mmrotate", "dota"):
        fresh = F1Evaluator(gt, pred, classes, iou_mode=f1_mode).sweep()  # type: ignore[arg-type]
        reused = F1Evaluator(
            gt, pred, classes, iou_mode=f1_mode,  # type: ignore[arg-type]
            overlaps=ap.overlaps, overlaps_mode=ap.iou_mode,
        ).sweep()  # fmt: skip
        assert reused.to_dict() == fresh.to_dict()
    assert fresh.results[0].confusion.sum() > 50  # hits, misses and background all occur


def test_is_rectangle() -> None:
    from rscovlm import geometry
    from rscovlm.eval.metrics.mf1 import is_rectangle

    rects = geometry.obb_to_quad([[50, 50, 30, 10, 33.3], [0, 0, 5, 5, -90]])
    kite = np.array([[[0, 0], [4, -1], [8, 0], [4, 3]]], float)
    flat = np.zeros((1, 4, 2))
    assert is_rectangle(np.concatenate([rects, kite, flat])).tolist() == [True, True, False, False]
