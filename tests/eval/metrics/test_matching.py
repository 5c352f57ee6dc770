"""The sort-free paths of the matcher agree with the plain lexsort definitions, pair for pair."""

from __future__ import annotations

import numpy as np
import pytest

from rscovlm.eval.metrics.matching import Overlaps, best_match, match_flags


def _lexsort_best(ov: Overlaps, n_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition: per prediction the highest IoU, ties to the lowest ground truth."""
    best_gt, best_iou = np.full(n_pred, -1, np.int64), np.zeros(n_pred)
    order = np.lexsort((ov.gt, -ov.iou, ov.pred))
    ps = ov.pred[order]
    first = order[np.append(True, ps[1:] != ps[:-1])]
    best_gt[ov.pred[first]], best_iou[ov.pred[first]] = ov.gt[first], ov.iou[first]
    return best_gt, best_iou


@pytest.mark.parametrize("seed", range(40))
def test_best_match_equals_the_lexsort_definition_in_any_pair_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_pred, n_gt = int(rng.integers(1, 80)), int(rng.integers(1, 30))
    k = int(rng.integers(1, 400))
    pairs = np.unique(np.stack([rng.integers(0, n_pred, k), rng.integers(0, n_gt, k)], 1), axis=0)
    # runs of one prediction in a shuffled prediction order (as compute_overlaps leaves them:
    # by image, then prediction), ground truth ascending in each run
    rank = rng.permutation(n_pred)[pairs[:, 0]]
    pairs = pairs[np.lexsort((pairs[:, 1], rank))]
    # coarse IoUs make ties for the maximum common
    iou = rng.choice([0.2, 0.5, 0.5, 0.9], len(pairs)) if seed % 2 else rng.random(len(pairs))
    grouped = Overlaps(pairs[:, 0].copy(), pairs[:, 1].copy(), iou)
    want = _lexsort_best(grouped, n_pred)
    perm = rng.permutation(len(iou))
    shuffled = Overlaps(grouped.pred[perm], grouped.gt[perm], grouped.iou[perm])
    for ov in (grouped, shuffled):  # the sort-free path, then the lexsort fallback
        got = best_match(ov, n_pred)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_match_flags_first_prediction_takes_the_ground_truth() -> None:
    best_gt = np.array([0, 0, 1, 1, 2, -1])
    best_iou = np.array([0.9, 0.8, 0.7, 0.95, 0.6, 0.0])
    difficult = np.array([False, True, False])
    order = np.array([1, 0, 3, 2, 4, 5])
    tp, fp = match_flags(best_gt, best_iou, difficult, order, 0.5, strict=True)
    # 1 takes gt 0, 0 comes second (FP); 3 and 2 hit the difficult gt 1 (neither); 4 takes
    # gt 2; 5 matched nothing (FP)
    assert tp.tolist() == [True, False, False, False, True, False]
    assert fp.tolist() == [False, True, False, False, False, True]
