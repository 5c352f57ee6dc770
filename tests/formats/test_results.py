"""Result files: every writer's output reads back, through its own reader, as the same boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rscovlm.errors import InputError
from rscovlm.formats.results import (
    DetectionTable,
    RawOutput,
    ResultImage,
    iter_jsonl,
    iter_raw_outputs,
    iter_task1,
    read_coco_results,
    read_geojson,
    write_coco,
    write_geojson,
    write_jsonl,
    write_raw_outputs,
    write_task1,
)
from rscovlm.geometry import hbb_to_quad
from rscovlm.imaging import RasterInfo

CLASSES = ("plane", "small-vehicle")


def _table() -> DetectionTable:
    quads = hbb_to_quad([[0.5, 1, 10, 20], [5, 5, 9.25, 7], [100, 0, 140, 30]])
    image = ResultImage("P1", "P1.png", (200, 100), RasterInfo(Path("P1.png"), (200, 100)))
    return DetectionTable.create([image], CLASSES, [0, 0, 0], [1, 0, 1], quads, [0.9, 1.0, 0.1])


def _rows(rows: object) -> list[tuple[str, str, list[float], float]]:
    out = []
    for _, box in rows:  # type: ignore[attr-defined]
        assert not isinstance(box, str), box
        out.append((box.image_id, box.label, box.quad.reshape(-1).tolist(), box.score))
    return sorted(out)


def test_every_format_reads_back_what_it_wrote(tmp_path: Path) -> None:
    table = _table()
    expected = sorted(
        ("P1", CLASSES[c], q.reshape(-1).tolist(), s)
        for c, q, s in zip(table.label.tolist(), table.quads, table.scores.tolist(), strict=True)
    )
    write_jsonl(table, tmp_path / "p.jsonl")
    assert _rows(iter_jsonl(tmp_path / "p.jsonl")) == expected
    files = write_task1(table, tmp_path / "t1")
    assert [f.name for f in files] == ["Task1_plane.txt", "Task1_small-vehicle.txt"]
    assert _rows(r for f in files for r in iter_task1(f)) == expected
    write_coco(table, tmp_path / "c.json")
    assert _rows(read_coco_results(tmp_path / "c.json")) == expected
    write_geojson(table, tmp_path / "d.geojson")
    assert _rows(read_geojson(tmp_path / "d.geojson")) == expected


def test_table_and_readers_refuse_or_count_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="disagree"):
        DetectionTable.create(["P1"], CLASSES, [0], [0, 1], np.zeros((1, 4, 2)))
    with pytest.raises(InputError, match="class"):
        DetectionTable.create(["P1"], CLASSES, [0], [2], np.zeros((1, 4, 2)))
    (tmp_path / "bad.jsonl").write_text(
        '{"image_id": "P1", "class": "plane", "hbb": [0, 0, 1]}\nnot json\n[1]\n'
        '{"image_id": "P1", "class": "plane", "obb": [5, 5, 4, 2, 0], "score": true}\n'
    )
    reasons = [r for _, r in iter_jsonl(tmp_path / "bad.jsonl")]
    assert reasons == [
        "hbb needs 4 finite numbers",
        "not valid JSON (Expecting value at line 1, column 1)",
        "not a JSON object",
        "score is not a finite number",
    ]


def test_raw_outputs_round_trip_and_bad_sizes(tmp_path: Path) -> None:
    outs = [RawOutput("P1__1__0___0", "1,2,3,4 plane", (512, 512), (504, 504))]
    write_raw_outputs(outs, tmp_path / "raw.jsonl")
    assert [r for _, r in iter_raw_outputs(tmp_path / "raw.jsonl")] == outs
    (tmp_path / "bad.jsonl").write_text(
        '{"image_id": "a", "output": "x", "orig_size": [0, 5], "resized_size": [28, 28]}\n'
        '{"image_id": "a", "output": "x", "orig_size": [5, 5], "family": "nope"}\n'
        '{"image_id": "a", "output": "x", "orig_size": [56, 56], "family": "qwen3_vl"}\n'
    )
    rows = [r for _, r in iter_raw_outputs(tmp_path / "bad.jsonl")]
    assert isinstance(rows[0], str) and "positive" in rows[0]
    assert isinstance(rows[1], str) and "unknown model family" in rows[1]
    assert isinstance(rows[2], RawOutput) and rows[2].resized_size == (56, 56)  # grid family
