"""Detection adapters: DOTA, DIOR-R, HRSC on the real samples; FAIR1M, COCO on written files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.record import BadEntry, Record
from rscovlm.data.sources import ADAPTERS, get_adapter
from rscovlm.data.sources.coco import iter_coco_records
from rscovlm.data.sources.dior_r import iter_dior_records
from rscovlm.data.sources.dota import iter_dota_records, read_dota_labels
from rscovlm.data.sources.fair1m import iter_fair1m_records
from rscovlm.data.sources.hrsc import iter_hrsc_records
from rscovlm.errors import InputError


def _records(items: list[Record | BadEntry]) -> list[Record]:
    assert all(isinstance(i, Record) for i in items), [i for i in items if isinstance(i, BadEntry)]
    return [i for i in items if isinstance(i, Record)]


def test_dota_real_labels(real_data: Path) -> None:
    recs = _records(list(iter_dota_records(real_data, "dota", version="1.0")))
    assert [r.id for r in recs] == sorted(r.id for r in recs) and len(recs) == 7
    assert sum(len(r.objects) for r in recs) == 984
    p0706 = next(r for r in recs if r.id == "P0706")
    label = read_dota_labels(real_data / "dota" / "labelTxt" / "P0706.txt")
    assert p0706.images[0].path == "dota/images/P0706.png"
    assert p0706.meta["imagesource"] == "GoogleEarth" and p0706.meta["gsd"] == pytest.approx(
        0.2556, 1e-3
    )
    assert np.allclose(p0706.objects[0].box.quad_array(), label.objects[0].quad)
    assert p0706.objects[0].difficult is True and p0706.objects[1].difficult is False
    assert p0706.objects[0].box.hbb == [1054.0, 1011.0, 1112.0, 1062.0]


def test_dota_patches_and_versions(real_data: Path) -> None:
    recs = _records(list(iter_dota_records(real_data, "dota_patches", version="2.0")))
    assert [r.id for r in recs] == ["P0004__1__0___0", "P2805__1024__0___0"]
    assert all(r.meta["class_list"] == "dota2.0" for r in recs)
    with pytest.raises(InputError, match="unknown DOTA version"):
        list(iter_dota_records(real_data, "dota", version="3.0"))


def test_dota_bad_lines_and_test_split(tmp_path: Path) -> None:
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "labelTxt" / "a.txt").write_text("1 1 5 1 5 5 1 5 plane 0\n1 2 3 plane\n")
    (tmp_path / "labelTxt" / "b.txt").write_text("gsd:null\n1 1 5 1 5 5 1 5 ship\n")
    strict = list(iter_dota_records(tmp_path))
    assert isinstance(strict[0], BadEntry) and "line 2" in strict[0].reason
    assert isinstance(strict[1], Record) and strict[1].objects[0].class_name == "ship"
    lenient = list(iter_dota_records(tmp_path, skip_bad_lines=True))
    assert [type(i).__name__ for i in lenient] == ["BadEntry", "Record", "Record"]
    test_dir = tmp_path / "test"
    (test_dir / "images").mkdir(parents=True)
    (test_dir / "images" / "P9.png").write_bytes(b"")
    (rec,) = iter_dota_records(tmp_path, "test")
    assert isinstance(rec, Record) and rec.split == "test" and rec.objects == []


def test_dior_r_real(real_data: Path) -> None:
    (rec,) = _records(list(iter_dior_records(real_data, "dior", box="obb")))
    assert rec.id == "00001" and rec.images[0].path == "dior/JPEGImages/00001.jpg"
    assert (rec.images[0].width, rec.images[0].height) == (800, 800)
    (obj,) = rec.objects
    assert obj.class_name == "golffield"
    assert obj.box.quad == [[133, 237], [684, 237], [684, 672], [133, 672]]


def _write_dior(tmp: Path) -> None:
    ann = tmp / "Annotations" / "Horizontal Bounding Boxes"
    ann.mkdir(parents=True)
    (tmp / "ImageSets" / "Main").mkdir(parents=True)
    (tmp / "ImageSets" / "Main" / "val.txt").write_text("00002\n")
    obj = "<object><name>{}</name><difficult>{}</difficult><bndbox><xmin>1</xmin><ymin>2</ymin>"
    obj += "<xmax>30</xmax><ymax>40</ymax></bndbox></object>"
    body = obj.format("Expressway-Service-area", 1) + obj.format("vehicle", 0)
    (ann / "00002.xml").write_text(
        f"<annotation><size><width>800</width><height>800</height></size>{body}</annotation>"
    )
    (ann / "00003.xml").write_text("<annotation><object><name>ship</name></object>")


def test_dior_hbb_split_list_and_bad_xml(tmp_path: Path) -> None:
    _write_dior(tmp_path)
    (rec,) = _records(list(iter_dior_records(tmp_path, box="hbb", split="val")))
    assert rec.split == "val" and rec.objects[0].difficult and rec.objects[0].box.quad is None
    assert rec.objects[0].box.hbb == [1, 2, 30, 40]
    items = list(iter_dior_records(tmp_path, box="hbb"))
    assert isinstance(items[1], BadEntry) and "malformed XML" in items[1].reason


def test_hrsc_real_angle_convention(real_data: Path) -> None:
    (rec,) = _records(list(iter_hrsc_records(real_data, "hrsc")))
    assert rec.id == "100000006" and (rec.images[0].width, rec.images[0].height) == (1172, 816)
    quad = rec.objects[0].box.quad_array()
    centre = quad.mean(axis=0)
    assert np.allclose(centre, [341.2143, 443.3325])
    # The bow point (header_x, header_y) lies on the long (mbox_w) axis of the ship.
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    long_edge = quad[1] - quad[0] if sides[0] > sides[1] else quad[2] - quad[1]
    bow = np.array([143.0, 776.0]) - centre
    cos = abs(bow @ long_edge) / (np.linalg.norm(bow) * np.linalg.norm(long_edge))
    assert cos > 0.99
    assert max(sides) == pytest.approx(778.4297, 1e-4)
    angle = math.degrees(-1.122944)
    assert math.degrees(math.atan2(long_edge[1], long_edge[0])) % 180 == pytest.approx(angle % 180)


def test_fair1m_written_layout(tmp_path: Path) -> None:
    (tmp_path / "labelXml").mkdir()
    pts = "".join(f"<point>{x},{y}</point>" for x, y in [(1, 1), (9, 1), (9, 5), (1, 5), (1, 1)])
    good = (
        f"<annotation><source><filename>0.tif</filename></source><size><width>100</width>"
        f"<height>80</height></size><objects><object><possibleresult><name>Small Car</name>"
        f"</possibleresult><points>{pts}</points></object></objects></annotation>"
    )
    (tmp_path / "labelXml" / "0.xml").write_text(good)
    (tmp_path / "labelXml" / "1.xml").write_text(good.replace("9,5", "nan,5"))
    rec, bad = list(iter_fair1m_records(tmp_path))
    assert isinstance(rec, Record) and rec.objects[0].class_name == "Small Car"
    assert rec.objects[0].box.quad == [[1, 1], [9, 1], [9, 5], [1, 5]]
    assert rec.images[0].path == "images/0.tif" and rec.images[0].width == 100
    assert isinstance(bad, BadEntry) and "non-finite" in bad.reason


def test_coco_written_file(tmp_path: Path) -> None:
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "categories": [{"id": 3, "name": "plane"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 3,
                "bbox": [1, 2, 10, 5],
                "segmentation": [[1, 2, 11, 2, 11, 7, 1, 7]],
            },
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [20, 20, 4, 4]},
            {"id": 3, "image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1]},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(data))
    bad, rec = list(iter_coco_records(tmp_path, "ann.json"))
    assert isinstance(bad, BadEntry) and "unknown category_id 99" in bad.reason
    assert isinstance(rec, Record) and rec.images[0].path == "images/a.png"
    assert rec.objects[0].box.quad is not None and rec.objects[1].box.hbb == [20, 20, 24, 24]
    assert rec.meta["classes"] == ["plane"]
    (broken,) = iter_coco_records(tmp_path, "missing.json")
    assert isinstance(broken, BadEntry)


def test_registry_is_closed() -> None:
    assert {"dota", "dior", "hrsc", "fair1m", "coco", "lrs_vqa", "llava"} <= set(ADAPTERS)
    with pytest.raises(InputError, match="unknown adapter 'nope'"):
        get_adapter("nope")
