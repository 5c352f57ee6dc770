"""Tiled detection: scripted patch outputs (replay), the tiny model end to end, and the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rscovlm.cli import main
from rscovlm.data.sources.coco import read_coco_detection
from rscovlm.data.split import TileSpec
from rscovlm.eval.detection_io import read_predictions
from rscovlm.formats import DOTA_V1_0, detection_system_prompt, detection_user_prompt
from rscovlm.geometry import hbb_to_quad, quad_iou_matrix
from rscovlm.imaging import open_raster, pixel_to_map, read_region
from rscovlm.model.backends import ReplayBackend
from rscovlm.pipelines.detect import detect_image, plan_patches
from rscovlm.pipelines.detect_outputs import DETECT_FORMATS, resolve_formats, write_outputs
from rscovlm.resolution import RSCOVLM_BAND, CoordMap

SPEC = TileSpec(512, 128)  # 896×640 → patches at x 0/384, y 0/128
TRANSFORM = (0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)
SHIP = [400.0, 100.0, 480.0, 160.0]  # in the overlap of patches (0, 0) and (384, 0)
PLANE = [50.0, 500.0, 120.0, 560.0]  # only in patches (0, 128)


def _write_tif(path: Path, width: int, height: int, crs: str | None = "EPSG:32650") -> Path:
    import rasterio
    from affine import Affine
    from rasterio.errors import NotGeoreferencedWarning

    rng = np.random.default_rng(0)
    arr = rng.integers(60, 140, (3, height, width), dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in SHIP)
    arr[:, y1:y2, x1:x2] = np.array([220, 30, 30], np.uint8)[:, None, None]
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
        "tiled": True, "blockxsize": 256, "blockysize": 256,
    }  # fmt: skip
    if crs is not None:
        profile.update(crs=crs, transform=Affine(*TRANSFORM))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tif(tmp_path_factory.mktemp("detect") / "scene.tif", 896, 640)


def _line(patch_origin: tuple[int, int], hbb: list[float], label: str) -> str:
    """The line a perfect model writes for an original-pixel box seen in a 512² patch."""
    cmap = CoordMap((512, 512), (504, 504))
    local = hbb_to_quad(hbb) - np.asarray(patch_origin, float)
    coords = cmap.to_model(local, "quad")[0].reshape(-1).tolist()
    return ",".join(str(v) for v in coords) + f" {label}"


def _script() -> dict[str, list[str]]:
    return {
        "scene__1__0___0": [
            _line((0, 0), SHIP, "ship") + "\n5,5,40,40 airplane thing\nI think that is all.\n"
        ],
        "scene__1__384___0": [
            _line((384, 0), SHIP, "ship") + "\n" + _line((384, 0), SHIP, "harbor") + "\n"
        ],
        "scene__1__0___128": [_line((0, 128), PLANE, "plane") + "\n10,10,10,10 ship\n"],
        "scene__1__384___128": ["There are none."],
    }


def test_replay_merges_patches_into_original_pixels(scene: Path, tmp_path: Path) -> None:
    backend = ReplayBackend(_script())
    result = detect_image(backend, scene, DOTA_V1_0, spec=SPEC, batch=3)
    assert [p.name for p in result.patches] == list(_script())
    assert [len(c[0]) for c in backend.calls] == [3, 1]  # batched
    conv = backend.calls[0][0][0]
    assert conv.messages[0].text == detection_system_prompt("quad")
    assert conv.messages[1].text == detection_user_prompt(DOTA_V1_0, eval_mode=True)
    part = conv.image_parts()[0]
    assert part.window == (0, 0, 512, 512) and part.resized_size == (504, 504)
    # The patch pixels come from the raster's window: the red ship sits at its local place.
    crop = np.asarray(backend.calls[0][1][1][0])  # patch (384, 0)
    assert crop.shape == (504, 504, 3)
    assert tuple(crop[130 * 504 // 512, 50 * 504 // 512]) > (200, 0, 0)
    assert np.array_equal(crop, np.asarray(read_region(scene, (384, 0, 896, 512), (504, 504))))

    names = result.class_names
    assert sorted(names) == ["harbor", "plane", "ship"]  # ship duplicate removed, class-wise
    want = {"ship": SHIP, "harbor": SHIP, "plane": PLANE}
    for name, quad in zip(names, result.quads, strict=True):
        assert np.abs(quad - hbb_to_quad(want[name])[0]).max() < 1.1  # int truncation only
    assert np.all(result.scores == 1.0)
    c = result.counts()
    assert c == {
        "n_patches": 4, "n_failed_patches": 0, "n_outputs": 4, "n_empty_outputs": 1,
        "n_objects": 6, "n_unreadable": 1, "n_unknown_label": 1, "n_degenerate": 1,
        "n_before_nms": 4, "n_suppressed": 1, "n_kept": 3,
    }  # fmt: skip
    assert c["n_objects"] == c["n_unknown_label"] + c["n_degenerate"] + c["n_before_nms"]
    assert result.unknown_labels == {"airplane thing": 1}
    assert result.patches[0].rejected == [("I think that is all.", "not a detection line")]

    # The same boxes whatever the batch size (order-independent merge).
    again = detect_image(ReplayBackend(_script()), scene, DOTA_V1_0, spec=SPEC, batch=1)
    assert again.class_names == names and np.array_equal(again.quads, result.quads)

    files = write_outputs(result, tmp_path / "out")
    assert set(files) == {*DETECT_FORMATS, "raw", "summary"}
    # rscovlm JSONL and Task1 read back through the evaluation readers.
    for fmt, path in (("jsonl", files["jsonl"]), ("task1", files["task1"])):
        pred = read_predictions(path, fmt, DOTA_V1_0)
        assert pred.images == ("scene",) and len(pred.boxes) == 3
        got = sorted(zip(pred.boxes.label.tolist(), pred.boxes.quads.tolist(), strict=True))
        ref = sorted(zip(result.labels.tolist(), result.quads.tolist(), strict=True))
        assert got == ref
    task1 = sorted(p.name for p in files["task1"].iterdir())
    assert len(task1) == 15 and (files["task1"] / "Task1_bridge.txt").read_text() == ""
    ship_line = (files["task1"] / "Task1_ship.txt").read_text().split()
    assert ship_line[:2] == ["scene", "1.0"] and len(ship_line) == 10
    # COCO: one image, 15 categories, polygons equal to the quads.
    coco = read_coco_detection(files["coco"])
    objs = next(iter(coco.objects.values()))
    assert len(coco.categories) == 15 and len(objs) == 3
    doc = json.loads(files["coco"].read_text())
    assert doc["images"] == [{"id": 1, "file_name": "scene.tif", "width": 896, "height": 640}]
    assert all(a["score"] == 1.0 and len(a["bbox"]) == 4 for a in doc["annotations"])
    # GeoJSON: RFC 7946 by default (lon/lat, no crs member; see test_geojson_is_rfc7946);
    # --crs native: map coordinates = pixel_to_map of the quads, the raster's CRS named.
    assert "crs" not in json.loads(files["geojson"].read_text())
    native = write_outputs(result, tmp_path / "native", ["geojson"], crs="native")
    geo = json.loads(native["geojson"].read_text())
    assert geo["properties"]["coordinates"] == "map"
    assert geo["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32650"
    info = open_raster(scene)
    assert info.transform == TRANSFORM
    for feature, quad in zip(geo["features"], result.quads, strict=True):
        ring = np.asarray(feature["geometry"]["coordinates"][0])
        assert len(ring) == 5 and np.array_equal(ring[0], ring[-1])
        expect = pixel_to_map(info, quad)
        assert np.allclose(ring[:4], expect) or np.allclose(ring[:4], expect[::-1])
        x, y = ring[:4, 0], ring[:4, 1]
        assert np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) > 0  # right-hand rule
    # Raw outputs: one line per patch in the eval's vlm schema; the summary holds the counts.
    raw = [json.loads(line) for line in files["raw"].read_text().splitlines()]
    assert [r["image_id"] for r in raw] == list(_script())
    assert raw[0]["orig_size"] == [512, 512] and raw[0]["resized_size"] == [504, 504]
    summary = json.loads(files["summary"].read_text())
    assert summary["counts"] == c and summary["crs"] == "EPSG:32650"
    assert not list((tmp_path / "out").glob("*.tmp")) and not list((tmp_path / "out").glob(".*"))


def test_plain_image_geojson_in_pixels_and_rates(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "plain.png"
    Image.new("RGB", (896, 640), (90, 100, 80)).save(png)
    # Rate 0.5: one 448×320 patch covering the whole image; boxes come back ×2.
    patches = plan_patches(
        png, (896, 640), TileSpec(512, 128, (0.5,)), RSCOVLM_BAND, "qwen2_5_vl", "p"
    )
    assert [(p.name, p.window, p.part.orig_size) for p in patches] == [
        ("p__0.5__0___0", (0, 0, 896, 640), (448, 320))
    ]
    size = patches[0].part.resized_size
    box = CoordMap((448, 320), size).to_model([[100, 50, 140, 80]], "hbb")[0].tolist()
    backend = ReplayBackend([",".join(map(str, box)) + " tennis court"])
    result = detect_image(
        backend, png, DOTA_V1_0, spec=TileSpec(512, 128, (0.5,)), box="hbb", image_id="p"
    )
    assert backend.calls[0][0][0].messages[0].text == detection_system_prompt("hbb")
    assert result.class_names == ["tennis-court"]
    assert np.abs(result.quads[0] - hbb_to_quad([200, 100, 280, 160])[0]).max() < 2.5
    files = write_outputs(result, tmp_path / "o", ["geojson", "jsonl"])
    assert set(files) == {"geojson", "jsonl", "raw", "summary"}
    geo = json.loads(files["geojson"].read_text())
    assert "crs" not in geo and geo["properties"]["coordinates"] == "pixel"
    ring = np.asarray(geo["features"][0]["geometry"]["coordinates"][0])
    assert quad_iou_matrix(ring[None, :4], result.quads[:1])[0, 0] > 0.999


def test_resolve_formats_and_bad_options(scene: Path) -> None:
    assert resolve_formats(None) == DETECT_FORMATS == resolve_formats(["all"])
    assert resolve_formats(["geojson", "jsonl,task1"]) == ("jsonl", "task1", "geojson")
    from rscovlm.errors import InputError

    with pytest.raises(InputError, match="unknown output format"):
        resolve_formats(["shapefile"])
    with pytest.raises(InputError, match="batch"):
        detect_image(ReplayBackend([]), scene, DOTA_V1_0, batch=0)
    with pytest.raises(InputError, match="not found"):
        detect_image(ReplayBackend([]), scene.with_name("missing.tif"), DOTA_V1_0)


def test_tiny_model_end_to_end(tiny_lm: Any, tmp_path: Path) -> None:
    from rscovlm.model.backends import GenerationParams
    from rscovlm.model.backends.hf import HFBackend

    tif = _write_tif(tmp_path / "small.tif", 400, 224)
    backend = HFBackend(tiny_lm, batch_size=2)
    result = detect_image(
        backend,
        tif,
        DOTA_V1_0,
        spec=TileSpec(224, 32),
        batch=2,
        params=GenerationParams(max_new_tokens=12),
    )
    c = result.counts()
    assert c["n_patches"] == c["n_outputs"] == 2 and c["n_failed_patches"] == 0
    assert c["n_objects"] == c["n_unknown_label"] + c["n_degenerate"] + c["n_before_nms"]
    assert c["n_before_nms"] == c["n_kept"] + c["n_suppressed"]
    files = write_outputs(result, tmp_path / "out")
    for name in (*DETECT_FORMATS, "raw", "summary"):
        assert files[name].exists()
    assert len(files["raw"].read_text().splitlines()) == 2
    assert len(files["jsonl"].read_text().splitlines()) == c["n_kept"]


def test_cli_detect(
    tiny_checkpoint: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tif = _write_tif(tmp_path / "cli.tif", 300, 224, crs=None)
    out = tmp_path / "out"
    args = ["detect", "--model", str(tiny_checkpoint("qwen2_5_vl")), "--classes", "dota1.0"]
    args += ["--out", str(out), "--patch", "224", "--gap", "32", "--max-new-tokens", "6"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--image", str(tif), "--format", "jsonl", "--format", "geojson"])
    assert done.value.code in (0, None)
    assert (out / "predictions.jsonl").exists() and (out / "detections.geojson").exists()
    assert not (out / "coco.json").exists() and (out / "summary.json").exists()
    assert "boxes written to" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main([*args, "--image", str(tmp_path / "nope.tif")])
    assert bad.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rscovlm: error:") and "nope.tif" in err[0]
    with pytest.raises(SystemExit) as bad:
        main([*args, "--image", str(tif), "--backend", "openai"])
    err = capsys.readouterr().err.strip().splitlines()
    assert bad.value.code == 2 and len(err) == 1 and "--base-url" in err[0]
    for extra in (["--format", "shapefile"], ["--box", "obb"]):  # typed choices: usage errors
        with pytest.raises(SystemExit) as bad:
            main([*args, "--image", str(tif), *extra])
        err = capsys.readouterr().err
        assert bad.value.code == 2 and f"Invalid value for '{extra[0]}'" in err


def test_unreadable_patch_is_reported_and_skipped(
    scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rscovlm.pipelines.detect as detect_mod
    from rscovlm.errors import InputError

    def regions(path: Any, windows: Any, sizes: Any) -> Any:
        raise InputError("a tile is corrupt")

    def region(path: Any, window: Any, size: Any) -> Any:
        if window[:2] == (384, 0):
            raise InputError("corrupt block at (384, 0)")
        return read_region(path, window, size)

    monkeypatch.setattr(detect_mod, "read_regions", regions)
    monkeypatch.setattr(detect_mod, "read_region", region)
    script = _script()
    del script["scene__1__384___0"]
    backend = ReplayBackend(script)
    result = detect_image(backend, scene, DOTA_V1_0, spec=SPEC, batch=4)
    assert len(backend.calls) == 1 and len(backend.calls[0][0]) == 3
    failed = [p for p in result.patches if p.error is not None]
    assert [p.name for p in failed] == ["scene__1__384___0"] and "corrupt" in str(failed[0].error)
    c = result.counts()
    assert c["n_patches"] == 4 and c["n_failed_patches"] == 1 and c["n_outputs"] == 3
    assert sorted(result.class_names) == ["plane", "ship"]


# --- one decode, one merge: `rscovlm detect` and `rscovlm eval merge` agree -----------------------

WIDE = [10.0, 0.0, 110.0, 100.0]  # tied with NARROW (both score 1, IoU 0.45): the larger stays
NARROW = [0.0, 0.0, 60.0, 100.0]
WHOLE = [480.0, 200.0, 560.0, 260.0]  # whole in patch (384, 0), cut at x = 512 in patch (0, 0)
CUT = [480.0, 200.0, 512.0, 260.0]


def _tied_script() -> dict[str, list[str]]:
    """Every patch's output; boxes that must lose come FIRST, so input order cannot decide."""
    return {
        "scene__1__0___0": [
            "<think>two planes, one cut</think>\n"
            + "\n".join(
                [
                    _line((0, 0), NARROW, "plane"),
                    _line((0, 0), WIDE, "plane"),
                    _line((0, 0), CUT, "large-vehicle"),
                    _line((0, 0), SHIP, "ship"),
                    "5,5,40,40 airplane thing",
                    "7,7,7,7 ship",
                ]
            )
        ],
        "scene__1__384___0": [
            _line((384, 0), WHOLE, "large vehicle") + "\n" + _line((384, 0), SHIP, "ships")
        ],
        "scene__1__0___128": [_line((0, 128), PLANE, "plane")],
        "scene__1__384___128": ["There are none."],
    }


