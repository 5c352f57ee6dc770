"""The procedural scene generator: seeded, read back by the real adapters, huge GeoTIFF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rscovlm.data.record import Record
from rscovlm.data.sources import run_adapter
from rscovlm.data.sources.synthetic import SCENE_CLASSES, generate_scenes
from rscovlm.data.sources.synthetic_raster import write_large_geotiff
from rscovlm.formats.classes import DOTA_V1_0
from rscovlm.geometry import quad_to_hbb
from rscovlm.imaging import read_window


def test_scenes_are_seeded_and_independent_of_count(tmp_path: Path) -> None:
    a = generate_scenes(tmp_path / "a", n=3, size=256, seed=5)
    b = generate_scenes(tmp_path / "b", n=2, size=256, seed=5)
    assert [s.scene for s in a[:2]] == [s.scene for s in b]
    for sa, sb in zip(a[:2], b, strict=True):
        assert np.array_equal(
            np.stack([o.quad for o in sa.objects]), np.stack([o.quad for o in sb.objects])
        )
    png_a = (tmp_path / "a" / "images" / "syn_00001.png").read_bytes()
    assert png_a == (tmp_path / "b" / "images" / "syn_00001.png").read_bytes()
    c = generate_scenes(tmp_path / "c", n=3, size=256, seed=6)
    assert [len(s.objects) for s in c] != [len(s.objects) for s in a] or c[0].scene != a[0].scene


def test_scenes_go_through_the_real_adapters(tmp_path: Path) -> None:
    scenes = generate_scenes(tmp_path / "syn", n=6, size=256, seed=0)
    items = list(run_adapter("synthetic", tmp_path, "syn", n=6, size=256, seed=0))
    assert all(isinstance(i, Record) for i in items)
    det = [i for i in items if i.task == "detection"]
    vqa = [i for i in items if i.task == "vqa"]
    cls = [i for i in items if i.task == "classification"]
    assert len(det) == len(cls) == 6 and vqa
    assert {c.label for c in cls} <= set(SCENE_CLASSES)
    for scene, rec in zip(scenes, det, strict=True):
        assert [o.class_name for o in rec.objects] == [o.class_name for o in scene.objects]
        assert all(o.class_name in DOTA_V1_0 for o in rec.objects)
    for q in vqa:
        (qa,) = q.qa
        assert qa.category in ("count", "position", "object color")
        if qa.category == "count":
            assert int(qa.answer) == len(qa.evidence) == len(q.zoom)
        else:
            assert len(qa.evidence) == 1
    # Every evidence box is one of the scene's objects.
    scene = {s.id: s for s in scenes}
    for q in vqa:
        hbbs = quad_to_hbb(
            np.stack([o.quad for o in scene[q.images[0].path.split("/")[-1][:9]].objects])
        )
        for box in q.qa[0].evidence:
            assert np.abs(hbbs - np.array(box.hbb)).max(axis=1).min() < 0.1


def test_large_geotiff_small_size(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    targets = write_large_geotiff(path, size=2048, n_targets=4, seed=0, block=256)
    with rasterio.open(path) as src:
        assert (src.width, src.height, src.count) == (2048, 2048, 3)
        assert src.crs.to_epsg() == 32650 and src.block_shapes[0] == (256, 256)
        assert src.compression.value == "DEFLATE"
    rows = [json.loads(x) for x in (tmp_path / "zoom_vqa.jsonl").read_text().splitlines()]
    assert len(rows) == len(targets) == 4 and len({r["answer"] for r in rows}) == 4
    for row, target in zip(rows, targets, strict=True):
        x1, y1, x2, y2 = row["bbox_info"]["crop_hbox"][0]
        c = target.quad.mean(axis=0)
        assert x1 <= c[0] <= x2 and y1 <= c[1] <= y2
        crop = read_window(path, int(c[0]) - 2, int(c[1]) - 2, 4, 4)
        assert crop.shape == (4, 4, 3)
    items = list(run_adapter("lrs_vqa", tmp_path, "zoom_vqa.jsonl"))
    assert all(isinstance(i, Record) and len(i.zoom) == 1 for i in items)


@pytest.mark.slow
def test_large_geotiff_full_size(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    write_large_geotiff(path, size=20480, n_targets=5)
    with rasterio.open(path) as src:
        assert src.width == src.height == 20480 and src.crs is not None
    assert path.stat().st_size < 200 * 2**20


def test_box_scenes_carry_a_position_ramp(tmp_path: Path) -> None:
    """Red rises left to right and green top to bottom, on the field and the object alike
    (the tiny model has no absolute position embedding to read places from); ``ramp=0``
    leaves the flat field."""
    from PIL import Image

    from rscovlm.data.sources.synthetic import POSITION_RAMP, write_box_scenes

    (ramped,) = write_box_scenes(tmp_path / "a", 1, 112, seed=5)
    (flat,) = write_box_scenes(tmp_path / "b", 1, 112, seed=5, ramp=0)
    a = np.asarray(Image.open(ramped), dtype=np.float64)
    b = np.asarray(Image.open(flat), dtype=np.float64)
    delta = a - b  # the same scene, so the difference is the ramp alone (up to rounding)
    assert np.allclose(
        delta[:, :, 0].mean(axis=0)[[0, -1]], [-POSITION_RAMP, POSITION_RAMP], atol=1.5
    )
    assert np.allclose(
        delta[:, :, 1].mean(axis=1)[[0, -1]], [-POSITION_RAMP, POSITION_RAMP], atol=1.5
    )
    assert np.abs(delta[:, :, 2]).max() <= 1  # blue untouched
    assert a.max() < 255  # no clipping: the object colours leave room for the ramp
