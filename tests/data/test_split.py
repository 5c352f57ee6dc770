"""DOTA-style tiling: window plan, a real DOTA image tiled and merged back, huge rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.data.patches import parse_patch_name
from rscovlm.data.record import Box, Instance
from rscovlm.data.sources.dota import iter_dota_records, read_dota_labels
from rscovlm.data.sources.synthetic_raster import write_large_geotiff
from rscovlm.data.split import (
    TileSpec,
    merge_patch_objects,
    plan_windows,
    split_dota,
    split_image,
    window_origins,
)
from rscovlm.errors import InputError
from rscovlm.geometry import clip_hbb, clip_quads, quad_iou_matrix, quad_to_hbb


def test_window_plan_covers_the_image() -> None:
    assert window_origins(1024, 1024, 824) == [0]
    assert window_origins(2000, 1024, 824) == [0, 824, 976]
    wins = plan_windows(1111, 1182, 512, 200)
    assert len(wins) == 12 and wins[-1] == (599, 670, 1111, 1182)
    covered = np.zeros((1182, 1111), bool)
    for x0, y0, x1, y1 in wins:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    with pytest.raises(InputError, match="gap"):
        TileSpec(size=100, gap=100)


def _objects(label_path: Path) -> list[Instance]:
    label = read_dota_labels(label_path)
    return [
        Instance(class_name=o.class_name, box=Box.from_quad(o.quad), difficult=o.difficult)
        for o in label.objects
    ]


def _merge(records: list) -> tuple[np.ndarray, list[str]]:
    patches = [
        (
            r.id,
            np.stack([o.box.quad_array() for o in r.objects]) if r.objects else np.zeros((0, 4, 2)),
            [o.class_name for o in r.objects],
            np.array([0.5 if o.partial else 1.0 for o in r.objects]),
        )
        for r in records
    ]
    quads, classes, _ = merge_patch_objects(patches, iou_threshold=0.5)["P0706"]
    return quads, classes


@pytest.mark.parametrize(("size", "gap"), [(1024, 500), (512, 200)])
def test_real_dota_tiles_merge_back(real_data: Path, tmp_path: Path, size: int, gap: int) -> None:
    image = real_data / "dota" / "images" / "P0706.png"
    objects = _objects(real_data / "dota" / "labelTxt" / "P0706.txt")
    records = split_image(image, objects, tmp_path, "P0706", TileSpec(size, gap))
    assert all(parse_patch_name(r.id).base == "P0706" for r in records)
    with Image.open(tmp_path / "images" / f"{records[-1].id}.png") as patch:
        assert patch.size == (records[-1].images[0].width, records[-1].images[0].height)
    merged, classes = _merge(records)
    original = np.stack([o.box.quad_array() for o in objects])
    in_image, _ = clip_quads(original, (0, 0, 1111, 1182))  # a few ships cross the border
    iou = quad_iou_matrix(in_image, merged)
    best = iou.argmax(axis=1)
    windows = plan_windows(1111, 1182, size, gap)
    hbbs = clip_hbb(quad_to_hbb(in_image), 1111, 1182)
    whole = np.array([any(h[0] >= w[0] and h[1] >= w[1] and h[2] <= w[2] and h[3] <= w[3]
                          for w in windows) for h in hbbs])  # fmt: skip
    # Every object that fits in some patch comes back exactly, with its class.
    assert (iou.max(axis=1)[whole] > 0.99).all()
    assert all(classes[best[i]] == objects[i].class_name for i in np.flatnonzero(whole))
    if size == 1024:
        assert whole.all() and len(merged) == len(objects)
    else:
        assert (~whole).sum() == 4  # the four ~430 px harbours exceed the 200 px overlap


def test_partial_objects_flagged_and_threshold(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((100, 150, 3), np.uint8)).save(tmp_path / "img.png")
    objs = [
        Instance(class_name="ship", box=Box.from_hbb([90, 10, 110, 20])),  # 50 % in first patch
        Instance(class_name="ship", box=Box.from_hbb([70, 10, 105, 20])),  # 85.7 % in first patch
    ]
    recs = split_image(tmp_path / "img.png", objs, tmp_path / "out", "img", TileSpec(100, 50))
    first = recs[0]
    assert first.id == "img__1__0___0" and len(first.objects) == 1
    assert first.objects[0].partial and first.objects[0].box.hbb == pytest.approx([70, 10, 100, 20])
    last = recs[-1]
    assert last.id == "img__1__50___0" and not any(o.partial for o in last.objects)
    text = (tmp_path / "out" / "labelTxt" / "img__1__0___0.txt").read_text()
    assert text.strip().endswith("ship 0")


def test_rates_and_split_dota_folder(real_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labelTxt").mkdir()
    Image.open(real_data / "dota" / "images" / "P1888.png").save(src / "images" / "P1888.png")
    label = (real_data / "dota" / "labelTxt" / "P1888.txt").read_text()
    (src / "labelTxt" / "P1888.txt").write_text(label)
    recs = split_dota(src, tmp_path / "out", TileSpec(512, 100, rates=(1.0, 0.5)))
    assert {r.meta["rate"] for r in recs} == {1.0, 0.5}
    half = [r for r in recs if r.meta["rate"] == 0.5]
    assert len(half) == 1 and (half[0].images[0].width, half[0].images[0].height) == (356, 278)
    back = list(iter_dota_records(tmp_path / "out"))
    assert len(back) == len(recs)


def test_huge_raster_is_tiled_window_by_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tif = tmp_path / "big" / "big.tif"
    targets = write_large_geotiff(tif, size=2048, n_targets=3, seed=1)
    original_load = Image.Image.load

    def guarded_load(self: Image.Image) -> object:
        if self.size[0] * self.size[1] > 1024 * 1024:
            raise AssertionError(f"PIL decoded a {self.size} image whole")
        return original_load(self)

    monkeypatch.setattr(Image.Image, "load", guarded_load)
    objects = [Instance(class_name=t.class_name, box=Box.from_quad(t.quad)) for t in targets]
    recs = split_image(tif, objects, tmp_path / "out", "big", TileSpec(1024, 0), max_pixels=10**6)
    assert len(recs) == 4 and sum(len(r.objects) for r in recs) == 3
    rec = next(r for r in recs if r.objects)
    hbb = [int(v) for v in rec.objects[0].box.hbb]
    with Image.open(tmp_path / "out" / "images" / f"{rec.id}.png") as patch:
        pixels = np.asarray(patch)[hbb[1] + 4 : hbb[3] - 4, hbb[0] + 4 : hbb[2] - 4]
    ground = np.asarray(Image.open(tmp_path / "out" / "images" / f"{rec.id}.png"))[:8, :8]
    assert pixels.size and np.abs(pixels.astype(int).mean((0, 1)) - ground.mean((0, 1))).max() > 30