def _task1_rows(folder: Path) -> list[str]:
    return [
        f"{f.name} {line}"
        for f in sorted(folder.glob("Task1_*.txt"))
        for line in f.read_text().splitlines()
    ]


def test_detect_and_eval_merge_keep_identical_boxes(
    scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = detect_image(ReplayBackend(_tied_script()), scene, DOTA_V1_0, spec=SPEC, batch=2)
    write_outputs(result, tmp_path / "detect", ["task1"])
    counts = result.counts()
    assert counts["n_unknown_label"] == 1 and counts["n_degenerate"] == 1
    assert counts["n_objects"] == counts["n_before_nms"] + 2
    kept = dict(zip(result.class_names, result.quads, strict=True))
    assert sorted(result.class_names) == ["large-vehicle", "plane", "plane", "ship"]
    planes = [q for n, q in zip(result.class_names, result.quads, strict=True) if n == "plane"]
    wanted = [hbb_to_quad(WIDE)[0], hbb_to_quad(PLANE)[0]]
    assert all(min(np.abs(q - w).max() for q in planes) < 1.1 for w in wanted)  # WIDE, not NARROW
    assert np.abs(kept["large-vehicle"] - hbb_to_quad(WHOLE)[0]).max() < 1.1  # the uncut copy

    # The same raw outputs through `rscovlm eval merge` (the CLI, in-process).
    with pytest.raises(SystemExit) as done:
        main(
            ["eval", "merge", "--pred", str(tmp_path / "detect" / "raw_outputs.jsonl"),
             "--pred-format", "vlm", "--out", str(tmp_path / "merged")]
        )  # fmt: skip
    assert done.value.code in (0, None), capsys.readouterr().err
    detect_rows = _task1_rows(tmp_path / "detect" / "task1")
    assert len(detect_rows) == 4
    assert _task1_rows(tmp_path / "merged") == detect_rows  # byte-identical lines

    # Shuffling the lines of the raw outputs changes nothing.
    raw = (tmp_path / "detect" / "raw_outputs.jsonl").read_text().splitlines()
    (tmp_path / "shuffled.jsonl").write_text("\n".join(reversed(raw)) + "\n")
    with pytest.raises(SystemExit):
        main(
            ["eval", "merge", "--pred", str(tmp_path / "shuffled.jsonl"), "--pred-format", "vlm",
             "--out", str(tmp_path / "merged2")]
        )  # fmt: skip
    assert sorted(_task1_rows(tmp_path / "merged2")) == sorted(detect_rows)


# --- GeoJSON per RFC 7946: WGS 84 lon/lat, read back with shapely (and pyproj) ------------------


def _footprint_corners(width: int, height: int) -> np.ndarray:
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)


