"""Scene-classification benchmarks: released layouts (local jsons, class folders, GeoChat-Bench,
VHM), the §3.5 prompt byte for byte, seeded recorded splits, confusion matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import read_benchmark

from .conftest import scene_csv, write_jsonl

AID_CLASSES = (
    "Airport,BareLand,BaseballField,Beach,Bridge,Center,Church,Commercial,DenseResidential,"
    "Desert,Farmland,Forest,Industrial,Meadow,MediumResidential,Mountain,Park,Parking,"
    "Playground,Pond,Port,RailwayStation,Resort,River,School,SparseResidential,Square,Stadium,"
    "StorageTanks,Viaduct."
)
PREFIX = "Classify the image within one of the given classes:"


def _user_text(sample: Any) -> str:
    msgs = sample.to_json()["messages"]
    assert [m["role"] for m in msgs] == ["user"]  # no system
    assert [p["type"] for p in msgs[0]["content"]] == ["image", "text"]
    return msgs[0]["content"][1]["text"]


def _aid_folders(root: Path, class_lists: dict[str, Any], per_class: int = 5) -> Path:
    for name in class_lists["AID"]["classes"]:
        folder = root / "AID" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            (folder / f"{name.lower()}_{i}.jpg").write_bytes(b"")
    return root


def test_cls_aid_local_json(tmp_path: Path, class_lists: dict[str, Any]) -> None:
    classes = ",".join(sorted(class_lists["AID"]["classes"])) + "."
    assert classes == AID_CLASSES  # the real class list sorts to §3.5's expected string
    rows = [
        {"image_id": f"{c}/{c.lower()}_1.jpg", "classes": classes, "ground_truth": c}
        for c in class_lists["AID"]["classes"]
    ] + [{"image_id": "x.jpg", "classes": classes}]
    (tmp_path / "scene_cls").mkdir()
    (tmp_path / "scene_cls/cls_aid_test.json").write_text(json.dumps(rows))
    bench = get_benchmark("cls_aid")
    samples, report = read_benchmark(bench, tmp_path)
    assert len(samples) == 30 and report.n_bad == 1
    assert _user_text(samples[0]) == PREFIX + AID_CLASSES
    assert samples[0].to_json()["messages"][0]["content"][0]["image"].startswith("AID/")
    scores = [bench.score(s, s.reference) for s in samples]
    agg = bench.aggregate(samples, scores)
    assert agg["strict"]["acc"] == 1.0
    assert agg["official"]["acc"] == 1.0
    matrix = agg["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == 30 and all(matrix[i][i] == 1 for i in range(30))


def test_cls_aid_full_folders(tmp_path: Path, class_lists: dict[str, Any]) -> None:
    root = _aid_folders(tmp_path, class_lists)
    samples, report = read_benchmark(get_benchmark("cls_aid_full"), root)
    assert len(samples) == 150 and report.n_bad == 0
    assert _user_text(samples[0]) == PREFIX + AID_CLASSES


@pytest.mark.parametrize(
    ("name", "csv_name", "folder"),
    [
        ("cls_ucm", "UCM", "UCMerced_LandUse/Images"),
        ("cls_whu_rs19", "WHU_RS19", "WHU-RS19"),
        ("cls_siri_whu", "SIRI_WHU", "SIRI-WHU"),
        ("cls_eurosat", "EuroSAT", "EuroSAT"),
    ],
)
def test_folder_sets_seeded_split(
    tmp_path: Path, real_data: Path, name: str, csv_name: str, folder: str
) -> None:
    rows = scene_csv(real_data, csv_name)[:400]
    for row in rows:
        path = tmp_path / folder / row["filepath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    bench = get_benchmark(name)
    samples, _ = read_benchmark(bench, tmp_path)
    labels = sorted({r["filepath"].split("/")[0] for r in rows})
    assert _user_text(samples[0]) == PREFIX + ",".join(labels) + "."
    again, _ = read_benchmark(bench, tmp_path)
    assert [s.id for s in again] == [s.id for s in samples]
    assert samples[0].meta["split_seed"] == 0
    assert 0.1 * len(rows) < len(samples) < 0.3 * len(rows)  # the recorded 20 % test split


def test_geochat_aid_raw_layout(tmp_path: Path) -> None:
    rows = [
        {
            "question_id": 1,
            "image_id": "airport_1.png",
            "ground_truth": "MediumResidentialgt",
            "text": "Classify the image.\nClasses: Airport, Medium Residential, Beach\nAnswer.",
        },
        {"question_id": 2, "image_id": "b.png", "ground_truth": "Beach", "text": "no classes"},
    ]
    write_jsonl(tmp_path / "aid.jsonl", rows)
    bench = get_benchmark("geochat_aid")
    samples, report = read_benchmark(bench, tmp_path)
    assert len(samples) == 1 and report.n_bad == 1
    assert _user_text(samples[0]) == PREFIX + "airport, medium residential, beach"
    assert samples[0].reference == "medium residential"
    assert samples[0].to_json()["messages"][0]["content"][0]["image"] == "AID/airport_1.jpg"
    assert samples[0].meta["record_id"] == 1
    assert bench.score(samples[0], "Medium Residential").strict == 1.0


def test_vhm_scene_cls(tmp_path: Path) -> None:
    conv = lambda q, a: [{"from": "human", "value": q}, {"from": "gpt", "value": a}]  # noqa: E731
    rows = [
        {
            "id": "a1",
            "image": "AID/a.jpg",
            "conversations": conv(
                "What is the scene? Answer with one word or short phrase.", "beach"
            ),
        },
        {"id": "a2", "image": "AID/b.jpg", "conversations": conv("Scene?", "forest")},
        {"id": "a3", "conversations": conv("Scene?", "forest")},
    ]
    (tmp_path / "datasets_eval").mkdir()
    (tmp_path / "datasets_eval/cls_AID.json").write_text(json.dumps(rows))
    bench = get_benchmark("vhm_scene_cls")
    samples, report = read_benchmark(bench, tmp_path)
    assert len(samples) == 2 and report.n_bad == 1
    assert _user_text(samples[0]) == "What is the scene?"
    scores = [bench.score(samples[0], "a sandy beach"), bench.score(samples[1], "forest")]
    assert scores[0].official == 1.0 and scores[0].strict == 0.0  # two-way contain vs strict
    agg = bench.aggregate(samples, scores)
    assert agg["official"]["cls_AID"] == 1.0 and agg["strict"]["overall"] == 0.5
    assert agg["confusion"]["cls_AID"]["cols"] == ["beach", "forest", "<unparsed>"]
