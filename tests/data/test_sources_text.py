"""Grounding, caption, scene-folder and instruction adapters on files written in their layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.data.record import BadEntry, Record
from rscovlm.data.sources.captions import iter_karpathy_records, iter_nwpu_caption_records
from rscovlm.data.sources.llava_instruct import iter_llava_records
from rscovlm.data.sources.refgeo import iter_refgeo_records
from rscovlm.data.sources.rsvg import iter_rsvg_records
from rscovlm.data.sources.scene_folder import assign_splits, iter_scene_folder_records


def _rsvg_xml(objects: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<object><name>{n}</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>50</xmax>"
        f"<ymax>60</ymax></bndbox><description>{d}</description></object>"
        for n, d in objects
    )
    size = "<size><width>800</width><height>800</height></size>"
    return f"<annotation>{size}{body}</annotation>"


@pytest.mark.parametrize(("split_index", "lines", "expected"), [
    ("expression", "0\n2\n", ["00001_0", "00002_0"]),
    ("image", "00002\n", ["00002_0"]),
])  # fmt: skip
def test_rsvg_split_files(
    tmp_path: Path, split_index: str, lines: str, expected: list[str]
) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "00001.xml").write_text(
        _rsvg_xml([("vehicle", "the red car"), ("ship", "a ship")])
    )
    (tmp_path / "Annotations" / "00002.xml").write_text(_rsvg_xml([("dam", "the dam")]))
    (tmp_path / "test.txt").write_text(lines)
    recs = list(iter_rsvg_records(tmp_path, split="test", split_index=split_index))
    assert [r.id for r in recs] == expected
    assert all(isinstance(r, Record) and r.task == "grounding" for r in recs)
    assert recs[0].referring[0].box.hbb == [10, 20, 50, 60]
    (missing,) = iter_rsvg_records(tmp_path, split="val")
    assert isinstance(missing, BadEntry)


def test_refgeo_and_vlm_r1(tmp_path: Path) -> None:
    lines = [
        {"image": "a.png", "normal_caption": "the plane", "solution": [1, 2, 30, 40],
         "normalized_solution": [1, 2, 3, 4]},
        {"image": "b.png", "question": "<image>the ship", "bbox": [5, 5, 9, 9],
         "poly": [[5, 5], [9, 5], [9, 9], [5, 9]], "image_width": 100, "image_height": 90,
         "dataset": "GeoChat"},
        {"image": "c.png", "problem": "x", "solution": [1, 2, 3]},
    ]  # fmt: skip
    (tmp_path / "rec.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    first, second, bad = list(iter_refgeo_records(tmp_path, "rec.jsonl"))
    assert isinstance(first, Record) and first.referring[0].expression == "the plane"
    assert isinstance(second, Record) and second.referring[0].expression == "the ship"
    assert second.referring[0].box.quad == [[5, 5], [9, 5], [9, 9], [5, 9]]
    assert second.images[0].width == 100 and second.meta["dataset"] == "GeoChat"
    assert isinstance(bad, BadEntry) and "expected 4" in bad.reason


def test_karpathy_and_nwpu_captions(tmp_path: Path) -> None:
    karpathy = {"images": [
        {"filename": "a.jpg", "imgid": 0, "split": "train", "sentences": [{"raw": " A road. "}]},
        {"filename": "b.jpg", "imgid": 1, "split": "test", "sentences": [{"raw": "x"}]},
        {"filename": "c.jpg", "imgid": 2, "split": "train", "sentences": []},
    ]}  # fmt: skip
    (tmp_path / "dataset_rsicd.json").write_text(json.dumps(karpathy))
    rec, bad = list(iter_karpathy_records(tmp_path, "dataset_rsicd.json", split="train"))
    assert isinstance(rec, Record) and rec.captions == ["A road."]
    assert rec.images[0].path == "images/a.jpg" and isinstance(bad, BadEntry)
    nwpu = {"airport": [{"filename": "airport_001.jpg", "split": "val", "raw": "r0", "raw_1": "r1",
                         "raw_2": "r2", "raw_3": "r3", "raw_4": "r4"}]}  # fmt: skip
    (tmp_path / "dataset_nwpu.json").write_text(json.dumps(nwpu))
    (rec,) = iter_nwpu_caption_records(tmp_path, "dataset_nwpu.json")
    assert isinstance(rec, Record) and rec.label == "airport" and len(rec.captions) == 5
    assert rec.images[0].path == "airport/airport_001.jpg" and rec.split == "val"


def test_scene_folder_seeded_split(tmp_path: Path) -> None:
    for cls in ("Airport", "Beach"):
        (tmp_path / "AID" / cls).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "AID" / cls / f"{cls.lower()}_{i}.jpg").write_bytes(b"")
    ratios = {"train": 0.8, "test": 0.2}
    recs = list(iter_scene_folder_records(tmp_path, "AID", ratios=ratios, seed=3))
    again = list(iter_scene_folder_records(tmp_path, "AID", ratios=ratios, seed=3))
    assert [(r.id, r.split) for r in recs] == [(r.id, r.split) for r in again]
    assert sum(r.split == "test" for r in recs) == 4 and recs[0].label == "Airport"
    test_only = list(
        iter_scene_folder_records(tmp_path, "AID", split="test", ratios=ratios, seed=3)
    )
    assert len(test_only) == 4
    assert assign_splits(10, ratios, 3) != assign_splits(10, ratios, 4)


def test_llava_geochat_boxes_and_teochat_frames(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((50, 200, 3), np.uint8)).save(tmp_path / "g.png")
    entries = [
        {"id": "g1", "image": "g.png", "conversations": [
            {"from": "human", "value": "<image>\n[refer] where is {<10><20><30><40>|<0>}?"},
            {"from": "gpt", "value": "{<50><0><100><100>|<90>} and {<1><2><3><4>}"}]},
        {"id": "t1", "video": ["f2.png", "f1.png"], "timestamps": ["2020-05-01", "2019-01-01"],
         "conversations": [{"from": "human", "value": "<video> changes?"},
                           {"from": "gpt", "value": "none"}]},
        {"id": "x", "image": "g.png", "conversations": [{"from": "robot", "value": "hi"}]},
    ]  # fmt: skip
    (tmp_path / "inst.json").write_text(json.dumps(entries))
    geochat, temporal, bad = list(iter_llava_records(tmp_path, "inst.json", box_format="geochat"))
    assert isinstance(geochat, Record) and geochat.task == "instruction"
    user, answer = geochat.conversation
    assert user.role == "user" and user.text == "<image>\n[refer] where is <box:0>?"
    assert user.boxes[0].hbb == [20.0, 10.0, 60.0, 20.0] and user.boxes[0].quad is None
    assert answer.text == "<box:0> and <box:1>" and answer.boxes[0].quad is not None
    assert np.allclose(answer.boxes[0].quad_array().mean(axis=0), [150.0, 25.0])
    assert (geochat.images[0].width, geochat.images[0].height) == (200, 50)
    assert isinstance(temporal, Record)
    assert [i.path for i in temporal.images] == ["f1.png", "f2.png"]
    assert [i.timestamp for i in temporal.images] == ["2019-01-01", "2020-05-01"]
    assert isinstance(bad, BadEntry) and "unknown role" in bad.reason


def test_llava_teochat_brackets_and_unplaceable(tmp_path: Path) -> None:
    entries = [
        {"id": "a", "image": "missing.png", "conversations": [
            {"from": "human", "value": "find [10, 20, 30, 40]"}]},
        {"id": "b", "image": "missing.png", "conversations": [
            {"from": "human", "value": "a list [1, 2, 3] stays"}]},
    ]  # fmt: skip
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(e) for e in entries))
    bad, kept = list(iter_llava_records(tmp_path, "t.jsonl", box_format="teochat"))
    assert isinstance(bad, BadEntry) and "cannot place boxes" in bad.reason
    assert isinstance(kept, Record) and kept.conversation[0].text == "a list [1, 2, 3] stays"
