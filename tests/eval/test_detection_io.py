"""Detection inputs: DOTA and COCO ground truth, Task1 / jsonl / VLM predictions, Task1 output."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rscovlm.errors import InputError
from rscovlm.eval.detection_io import (
    GroundTruth,
    align_to_gt,
    read_ground_truth,
    read_predictions,
)
from rscovlm.eval.metrics.detection import DetectionEvaluator
from rscovlm.formats.classes import DOTA_V1_0
from rscovlm.formats.results import write_task1


def test_real_dota_ground_truth(dota_gt: GroundTruth) -> None:
    assert dota_gt.images == ("P0706", "P0770", "P1088", "P1234", "P1888", "P2598", "P2709")
    boxes = dota_gt.boxes
    assert len(boxes) == 984 and int(boxes.difficult.sum()) == 67
    ship = DOTA_V1_0.index("ship")
    assert int((boxes.label == ship).sum()) == 561
    assert dota_gt.report.n_bad == 0 and not dota_gt.report.unknown_classes
    # P0706.txt's first object: "1054 1028 1063 1011 1111 1040 1112 1062 ship 1"
    assert boxes.quads[0].tolist() == [[1054, 1028], [1063, 1011], [1111, 1040], [1112, 1062]]
    assert boxes.difficult[0] and boxes.label[0] == ship


def test_coco_ground_truth_with_numeric_image_ids(tmp_path: Path) -> None:
    coco = {
        "images": [{"id": 7, "file_name": "a/P9.png", "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "plane"}, {"id": 2, "name": "ship"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10]},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [20, 20, 5, 5], "difficult": 1},
            {"id": 3, "image_id": 7, "category_id": 1, "segmentation": [[1, 1]]},
        ],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(coco))
    gt = read_ground_truth(path)
    assert gt.classes == ("plane", "ship") and gt.images == ("P9",)
    assert len(gt.boxes) == 2 and gt.boxes.difficult.tolist() == [False, True]
    assert gt.index_of("7") == 0 and gt.index_of("P9.png") == 0
    # an unreadable annotation is counted, not dropped silently
    assert gt.report.n_bad == 1


def test_missing_ground_truth_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_ground_truth(tmp_path / "nope")
    with pytest.raises(InputError, match="no DOTA label file"):
        read_ground_truth(tmp_path, DOTA_V1_0)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError, match="class list"):
        read_ground_truth(tmp_path)


def test_task1_round_trip_and_zip(dota_gt: GroundTruth, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    boxes = dota_gt.boxes.with_scores(rng.random(len(dota_gt.boxes)))
    files = write_task1(
        boxes.table(dota_gt.images, DOTA_V1_0), tmp_path / "t1", zip_path=tmp_path / "z.zip"
    )
    assert [f.name for f in files] == [f"Task1_{c}.txt" for c in DOTA_V1_0]
    with zipfile.ZipFile(tmp_path / "z.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f.name for f in files)
    pred = read_predictions(tmp_path / "t1", "task1", DOTA_V1_0)
    back = align_to_gt(pred, dota_gt)
    assert pred.has_scores and pred.report.n_boxes == pred.report.n_kept == len(boxes)

    # exact round trip: the same multiset of (image, class, score, quad)
    def rows(b):  # type: ignore[no-untyped-def]
        flat = np.column_stack([b.image, b.label, b.scores, b.quads.reshape(-1, 8)])
        return flat[np.lexsort(flat.T[::-1])]

    assert np.array_equal(rows(back), rows(boxes))


def test_task1_problems_are_counted(dota_gt: GroundTruth, tmp_path: Path) -> None:
    (tmp_path / "Task1_plane.txt").write_text(
        "P0706 0.9 0 0 10 0 10 10 0 10\n"
        "P0706 0.8 0 0 10 0\n"  # too short
        "P0706 high 0 0 10 0 10 10 0 10\n"  # not a number
        "\n"
        "P9999 0.7 0 0 10 0 10 10 0 10\n"  # image not in the ground truth
        "P1234__1024__0___0 0.7 0 0 10 0 10 10 0 10\n"  # a patch name
    )
    (tmp_path / "Task1_airport.txt").write_text("P0706 0.5 0 0 10 0 10 10 0 10\n")
    pred = read_predictions(tmp_path, "task1", DOTA_V1_0)
    boxes = align_to_gt(pred, dota_gt)
    rep = pred.report
    assert rep.n_bad == 2 and rep.unknown_classes == {"airport": 1}
    assert rep.missing_images == {"P9999": 1, "P1234__1024__0___0": 1}
    assert len(boxes) == rep.n_kept == 1
    assert rep.n_boxes == rep.n_kept + sum(rep.unknown_classes.values()) + 2
    text = "\n".join(rep.summary())
    assert "2 unreadable" in text and "airport" in text and "rscovlm eval merge" in text


def test_rscovlm_jsonl_predictions(tmp_path: Path) -> None:
    lines = [
        {
            "image_id": "P1.png",
            "class": "plane",
            "score": 0.5,
            "quad": [0, 0, 10, 0, 10, 10, 0, 10],
        },
        {"image_id": "P1", "class": "small vehicle", "hbb": [0, 0, 10, 10]},
        {"image_id": "P1", "class": "ship", "score": 0.25, "obb": [5, 5, 10, 4, 0]},
        {"image_id": "P1", "class": "ship", "hbb": [0, 0, 1, 1], "quad": [0] * 8},
        {"image_id": "P1", "class": "ship", "hbb": [0, 0, 1]},
        {"image_id": "P1", "class": "ship", "hbb": [0, 0, 1, 1], "score": "high"},
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\nnot json\n[1]\n")
    pred = read_predictions(path, "jsonl", DOTA_V1_0)
    assert pred.images == ("P1",) and pred.has_scores
    assert pred.boxes.label.tolist() == [0, 4, 6]
    assert pred.boxes.scores.tolist() == [0.5, 1.0, 0.25]
    assert pred.report.n_unscored == 1 and pred.report.n_bad == 5
    assert np.allclose(pred.boxes.quads[2], [[0, 3], [10, 3], [10, 7], [0, 7]])


def _vlm_record(image: str, output: str, **extra: object) -> str:
    record = {"image_id": image, "output": output, "orig_size": [1024, 1024]}
    record.update({"resized_size": [1008, 1008], **extra})
    return json.dumps(record)


def test_vlm_outputs_are_parsed_and_mapped_back(tmp_path: Path) -> None:
    path = tmp_path / "vlm.jsonl"
    path.write_text(
        "\n".join(
            [
                # resized 1008 -> original 1024: x_orig = x * 1024 / 1008 (WIRE §2.8)
                _vlm_record(
                    "A.png",
                    "<think>hm</think>63,126,189,126,189,252,63,252 small vehicle\n"
                    "0,0,504,504 plane\nsome prose\n10,10,20,20 airplanes",
                ),
                _vlm_record("B", "There are none."),
                _vlm_record("C", "500,500,600,600 ship", family="qwen2_vl", resized_size=None),
                json.dumps({"image_id": "D", "output": "1,2,3,4 ship"}),  # no sizes
            ]
        )
        + "\n"
    )
    pred = read_predictions(path, "vlm", DOTA_V1_0)
    rep = pred.report
    assert not pred.has_scores and set(pred.boxes.scores.tolist()) == {1.0}
    assert pred.images == ("A", "B", "C")
    assert rep.n_outputs == 3 and rep.n_empty_outputs == 1
    assert rep.unknown_classes == {"airplanes": 1}
    assert rep.n_bad == 2  # the prose line and the record without sizes
    s = 1024 / 1008
    assert np.allclose(
        pred.boxes.quads[0], np.array([[63, 126], [189, 126], [189, 252], [63, 252]]) * s
    )
    assert np.allclose(pred.boxes.quads[1], [[0, 0], [512, 0], [512, 512], [0, 512]])
    # grid family: 0-1000 over the original size, the resized size is not needed
    assert np.allclose(pred.boxes.quads[2][0], [512, 512])


def test_vlm_boxes_score_like_ground_truth(dota_gt: GroundTruth, tmp_path: Path) -> None:
    # identity resize: the model text is the ground truth rounded to integers
    gt_one = dota_gt.boxes.take(dota_gt.boxes.image == 4)  # P1888
    text = "\n".join(
        ",".join(str(int(v)) for v in q.reshape(-1)) + " " + DOTA_V1_0[c].replace("-", " ")
        for q, c in zip(gt_one.quads, gt_one.label, strict=True)
    )
    path = tmp_path / "vlm.jsonl"
    path.write_text(
        json.dumps({"image_id": "P1888", "output": text, "orig_size": [1000, 1000],
                    "resized_size": [1000, 1000]}) + "\n"
    )  # fmt: skip
    pred = read_predictions(path, "vlm", DOTA_V1_0)
    boxes = align_to_gt(pred, dota_gt)
    result = DetectionEvaluator(gt_one, boxes, DOTA_V1_0).evaluate()
    assert result.mean_ap == 1.0


def test_prediction_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="do not exist"):
        read_predictions(tmp_path / "nope", "task1", DOTA_V1_0)
    with pytest.raises(InputError, match="no prediction file"):
        read_predictions(tmp_path, "task1", DOTA_V1_0)
    with pytest.raises(InputError, match="unknown prediction format"):
        read_predictions(tmp_path, "csv", DOTA_V1_0)  # type: ignore[arg-type]


def test_bulk_task1_folder_counts_every_problem(dota_gt: GroundTruth, tmp_path: Path) -> None:
    """Thousands of good lines (the bulk path) with one malformed line, one non-number, one
    NaN, an unknown image and an unknown class: each is reported with its count."""
    from rscovlm.formats.results import iter_task1, parse_task1_line, read_task1

    rng = np.random.default_rng(0)
    good = [f"P0706 {s!r} 0 0 10 0 10 10 0 10" for s in rng.random(3000).tolist()]
    lines = [*good[:1000], "P0706 0.8 0 0 10 0", *good[1000:2000], "P0706 x 0 0 10 0 10 10 0 10",
             "P0706 0.5 0 0 nan 0 10 10 0 10", *good[2000:],
             *["P9999 0.7 0 0 10 0 10 10 0 10"] * 3]  # fmt: skip
    (tmp_path / "Task1_plane.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "Task1_airport.txt").write_text("P0706 0.5 0 0 10 0 10 10 0 10\n" * 4)
    cols = read_task1(tmp_path / "Task1_plane.txt")
    assert len(cols) == 3003 and cols.names == ("P0706", "P9999")
    assert [(p, r) for p, r in cols.bad] == [
        (1001, "expected 10 fields, got 6"),
        (2002, "score or coordinate is not a number"),
        (2003, "non-finite number"),
    ]
    rows = list(iter_task1(tmp_path / "Task1_plane.txt"))  # the per-line view, in line order
    assert [w for w, _ in rows][1000:1003] == [f"Task1_plane.txt:{k}" for k in (1001, 1002, 1003)]
    for (_, row), line in zip(rows, lines, strict=True):
        parsed = parse_task1_line(line)
        if isinstance(parsed, str):
            assert row == parsed
        else:
            assert not isinstance(row, str)
            assert (row.image_id, row.score, row.quad.reshape(-1).tolist()) == parsed
    pred = read_predictions(tmp_path, "task1", DOTA_V1_0)
    boxes = align_to_gt(pred, dota_gt)
    rep = pred.report
    assert rep.n_bad == 3 and rep.unknown_classes == {"airport": 4}
    assert rep.missing_images == {"P9999": 3}
    assert len(boxes) == rep.n_kept == 3000
    assert rep.n_boxes == 3000 + 4 + 3
    text = "\n".join(rep.summary())
    assert "3 unreadable" in text and "4 boxes of unknown class" in text
    assert "3 boxes on 1 images missing" in text


def test_bulk_jsonl_and_dota_columns_agree_with_their_rows(tmp_path: Path) -> None:
    from rscovlm.data.sources.dota import parse_dota_columns, parse_dota_labels
    from rscovlm.formats.results import read_jsonl

    lines = [json.dumps({"image_id": "P1", "class": "plane", "obb": [50, 50, 20, 10, 30],
                         "score": 0.5})] * 50  # fmt: skip
    lines += ['{"image_id": "P1", "class": "plane", "quad": [[0, 0], [4, 0], [4, 4], [0, 4]]}']
    lines += ['{"image_id": "P1", "class": "plane", "hbb": [0, 0, 1]}', "oops"]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    cols = read_jsonl(tmp_path / "p.jsonl")
    assert len(cols) == 51 and cols.scored.tolist() == [True] * 50 + [False]
    assert cols.bad == (
        (52, "hbb needs 4 finite numbers"),
        (53, "not valid JSON (Expecting value at line 1, column 1)"),
    )
    assert np.allclose(cols.quads[-1], [[0, 0], [4, 0], [4, 4], [0, 4]])
    text = "".join(f"{i} 0 {i + 5} 0 {i + 5} 5 {i} 5 plane {i % 2}\n" for i in range(200))
    text += "gsd:0.5\n1 2 3 4 5 6 7 8 small car 1\n1 2 3 4 5 6 7 x ship 0\n"
    dcols, objects = parse_dota_columns(text), parse_dota_labels(text)
    assert len(dcols) == len(objects.objects) == 201 and dcols.gsd == 0.5
    assert dcols.class_names[-1] == "small car" and dcols.difficult[:3].tolist() == [0, 1, 0]
    assert [r for _, _, r in dcols.bad_lines] == ["coordinates are not numbers"]
    assert dcols.bad_lines[0][0] == 203
