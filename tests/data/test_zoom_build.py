"""LRS-VQA-Zoom builder: crop box policy, decisions, windowed crops, real benchmark file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rscovlm.data import zoom_build
from rscovlm.data.conversation import chat_text
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import QA, Box, Record
from rscovlm.data.render import render
from rscovlm.data.sources.synthetic_raster import write_large_geotiff
from rscovlm.data.zoom_build import (
    CropPolicy,
    build_zoom_dataset,
    crop_box,
    iter_zoom_records,
    zoom_record,
)
from rscovlm.errors import InputError
from rscovlm.imaging import read_window


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(50, 30000),
    height=st.integers(50, 30000),
    fx=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    fy=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    pad=st.floats(0, 2),
    min_size=st.integers(1, 2000),
    aspect=st.floats(1, 10),
)
def test_crop_box_contains_the_region_inside_the_image(
    width: int,
    height: int,
    fx: tuple[float, float],
    fy: tuple[float, float],
    pad: float,
    min_size: int,
    aspect: float,
) -> None:
    x1, x2 = sorted(f * width for f in fx)
    y1, y2 = sorted(f * height for f in fy)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return
    policy = CropPolicy(pad_ratio=pad, min_size=min_size, max_aspect=aspect)
    cx1, cy1, cx2, cy2 = crop_box([x1, y1, x2, y2], width, height, policy)
    assert all(isinstance(v, int) for v in (cx1, cy1, cx2, cy2))
    assert 0 <= cx1 <= x1 and x2 <= cx2 <= width
    assert 0 <= cy1 <= y1 and y2 <= cy2 <= height
    w, h = cx2 - cx1, cy2 - cy1
    # Minimum context, unless the image itself is smaller on that axis.
    assert w >= min(min_size, width) - 1e-9 and h >= min(min_size, height) - 1e-9
    # Padding on each axis (up to the image).
    assert w >= min((x2 - x1) * (1 + 2 * pad), width) - 1
    # Aspect limit holds whenever the image leaves room for it (+1 px for the outward snap).
    if w < width and h < height:
        assert max(w, h) / min(w, h) <= aspect * (1 + 1e-9) + 2 / min(w, h)


def test_crop_box_policy_examples() -> None:
    # Small object in a corner: min size, slid into the image.
    assert crop_box([100, 100, 140, 120], 4000, 3000) == (0, 0, 448, 448)
    # Wide object: padded by half its extent on each side, min height.
    assert crop_box([2000, 1000, 2600, 1100], 4000, 3000) == (1700, 826, 2900, 1274)
    # Thin object: the short side grows to the aspect limit.
    policy = CropPolicy(pad_ratio=0.0, min_size=10, max_aspect=2.0)
    assert crop_box([0, 0, 1000, 10], 4000, 3000, policy) == (0, 0, 1000, 500)
    # Image smaller than the minimum: the whole axis.
    assert crop_box([10, 10, 20, 20], 300, 200) == (0, 0, 300, 200)
    # Region poking out of the image is clipped first.
    assert crop_box([3900, 2900, 4100, 3100], 4000, 3000)[2:] == (4000, 3000)
    with pytest.raises(InputError, match="does not overlap"):
        crop_box([5000, 10, 5100, 20], 4000, 3000)
    with pytest.raises(InputError, match="max_image_fraction"):
        CropPolicy(max_image_fraction=0)


def qa_record(evidence: list[list[float]], category: str = "object color") -> Record:
    return Record(
        id="q",
        source="lrs",
        task="vqa",
        images=[{"path": "img.tif", "width": 4000, "height": 4000}],
        qa=[
            QA(
                question="What color is it?",
                answer="red",
                category=category,
                evidence=[Box.from_hbb(e) for e in evidence],
            )
        ],
    )


@pytest.mark.parametrize(
    ("evidence", "category", "decision", "zooms"),
    [
        ([[100, 100, 200, 200]], "object color", "zoom", 1),
        ([[100, 100, 200, 200], [900, 900, 950, 950]], "object color", "several_regions", 0),
        ([[100, 100, 200, 200]], "count", "skipped_category", 0),
        ([[0, 0, 3000, 3000]], "reasoning", "too_large", 0),
        ([], "reasoning", "no_region", 0),
    ],
)
def test_decisions(evidence: list, category: str, decision: str, zooms: int) -> None:
    rec, got = zoom_record(qa_record(evidence, category), CropPolicy(), (4000, 4000), "zoom")
    assert got == decision and len(rec.zoom) == zooms and rec.source == "zoom"
    assert rec.meta["zoom_build"] == {"decision": decision, "regions": len(evidence)}
    text = chat_text(render(rec, np.random.default_rng(0), RenderPolicy()))
    assert ("<tool_call>" in text) == (decision == "zoom")


def test_real_lrs_vqa_benchmark_file(real_data: Path) -> None:
    result = zoom_build.ZoomBuildResult()
    records = list(iter_zoom_records(real_data / "lrs_vqa", "LRS_VQA_merged.jsonl", result=result))
    assert result.read == 7333 == result.zoom + result.single + result.rejected
    assert result.rejected == 0 and len(records) == 7333
    counts = [r for r in records if r.qa[0].category == "count"]
    assert counts and all(not r.zoom for r in counts)
    assert result.decisions["skipped_category"] == len(counts)
    for rec in records[:200]:
        if rec.zoom:
            (x1, y1, x2, y2), ev = rec.zoom[0].hbb, rec.qa[0].evidence[0].hbb
            w, h = rec.images[0].width, rec.images[0].height
            # Some benchmark boxes poke out of the image (FAIR_1: y2 4050 of 4000): clipped.
            ex1, ey1, ex2, ey2 = max(ev[0], 0), max(ev[1], 0), min(ev[2], w), min(ev[3], h)
            assert 0 <= x1 <= ex1 and ex2 <= x2 <= w and 0 <= y1 <= ey1 and ey2 <= y2 <= h
            assert min(x2 - x1, y2 - y1) >= min(448, w, h)


@pytest.fixture(scope="module")
def geotiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoom")
    write_large_geotiff(root / "scene" / "big.tif", size=2048, n_targets=3, seed=1, block=256)
    return root


def test_crops_are_read_window_by_window(geotiff: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    windows = []

    def spy(path: Path, x: int, y: int, w: int, h: int, out_size: object = None) -> np.ndarray:
        windows.append((x, y, w, h))
        return read_window(path, x, y, w, h, out_size)

    monkeypatch.setattr(zoom_build, "read_window", spy)
    out = geotiff / "zoom.jsonl"
    result = build_zoom_dataset(geotiff, "scene/zoom_vqa.jsonl", out, crops_dir="crops")
    assert (result.read, result.zoom, result.single, result.rejected) == (3, 3, 0, 0)
    records = [Record.from_json(line) for line in out.read_text().splitlines()]
    assert (geotiff / "zoom.rejected.jsonl").read_text() == ""
    assert len(windows) == 3 and all(w * h < 2048 * 2048 / 4 for *_, w, h in windows)
    for rec, (x, y, w, h) in zip(records, windows, strict=True):
        full, crop = rec.images
        assert (full.width, full.height) == (2048, 2048)
        assert (crop.width, crop.height) == (w, h) and crop.path.startswith("crops/")
        assert tuple(rec.zoom[0].hbb) == (x, y, x + w, y + h)
        got = np.asarray(Image.open(geotiff / crop.path))
        assert np.array_equal(got, read_window(geotiff / full.path, x, y, w, h))
        # The target the question is about is inside the crop.
        ev = rec.qa[0].evidence[0].hbb
        assert x <= ev[0] and ev[2] <= x + w and y <= ev[1] and ev[3] <= y + h
        conv = render(rec, np.random.default_rng(0), RenderPolicy())
        overview, crop_part = conv.image_parts()
        assert overview.resized_size == (1008, 1008) and crop_part.source == crop.path
        assert crop_part.window is None and crop_part.orig_size == (w, h)


def test_bad_entries_are_reported_and_counts_add_up(tmp_path: Path) -> None:
    lines = [
        {"question_id": "a", "image": "x.png", "image_size": [1000, 800], "category": "color",
         "text": "Q?", "ground_truth": "red", "hbox": [10, 10, 50, 50]},
        {"question_id": "b", "image": "x.png", "category": "color", "text": "Q?"},
        {"question_id": "c", "image": "x.png", "image_size": [1000, 800], "category": "color",
         "text": "Q?", "ground_truth": "red", "hbox": [5000, 10, 5050, 50]},
        {"question_id": "d", "image": "missing.png", "category": "color", "text": "Q?",
         "ground_truth": "red", "hbox": [10, 10, 50, 50]},
    ]  # fmt: skip
    (tmp_path / "ann.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = build_zoom_dataset(tmp_path, "ann.jsonl", tmp_path / "out.jsonl")
    assert (result.read, result.zoom, result.single, result.rejected) == (4, 1, 0, 3)
    reasons = [json.loads(x)["reason"] for x in (tmp_path / "out.rejected.jsonl").open()]
    assert "without question text or answer" in reasons[0]
    assert "does not overlap" in reasons[1]
    assert "image file not found" in reasons[2]


def test_docstring_examples() -> None:
    import doctest

    assert doctest.testmod(zoom_build).failed == 0


def test_cli_zoom_build(geotiff: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rscovlm.cli import main

    out = geotiff / "cli"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "data",
                "zoom-build",
                "scene/zoom_vqa.jsonl",
                "--root",
                str(geotiff),
                "--out",
                str(out),
            ]
        )
    assert info.value.code == 0
    assert "read 3 = zoom 3 + single-turn 0 + rejected 0" in capsys.readouterr().out
    assert len((out / "zoom.jsonl").read_text().splitlines()) == 3
    with pytest.raises(SystemExit) as info:
        main(["data", "zoom-build", "nope.jsonl", "--root", str(geotiff), "--out", str(out)])
    assert info.value.code == 2
    assert "annotation file not found" in capsys.readouterr().err
