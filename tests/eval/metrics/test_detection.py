"""Rotated mAP: hand-computed scenes, real DOTA labels, and order/tie properties."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rscovlm import geometry
from rscovlm.eval.detection_io import GroundTruth
from rscovlm.eval.metrics.detection import (
    SWEEP_TAUS,
    DetBoxes,
    DetectionEvaluator,
    evaluate_detection,
)

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "det_eval.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_det_eval", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rect(x1: float, y1: float, x2: float, y2: float) -> list[list[float]]:
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


CLASSES = ["plane", "ship", "harbor"]
# One image. Ground truth: plane A, plane B, plane D (difficult), ship E.
GT = DetBoxes.create(
    [0, 0, 0, 0],
    [0, 0, 0, 1],
    [_rect(0, 0, 10, 10), _rect(20, 0, 30, 10), _rect(40, 0, 50, 10), _rect(60, 0, 70, 10)],
    difficult=[False, False, True, False],
)
PRED = DetBoxes.create(
    [0] * 8,
    [0, 0, 0, 0, 0, 0, 1, 2],
    [
        _rect(0, 0, 10, 10),  # d1 .9  A exactly                     IoU(A) = 1
        _rect(20, 0, 30, 5),  # d2 .8  half of B                      IoU(B) = 50/100 = 0.5
        _rect(21, 0, 31, 10),  # d3 .7 B shifted by 1                 IoU(B) = 90/110
        _rect(40, 0, 50, 10),  # d4 .6 D exactly (difficult: ignored)
        _rect(0, 0, 10, 10),  # d5 .5  A again: a duplicate
        _rect(100, 0, 110, 10),  # d6 .4 nothing there
        _rect(60, 0, 70, 10),  # d7 ship .9, E exactly
        _rect(200, 0, 210, 10),  # d8 harbor .3, a class without ground truth
    ],
    scores=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.9, 0.3],
)


def test_hand_computed_scene_dota_rule() -> None:
    # DOTA: IoU > 0.5 strictly, so d2 (exactly 0.5) is a FP and d3 takes B.
    # plane flags d1..d6: TP FP TP - FP FP; 2 positives (D is difficult)
    #   cum TP 1 1 2 2 2 2, cum FP 0 1 1 1 2 3
    #   recall .5 .5 1 1 1 1, precision 1 1/2 2/3 2/3 1/2 2/5
    #   VOC07: levels 0-.5 -> 1 (6 levels), .6-1 -> 2/3 (5 levels): (6 + 10/3)/11 = 28/33
    #   VOC12: 1/2·1 + 1/2·2/3 = 5/6
    # ship: one perfect detection, AP 1. harbor: no ground truth, excluded.
    ev = DetectionEvaluator(GT, PRED, CLASSES, iou_mode="dota")
    r07, r12 = ev.evaluate(metric="voc07"), ev.evaluate(metric="voc12")
    assert r07.per_class["plane"].ap == pytest.approx(28 / 33, abs=1e-15)
    assert r12.per_class["plane"].ap == pytest.approx(5 / 6, abs=1e-15)
    assert r07.per_class["ship"].ap == 1.0
    assert r07.mean_ap == pytest.approx((28 / 33 + 1) / 2, abs=1e-15)
    assert r12.mean_ap == pytest.approx((5 / 6 + 1) / 2, abs=1e-15)
    assert r07.excluded == ("harbor",)
    plane = r07.per_class["plane"]
    assert (plane.n_gt, plane.n_difficult, plane.n_det, plane.tp, plane.fp) == (2, 1, 6, 2, 3)
    assert plane.recall == 1.0 and plane.precision == 2 / 5
    harbor = r07.per_class["harbor"]
    assert harbor.ap is None and harbor.recall is None and harbor.fp == 1


def test_hand_computed_scene_mmrotate_rule() -> None:
    # mmrotate: IoU >= 0.5, so d2 takes B and d3 becomes a duplicate FP.
    # plane flags: TP TP FP - FP FP -> recall reaches 1 at precision 1: AP 1 for both rules.
    ev = DetectionEvaluator(GT, PRED, CLASSES, iou_mode="mmrotate")
    for metric in ("voc07", "voc12"):
        result = ev.evaluate(metric=metric)
        assert result.per_class["plane"].ap == 1.0
        assert result.mean_ap == 1.0


def test_difficult_can_be_counted() -> None:
    # Counting D: 3 positives, d4 is a TP. DOTA flags: TP FP TP TP FP FP
    #   recall 1/3 1/3 2/3 1 1 1, precision 1 1/2 2/3 3/4 3/5 1/2
    #   VOC12 envelope: 1 | 3/4 | 3/4 -> 1/3 + 1/3·3/4 + 1/3·3/4 = 5/6
    ev = DetectionEvaluator(GT, PRED, CLASSES, ignore_difficult=False)
    assert ev.evaluate(metric="voc12").per_class["plane"].ap == pytest.approx(5 / 6, abs=1e-15)
    assert ev.evaluate().per_class["plane"].n_difficult == 0


def test_score_threshold_keeps_strictly_greater() -> None:
    ev = DetectionEvaluator(GT, PRED, CLASSES)
    kept = ev.evaluate(score_threshold=0.4).per_class["plane"]
    assert kept.n_det == 5  # d6 (score 0.4) is not > 0.4
    assert ev.evaluate(score_threshold=0.95).mean_ap == 0.0


def test_several_iou_thresholds() -> None:
    r50, r85 = evaluate_detection(GT, PRED, CLASSES, iou_thresholds=[0.5, 0.85])
    assert r50.iou_threshold == 0.5 and r85.iou_threshold == 0.85
    # At 0.85 d3 (IoU 0.818) no longer matches B: plane recall 1/2.
    assert r85.per_class["plane"].recall == 0.5


def test_real_dota_perfect_predictions_give_ap_one(dota_gt: GroundTruth) -> None:
    gt = dota_gt.boxes
    assert len(gt) == 984 and len(dota_gt.images) == 7
    rng = np.random.default_rng(0)
    pred = gt.take(rng.permutation(len(gt))).with_scores(rng.random(len(gt)))
    for iou_mode in ("dota", "mmrotate"):
        ev = DetectionEvaluator(gt, pred, dota_gt.classes, iou_mode=iou_mode)  # type: ignore[arg-type]
        for metric in ("voc07", "voc12"):
            for unit in (False, True):
                result = ev.evaluate(metric=metric, unit_scores=unit)  # type: ignore[arg-type]
                aps = {k: c.ap for k, c in result.per_class.items() if c.ap is not None}
                assert set(aps.values()) == {1.0}, (iou_mode, metric, unit)
                assert result.mean_ap == 1.0
    expected_excluded = ("basketball-court", "roundabout", "helicopter")
    assert ev.evaluate().excluded == expected_excluded


# --- properties ---------------------------------------------------------------------------


def _scene(seed: int, tied: bool) -> tuple[DetBoxes, DetBoxes]:
    """A few images with overlapping objects of two classes and noisy predictions."""
    rng = np.random.default_rng(seed)
    n_gt = int(rng.integers(1, 25))

    def obbs(n: int) -> np.ndarray:
        return np.stack(
            [*rng.uniform(0, 60, (2, n)), rng.uniform(5, 20, n), rng.uniform(3, 10, n),
             rng.uniform(-90, 90, n)], 1,
        )  # fmt: skip

    g = obbs(n_gt)
    gt = DetBoxes.create(
        rng.integers(0, 3, n_gt),
        rng.integers(0, 2, n_gt),
        geometry.obb_to_quad(g),
        difficult=rng.random(n_gt) < 0.15,
    )
    src = rng.integers(0, n_gt, int(rng.integers(0, 2 * n_gt + 1)))
    p = g[src] + rng.normal(0, 1, (len(src), 5)) * [1.5, 1.5, 1.5, 1, 8]
    p[:, 2:4] = np.abs(p[:, 2:4]) + 1
    n_rand = int(rng.integers(0, 6))
    quads = geometry.obb_to_quad(np.concatenate([p, obbs(n_rand)]))
    labels = np.concatenate([gt.label[src], rng.integers(0, 2, n_rand)])
    images = np.concatenate([gt.image[src], rng.integers(0, 3, n_rand)])
    n = len(labels)
    scores = rng.choice([0.2, 0.5, 0.9], n) if tied else rng.permutation(n) / max(n, 1) + 0.01
    return gt, DetBoxes.create(images, labels, quads, scores)


SEEDS = st.integers(0, 2**32 - 1)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, tied=st.booleans(), metric=st.sampled_from(["voc07", "voc12"]))
def test_grouped_ties_do_not_depend_on_prediction_order(seed: int, tied: bool, metric: str) -> None:
    gt, pred = _scene(seed, tied)
    perm = np.random.default_rng(seed + 1).permutation(len(pred))
    a = DetectionEvaluator(gt, pred, ["a", "b"])
    b = DetectionEvaluator(gt, pred.take(perm), ["a", "b"])
    for unit in (False, True):
        ra = a.evaluate(metric=metric, unit_scores=unit)  # type: ignore[arg-type]
        rb = b.evaluate(metric=metric, unit_scores=unit)  # type: ignore[arg-type]
        assert ra.mean_ap == rb.mean_ap
        assert {k: v.ap for k, v in ra.per_class.items()} == {
            k: v.ap for k, v in rb.per_class.items()
        }
        # per-detection points are a superset of the block ends: never below the grouped AP
        rs = b.evaluate(metric=metric, unit_scores=unit, ties="stable")  # type: ignore[arg-type]
        for name, c in rs.per_class.items():
            if c.ap is not None:
                assert c.ap >= (ra.per_class[name].ap or 0.0) - 1e-12


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS)
def test_distinct_scores_make_tie_modes_and_the_loop_reference_agree(seed: int) -> None:
    gt, pred = _scene(seed, tied=False)
    ev = DetectionEvaluator(gt, pred, ["a", "b"])
    grouped, stable = ev.evaluate(ties="group"), ev.evaluate(ties="stable")
    assert grouped.mean_ap == stable.mean_ap
    if grouped.mean_ap is not None:
        reference = _bench().reference_map(gt, pred, 2)
        assert grouped.mean_ap == pytest.approx(reference, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, tied=st.booleans())
def test_sweep_at_zero_with_unit_scores_is_map_nc(seed: int, tied: bool) -> None:
    gt, pred = _scene(seed, tied)
    unit = pred.with_scores(1.0)
    nc = DetectionEvaluator(gt, pred, ["a", "b"]).evaluate(unit_scores=True).mean_ap
    assert DetectionEvaluator(gt, unit, ["a", "b"]).sweep(taus=[0.0]).best_map == nc
    assert DetectionEvaluator(gt, unit, ["a", "b"]).evaluate().mean_ap == nc


def test_sweep_curve_and_pick() -> None:
    ev = DetectionEvaluator(GT, PRED, CLASSES)
    sweep = ev.sweep()
    assert sweep.taus == SWEEP_TAUS and len(sweep.maps) == 20
    assert SWEEP_TAUS[:3] == (0.0, 0.05, 0.1) and SWEEP_TAUS[-1] == 0.95
    best = max(m for m in sweep.maps if m is not None)
    assert sweep.best_map == best
    pairs = zip(sweep.taus, sweep.maps, strict=True)
    assert sweep.best_tau == min(t for t, m in pairs if m == best)
    # tau = 0.85 keeps d1 (plane, A) and d7 (ship): plane recall 1/2 at precision 1 -> 6/11
    picked = sweep.results[SWEEP_TAUS.index(0.85)]
    assert picked.per_class["plane"].ap == pytest.approx(6 / 11, abs=1e-15)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="iou_mode"):
        DetectionEvaluator(GT, PRED, CLASSES, iou_mode="coco")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels"):
        DetectionEvaluator(GT, PRED, ["plane"])
    with pytest.raises(ValueError, match="lengths"):
        DetBoxes.create([0, 0], [0], np.zeros((2, 4, 2)))
