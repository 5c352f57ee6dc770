"""Grounding benchmarks: released layouts, prompts byte-identical with EVAL_SUITE.md §3.1–§3.4,
stable ids, bad records counted, the §1.9 fixed-resolution sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.grounding import GEOGROUND_SUBSETS, official_fixed_sizes
from rscovlm.eval.benchmarks.run import read_benchmark
from rscovlm.resolution import exact_area_resize, smart_resize

from .conftest import write_jsonl

SYSTEM = (
    "As an AI assistant, you specialize in accurate image object detection, delivering "
    "coordinates in plain text format 'x1,y1,x2,y2 object'."
)


def _texts(sample) -> list[tuple[str, str]]:
    out = []
    for msg in sample.to_json()["messages"]:
        for part in msg["content"]:
            if part["type"] == "text":
                out.append((msg["role"], part["text"]))
    return out


@pytest.fixture
def rec_root(tmp_path: Path, dior_rsvg_val: list[int]) -> Path:
    rows: list[object] = [
        {
            "image": f"DIOR/JPEGImages/{idx:05d}.jpg",
            "normal_caption": f"vehicle number {idx}",
            "solution": [10 + k, 20, 210 + k, 300],
            "normalized_solution": [12, 25, 262, 375],
        }
        for k, idx in enumerate(dior_rsvg_val)
    ]
    rows += [
        {"image": "x.jpg", "solution": [1, 2, 3, 4]},
        {"image": "y.jpg", "normal_caption": "car", "solution": [5, 5, 1, 1]},
        "junk",
    ]
    path = tmp_path / "rec_jsons_processed/dior_rsvg_val.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rows))
    return tmp_path


def test_rec_reads_prompt_and_counts(rec_root: Path, dior_rsvg_val: list[int]) -> None:
    bench = get_benchmark("dior_rsvg_val")
    samples, report = read_benchmark(bench, rec_root)
    assert len(samples) == len(dior_rsvg_val) and report.n_bad == 3
    assert len(samples) + report.n_bad == len(dior_rsvg_val) + 3
    first = samples[0]
    assert _texts(first) == [
        ("system", SYSTEM),
        ("user", f"find the vehicle number {dior_rsvg_val[0]}"),
    ]
    content = first.to_json()["messages"][1]["content"]
    assert content[0]["type"] == "image"  # image first, then text
    assert content[0]["image"] == f"detection/DIOR/JPEGImages/{dior_rsvg_val[0]:05d}.jpg"
    assert first.meta["record_id"] == 0
    again, _ = read_benchmark(bench, rec_root)
    assert [s.id for s in again] == [s.id for s in samples]
    assert len({s.id for s in samples}) == len(samples)
    reasons = " ".join(report.bad_examples)
    assert "normal_caption" in reasons and "inverted" in reasons and "not a JSON object" in reasons


def test_rec_scores_with_recorded_sizes(rec_root: Path) -> None:
    bench = get_benchmark("dior_rsvg_val")
    samples, _ = read_benchmark(bench, rec_root)
    sample = samples[0].with_sizes([800, 800], [400, 400])  # model box = half the pixels
    box = sample.reference["box"]
    half = ",".join(str(round(v / 2)) for v in box)
    assert bench.score(sample, f"{half} car").strict == 1.0
    assert bench.score(samples[0], f"{half} car").strict == 0.0  # no sizes: taken as pixels
    assert bench.perfect_output(sample).startswith(half)


def _refgeo(root: Path, size: int = 600) -> Path:
    for k, sub in enumerate(GEOGROUND_SUBSETS):
        rows: list[dict] = [
            {
                "image_id": f"{sub}_{i}.jpg",
                "question": f"{sub} thing {i}",
                "bbox": [10, 10, 300 + i, 200],
                "width": size,
                "height": size,
            }
            for i in range(3 + k)
        ]
        rows.append({"image_id": "bad.jpg", "question": "", "bbox": [1, 1, 2, 2]})
        write_jsonl(root / f"metainfo/{sub}.jsonl", rows)
    return root


def test_geoground_every_subset_and_overall(tmp_path: Path) -> None:
    root = _refgeo(tmp_path)
    bench = get_benchmark("geoground")
    samples, report = read_benchmark(bench, root)
    n = sum(3 + k for k in range(len(GEOGROUND_SUBSETS)))
    assert len(samples) == n and report.n_bad == len(GEOGROUND_SUBSETS)
    assert _texts(samples[0]) == [("system", SYSTEM), ("user", "find the avvg_test thing 0")]
    assert (
        samples[0].to_json()["messages"][1]["content"][0]["image"] == "images/avvg/avvg_test_0.jpg"
    )
    for sub in GEOGROUND_SUBSETS:  # every single subset works (the original's lstrip breaks 5)
        one, _ = read_benchmark(get_benchmark(f"geoground_{sub}"), root)
        assert {s.meta["dataset_name"] for s in one} == {sub}
    scores = [bench.score(s, bench.perfect_output(s)) for s in samples]
    agg = bench.aggregate(samples, scores)
    assert set(GEOGROUND_SUBSETS) <= set(agg["official"])
    assert agg["official"]["overall"] == 100.0 and agg["strict"]["overall"] == 100.0


def test_geoground_fixed_resolution_quirk(tmp_path: Path) -> None:
    root = _refgeo(tmp_path, size=600)
    bench = get_benchmark("geoground_avvg_test_224")
    samples, _ = read_benchmark(bench, root)
    part = samples[0].image_parts()[0]
    assert part.resized_size == (224, 224)  # what the model is fed, exactly 224²
    assert samples[0].meta["official_resized_size"] == [196, 196]  # what the original records
    assert samples[0].meta["official_fed_size"] == [224, 224]  # …then its processor feeds
    assert samples[0].conversation().image_parts()[0].resized_size == (224, 224)
    assert smart_resize(600, 600, 28, 224**2, 224**2) == (196, 196)
    assert exact_area_resize(600, 600, 1008) == (1008, 1008)
    assert official_fixed_sizes(1035, 1035, 1008) == {"recorded": [980, 980], "fed": [980, 980]}
    sample = samples[0]
    out = bench.perfect_output(sample)
    s = bench.score(sample, out)
    # strict: rescaled by the fed 224 → right; official: by the recorded 196 → off by 14 %
    assert s.strict == 1.0
    assert s.extra["official_iou"] < s.extra["iou"]


def test_vrsbench_referring_grid_mapped(tmp_path: Path) -> None:
    rows = [
        {
            "image_id": "00001.png",
            "question": "<image>\nThe small car on the left.",
            "ground_truth": "{<10><20><30><40>}",
            "question_id": 7,
        },
        {"image_id": "00002.png", "question": "a ship", "ground_truth": "{<10><20>}"},
    ]
    (tmp_path / "VRSBench_EVAL_referring.json").write_text(json.dumps(rows))
    bench = get_benchmark("vrsbench_referring")
    samples, report = read_benchmark(bench, tmp_path)
    assert len(samples) == 1 and report.n_bad == 1
    assert _texts(samples[0]) == [
        (
            "user",
            "find the small car on the left, delivering coordinates in plain text format "
            "'x1,y1,x2,y2 object'",
        )
    ]
    assert samples[0].reference == {"box": [51.2, 102.4, 153.6, 204.8]}
    assert samples[0].meta["record_id"] == 7
    s = bench.score(samples[0], "51,102,154,205 car")
    assert s.strict == 1.0 and s.official == 0.0  # official compares pixels with grid values


def test_geochat_referring_prompt(tmp_path: Path) -> None:
    rows = [
        {
            "image_id": "1.jpg",
            "question": "ships at the left",
            "ground_truth": [[1, 1, 9, 9]],
            "size_group": "small",
            "type": "ref",
            "obj_ids": [3],
        },
        {"image_id": "2.jpg", "question": "x", "ground_truth": [[1, 2, 3]]},
    ]
    write_jsonl(tmp_path / "referring.jsonl", rows)
    samples, report = read_benchmark(get_benchmark("geochat_referring"), tmp_path)
    assert len(samples) == 1 and report.n_bad == 1
    assert _texts(samples[0]) == [
        (
            "user",
            "Find all ships at the left, delivering each oriented coordinates in plain text "
            "format 'x1,y1,x2,y2,x3,y3,x4,y4 object'",
        )
    ]
    assert samples[0].to_json()["messages"][0]["content"][0]["image"] == "images/1.png"


def test_wrong_root_is_one_line(tmp_path: Path) -> None:
    from rscovlm.errors import InputError

    with pytest.raises(InputError, match=r"expected rec_jsons_processed/rsvg_val\.json"):
        read_benchmark(get_benchmark("rsvg_val"), tmp_path)
