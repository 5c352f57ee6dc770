"""Patch merging: perfect per-patch predictions merge back into the original boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.patches import format_patch_name
from rscovlm.eval.detection_io import GroundTruth, align_to_gt, read_predictions
from rscovlm.eval.merge import merge_files, merge_patches
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.detection import DetectionEvaluator
from rscovlm.formats.classes import DOTA_V1_0
from rscovlm.formats.results import write_task1


def _split(gt: GroundTruth, rate: float, size: int, stride: int) -> tuple[list[str], DetBoxes]:
    """Every object fully inside a window, in patch pixels ``original * rate - (x, y)``."""
    rng = np.random.default_rng(0)
    scores = rng.random(len(gt.boxes))  # one score per object, the same in every patch
    names: list[str] = []
    parts = []
    for i, base in enumerate(gt.images):
        rows = np.flatnonzero(gt.boxes.image == i)
        scaled = gt.boxes.quads[rows] * rate
        lo, hi = scaled.min(axis=1), scaled.max(axis=1)
        extent = hi.max(axis=0)
        for y in range(0, max(1, int(extent[1]) - size + stride + 1), stride):
            for x in range(0, max(1, int(extent[0]) - size + stride + 1), stride):
                inside = (lo >= [x, y]).all(axis=1) & (hi <= [x + size, y + size]).all(axis=1)
                if not inside.any():
                    continue
                name = (
                    f"{base}__{size}__{x}___{y}"
                    if rate == 1
                    else format_patch_name(base, rate, x, y)
                )
                names.append(name)
                sel = rows[inside]
                parts.append(
                    DetBoxes.create(
                        np.full(len(sel), len(names) - 1),
                        gt.boxes.label[sel],
                        scaled[inside] - [x, y],
                        scores[sel],
                    )
                )
    return names, DetBoxes.concat(parts)


def _sorted_rows(boxes: DetBoxes) -> np.ndarray:
    flat = np.column_stack([boxes.image, boxes.label, boxes.quads.reshape(-1, 8)])
    return flat[np.lexsort(flat.T[::-1])]


@pytest.mark.parametrize(("rate", "size", "stride"), [(1.0, 2048, 256), (0.5, 1024, 128)])
def test_perfect_patch_predictions_merge_back(
    dota_gt: GroundTruth, rate: float, size: int, stride: int
) -> None:
    names, patches = _split(dota_gt, rate, size, stride)
    assert len(patches) > 2 * len(dota_gt.boxes)  # overlapping windows: many duplicates
    merged = merge_patches(names, patches)
    assert merged.n_patches == len(names) and merged.n_whole == 0
    assert merged.images == dota_gt.images
    assert merged.n_suppressed == len(patches) - len(dota_gt.boxes)
    expected = _sorted_rows(dota_gt.boxes)
    got = _sorted_rows(merged.boxes)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    result = DetectionEvaluator(dota_gt.boxes, merged.boxes, DOTA_V1_0).evaluate()
    assert result.mean_ap == 1.0


def test_merge_does_not_depend_on_input_order(dota_gt: GroundTruth) -> None:
    names, patches = _split(dota_gt, 1.0, 2048, 512)
    unit = patches.with_scores(1.0)  # score-less boxes: NMS ties everywhere
    perm = np.random.default_rng(1).permutation(len(unit))
    a = merge_patches(names, unit)
    b = merge_patches(names, unit.take(perm))
    assert np.array_equal(_sorted_rows(a.boxes), _sorted_rows(b.boxes))


def test_whole_image_names_pass_through() -> None:
    boxes = DetBoxes.create([0, 1], [0, 0], np.ones((2, 4, 2)) * [[0, 0], [4, 0], [4, 4], [0, 4]])
    merged = merge_patches(["P1", "P1__1__100___200"], boxes)
    assert merged.images == ("P1",) and merged.n_whole == 1 and merged.n_patches == 1
    assert merged.boxes.quads[:, 0].tolist() == [[0, 0], [100, 200]]


def test_merge_files_writes_task1_and_zip(dota_gt: GroundTruth, tmp_path: Path) -> None:
    names, patches = _split(dota_gt, 1.0, 2048, 512)
    write_task1(patches.table(names, DOTA_V1_0), tmp_path / "patches")
    zip_path = tmp_path / "Task1.zip"
    result = merge_files(
        tmp_path / "patches", "task1", DOTA_V1_0, tmp_path / "merged", zip_path=zip_path
    )
    assert zip_path.is_file() and len(result.files) == len(DOTA_V1_0)
    assert result.to_dict()["n_out"] == len(dota_gt.boxes)
    merged = read_predictions(tmp_path / "merged", "task1", DOTA_V1_0)
    boxes = align_to_gt(merged, dota_gt)
    assert DetectionEvaluator(dota_gt.boxes, boxes, DOTA_V1_0).evaluate().mean_ap == 1.0
