"""COCO detection json reader: polygons, boxes, and bad entries reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.sources.coco import read_coco_detection
from rscovlm.errors import InputError


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_polygons_boxes_and_bad_entries(tmp_path: Path) -> None:
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 512, "height": 512}, {"id": 2}],
        "categories": [{"id": 3, "name": "small-vehicle"}, {"id": 4, "name": "plane"}],
        "annotations": [
            {
                "image_id": 1,
                "category_id": 3,
                "bbox": [1, 2, 3, 4],
                "segmentation": [[1, 2, 4, 2, 4, 6, 1, 6]],
            },
            {"image_id": 1, "category_id": 4, "bbox": [10, 20, 5, 5], "iscrowd": 1},
            {"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]},
            {"image_id": 7, "category_id": 4, "bbox": [0, 0, 1, 1]},
            {"image_id": 1, "category_id": 4, "bbox": [0, "nan", 1, 1]},
            {"image_id": 1, "category_id": 4},
        ],
    }
    coco = read_coco_detection(_write(tmp_path, data))
    assert coco.class_names == ("small-vehicle", "plane")
    objs = coco.objects[1]
    assert [o.class_name for o in objs] == ["small-vehicle", "plane"]
    assert objs[0].from_polygon and not objs[1].from_polygon
    assert objs[1].difficult
    np.testing.assert_array_equal(objs[1].quad, [[10, 20], [15, 20], [15, 25], [10, 25]])
    reasons = [r for _, r in coco.bad_entries]
    assert len(reasons) == 5
    assert "image without" in reasons[0]
    assert "unknown category_id 9" in reasons[1]
    assert "unknown image_id 7" in reasons[2]
    assert "non-finite" in reasons[3]
    assert "neither" in reasons[4]


@pytest.mark.parametrize(("content", "match"), [("{", "not valid JSON"), ("[]", "not a COCO")])
def test_unreadable_files_raise_input_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        read_coco_detection(path)