def test_geojson_is_rfc7946_lonlat_within_the_raster(scene: Path, tmp_path: Path) -> None:
    from shapely.geometry import Polygon, shape

    from rscovlm.imaging import pixel_to_lonlat

    result = detect_image(ReplayBackend(_script()), scene, DOTA_V1_0, spec=SPEC, batch=4)
    files = write_outputs(result, tmp_path / "out", ["geojson"])
    geo = json.loads(files["geojson"].read_text())
    assert "crs" not in geo and geo["properties"]["coordinates"] == "wgs84"
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == len(result.quads) == 3
    info = open_raster(scene)
    footprint = Polygon(pixel_to_lonlat(info, _footprint_corners(*info.size)))
    for feature, quad in zip(geo["features"], result.quads, strict=True):
        poly = shape(feature["geometry"])
        assert poly.is_valid and poly.exterior.is_ccw  # RFC 7946 §3.1.6: exterior rings CCW
        assert poly.within(footprint.buffer(1e-9))
        lon, lat = np.asarray(poly.exterior.coords).T
        # EPSG:32650, easting 500000 is the zone's central meridian 117° E; northing 4e6 m
        # is about 36.1° N: the numbers themselves say lon/lat, in that order.
        assert np.all((lon > 116.99) & (lon < 117.01)) and np.all((lat > 36.0) & (lat < 36.3))
        assert np.array_equal(feature["properties"]["quad"], quad.reshape(-1))


