"""AP accumulation from match flags: hand-computed VOC07 / VOC12 values and tie grouping."""

from __future__ import annotations

import pytest

from rscovlm.eval.metrics.ap import VOC07_RECALLS, average_precision, pr_points


def test_distinct_scores_hand_computed() -> None:
    # 3 positives; flags down the ranking: TP FP TP FP TP.
    # cum TP 1 1 2 2 3, cum FP 0 1 1 2 2
    # recall    1/3 1/3 2/3 2/3 1
    # precision 1   1/2 2/3 1/2 3/5
    rec, prec = pr_points([1, 0, 1, 0, 1], [0, 1, 0, 1, 0], 3, [5, 4, 3, 2, 1])
    assert rec.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    assert prec.tolist() == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    # VOC12: monotone envelope 1 | 2/3 | 3/5 over the recall steps of 1/3 each:
    #   1/3·1 + 1/3·2/3 + 1/3·3/5 = 34/45
    assert average_precision(rec, prec, "voc12") == pytest.approx(34 / 45, abs=1e-15)
    # VOC07: levels 0, .1, .2, .3 -> 1 (4 levels); .4, .5, .6 -> 2/3 (3); .7 .. 1.0 -> 3/5 (4)
    #   (4 + 3·2/3 + 4·3/5) / 11 = 8.4 / 11
    assert average_precision(rec, prec, "voc07") == pytest.approx(8.4 / 11, abs=1e-15)


def test_voc07_uses_the_devkit_recall_levels() -> None:
    # np.arange(0, 1.1, 0.1) makes the "0.3" level 0.30000000000000004, so a curve that ends
    # at recall exactly 3/10 does not reach it: 3 TPs of 10 positives give 3/11, not 4/11.
    assert VOC07_RECALLS[3] > 0.3
    rec, prec = pr_points([1, 1, 1], [0, 0, 0], 10, [3, 2, 1])
    assert average_precision(rec, prec, "voc07") == 3 / 11


def test_perfect_curve_is_exactly_one() -> None:
    rec, prec = pr_points([1, 1], [0, 0], 2, [1, 1])
    assert average_precision(rec, prec, "voc07") == 1.0
    assert average_precision(rec, prec, "voc12") == 1.0


def test_no_detection_scores_zero() -> None:
    rec, prec = pr_points([], [], 4, [])
    assert average_precision(rec, prec, "voc07") == 0.0
    assert average_precision(rec, prec, "voc12") == 0.0


def test_tie_groups_read_one_point_per_block() -> None:
    # 2 positives; scores 0.9 | 0.5 0.5 0.5; flags TP | FP TP FP.
    # grouped: points after each block: (rec 1/2, prec 1) and (rec 1, prec 2/4)
    #   VOC12 = 1/2·1 + 1/2·1/2 = 3/4; VOC07 = (6·1 + 5·1/2) / 11 = 8.5/11
    scores = [0.9, 0.5, 0.5, 0.5]
    rec, prec = pr_points([1, 0, 1, 0], [0, 1, 0, 1], 2, scores, "group")
    assert rec.tolist() == [0.5, 1.0] and prec.tolist() == [1.0, 0.5]
    assert average_precision(rec, prec, "voc12") == 0.75
    assert average_precision(rec, prec, "voc07") == pytest.approx(8.5 / 11, abs=1e-15)
    # the same block in another order gives the same grouped points ...
    rec2, prec2 = pr_points([1, 1, 0, 0], [0, 0, 1, 1], 2, scores, "group")
    assert (rec2.tolist(), prec2.tolist()) == (rec.tolist(), prec.tolist())
    # ... while per-detection points depend on it: TP FP TP FP gives
    #   envelope 1 up to recall 1/2, then 2/3 -> VOC12 = 1/2 + 1/2·2/3 = 5/6
    rec_s, prec_s = pr_points([1, 0, 1, 0], [0, 1, 0, 1], 2, scores, "stable")
    assert average_precision(rec_s, prec_s, "voc12") == pytest.approx(5 / 6, abs=1e-15)
    #   and TP FP FP TP gives 1/2·1 + 1/2·1/2 = 3/4
    rec_s, prec_s = pr_points([1, 0, 0, 1], [0, 1, 1, 0], 2, scores, "stable")
    assert average_precision(rec_s, prec_s, "voc12") == 0.75


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ties"):
        pr_points([1], [0], 1, [1.0], "random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scores"):
        pr_points([1], [0], 1, None, "group")
    with pytest.raises(ValueError, match="metric"):
        average_precision([1.0], [1.0], "coco")  # type: ignore[arg-type]