def test_geojson_lonlat_agrees_with_pyproj(scene: Path, tmp_path: Path) -> None:
    """An independent reprojection (pyproj) of the pixel quads gives the written coordinates."""
    pyproj = pytest.importorskip("pyproj")
    from shapely.geometry import Polygon, shape

    result = detect_image(ReplayBackend(_script()), scene, DOTA_V1_0, spec=SPEC, batch=4)
    geo = json.loads(write_outputs(result, tmp_path, ["geojson"])["geojson"].read_text())
    info = open_raster(scene)
    to_lonlat = pyproj.Transformer.from_crs(info.crs, "EPSG:4326", always_xy=True)
    corners = pixel_to_map(info, _footprint_corners(*info.size))
    footprint = Polygon(np.stack(to_lonlat.transform(corners[:, 0], corners[:, 1]), 1))
    for feature, quad in zip(geo["features"], result.quads, strict=True):
        ring = np.asarray(feature["geometry"]["coordinates"][0])[:4]
        xy = pixel_to_map(info, quad)
        expect = np.stack(to_lonlat.transform(xy[:, 0], xy[:, 1]), 1)
        assert np.allclose(ring, expect, atol=1e-9) or np.allclose(ring, expect[::-1], atol=1e-9)
        assert shape(feature["geometry"]).within(footprint.buffer(1e-9))
