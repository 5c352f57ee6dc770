"""The validated build: bad inputs rejected with specific reasons, counts, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from rscovlm.cli import main
from rscovlm.data.build import build_dataset
from rscovlm.data.recipe import load_recipe
from rscovlm.data.shards import iter_records, read_manifest
from rscovlm.errors import InputError

GOOD_LINE = "10 10 40 10 40 30 10 30 small-vehicle 0\n"


def _png(path: Path, size: tuple[int, int] = (64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _seed_bad_tree(root: Path) -> None:
    dota = root / "dota"
    for name in ("good", "good2", "truncated", "garbage", "huge", "unknown", "nan", "malformed",
                 "outside"):  # fmt: skip
        (dota / "labelTxt").mkdir(parents=True, exist_ok=True)
        (dota / "labelTxt" / f"{name}.txt").write_text("imagesource:test\n" + GOOD_LINE)
        if name not in ("garbage", "huge"):
            _png(dota / "images" / f"{name}.png")
    (dota / "labelTxt" / "missing.txt").write_text(GOOD_LINE)
    data = (dota / "images" / "truncated.png").read_bytes()
    (dota / "images" / "truncated.png").write_bytes(data[: len(data) // 2])
    (dota / "images" / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    _png(dota / "images" / "huge.png", (300, 300))
    (dota / "labelTxt" / "unknown.txt").write_text("1 1 9 1 9 9 1 9 spaceship 0\n")
    (dota / "labelTxt" / "nan.txt").write_text("1 1 nan 1 9 9 1 9 plane 0\n")
    (dota / "labelTxt" / "malformed.txt").write_text(GOOD_LINE + "1 2 3 plane\n")
    (dota / "labelTxt" / "outside.txt").write_text("100 100 120 100 120 120 100 120 plane 0\n")
    ref = root / "ref"
    _png(ref / "a.png")
    lines = [
        {"image": "a.png", "normal_caption": "the car", "solution": [1, 2, 30, 40]},
        {"image": "../../outside.png", "normal_caption": "escape", "solution": [1, 2, 3, 4]},
        {"image": "a.png", "normal_caption": "nan box", "solution": [1, 2, float("nan"), 4]},
        {"image": "a.png", "normal_caption": "   ", "solution": [1, 2, 30, 40]},
        {"image": "a.png", "normal_caption": "wrong size", "solution": [1, 2, 3, 4],
         "image_width": 65, "image_height": 64},
    ]  # fmt: skip
    text = "\n".join(json.dumps(x) for x in lines) + "\n{broken json\n"
    (ref / "rec.jsonl").write_text(text)


EXPECTED = {
    "dota/truncated": "corrupt_image",
    "dota/garbage": "unreadable_image",
    "dota/huge": "too_large",
    "dota/unknown": "unknown_class",
    "dota/nan": "bad_entry",
    "dota/malformed": "bad_entry",
    "dota/outside": "outside_image",
    "dota/missing": "missing_image",
    "ref/rec:2": "escapes_root",
    "ref/rec:3": "bad_entry",
    "ref/rec:4": "empty_text",
    "ref/rec:5": "size_mismatch",
    "ref/rec:6": "bad_entry",
}


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _seed_bad_tree(root)
    recipe = {
        "name": "bad-inputs",
        "root": "data",
        "max_pixels": 200 * 200,
        "shard_size": 3,
        "sources": [
            {"name": "dota", "adapter": "dota", "path": "dota", "classes": "dota1.0"},
            {"name": "ref", "adapter": "refgeo", "path": "ref/rec.jsonl"},
        ],
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "recipe.yaml"


def test_bad_inputs_rejected_with_reasons(seeded: Path, tmp_path: Path) -> None:
    recipe, root = load_recipe(seeded)
    result = build_dataset(recipe, root, tmp_path / "out", workers=2)
    rejected = [
        json.loads(x) for x in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()
    ]
    assert {r["id"]: r["code"] for r in rejected} == EXPECTED
    assert all(r["source_file"] and r["reason"] for r in rejected)
    by_id = {r["id"]: r for r in rejected}
    assert "line 2" in by_id["dota/malformed"]["reason"]
    assert "non-finite" in by_id["dota/nan"]["reason"]
    assert by_id["dota/nan"]["source_file"] == "dota/labelTxt/nan.txt"
    assert "spaceship" in by_id["dota/unknown"]["reason"]
    kept = {r.uid: r for r in iter_records(tmp_path / "out")}
    assert set(kept) == {"dota/good", "dota/good2", "ref/rec:1"}
    assert (
        kept["dota/good"].images[0].width == 64 and kept["dota/good"].meta["imagesource"] == "test"
    )
    manifest = result.manifest
    for name, entry in manifest["sources"].items():
        assert entry["read"] == entry["kept"] + entry["rejected"], name
    assert manifest["sources"]["dota"]["read"] == 10 and manifest["sources"]["ref"]["read"] == 6
    assert manifest["sources"]["dota"]["classes"] == {"small-vehicle": 2}
    assert manifest["recipe"]["name"] == "bad-inputs" and manifest["code_version"]["rscovlm"]


def test_resume_skips_finished_shards(seeded: Path, tmp_path: Path) -> None:
    recipe, root = load_recipe(seeded)
    out = tmp_path / "out"
    first = build_dataset(recipe, root, out, workers=0)
    again = build_dataset(recipe, root, out, workers=0)
    assert first.written == again.skipped == 6 and again.written == 0
    assert again.manifest["totals"] == first.manifest["totals"]
    # Fixing one input re-does only the shard that holds it.
    (root / "dota" / "labelTxt" / "unknown.txt").write_text(GOOD_LINE)
    third = build_dataset(recipe, root, out, workers=0)
    assert third.written == 1 and third.skipped == 5
    assert third.manifest["sources"]["dota"]["kept"] == 3


def test_recipe_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("root: .\nsources:\n  - {name: a, adapter: nope}\n")
    with pytest.raises(InputError, match=r"sources\.0\.adapter: .*unknown adapter 'nope'"):
        load_recipe(tmp_path / "r.yaml")
    (tmp_path / "r.yaml").write_text("root: .\nshards: 3\nsources: [{name: a, adapter: dota}]\n")
    with pytest.raises(InputError, match="shards"):
        load_recipe(tmp_path / "r.yaml")
    with pytest.raises(InputError, match=r"no manifest\.json"):
        read_manifest(tmp_path)


def test_cli_build_stats_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = {"root": "data", "sources": [{"name": "syn", "adapter": "synthetic",
              "options": {"n": 3, "size": 256}}]}  # fmt: skip
    (tmp_path / "data").mkdir()
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "built"
    for argv in (
        ["data", "build", str(tmp_path / "r.yaml"), "--out", str(out), "--workers", "0"],
        ["data", "stats", str(out)],
        ["data", "export", str(out), "--format", "coco", "--out", str(tmp_path / "exported")],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0, capsys.readouterr()
    text = capsys.readouterr().out
    assert "kept" in text and "Records per source" in text and "wrote" in text
    coco = json.loads((tmp_path / "exported" / "coco.json").read_text())
    assert len(coco["images"]) == 3 and coco["annotations"]
    assert {c["name"] for c in coco["categories"]} <= {"plane", "small-vehicle", "large-vehicle",
                                                       "storage-tank", "tennis-court",
                                                       "swimming-pool"}  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(["data", "export", str(out), "--format", "yolo", "--out", str(tmp_path / "x")])
    assert info.value.code == 2


def test_shipped_recipe_roots_at_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 16: the shipped synthetic recipe once generated its scenes inside the package
    import rscovlm

    monkeypatch.chdir(tmp_path)
    _, root = load_recipe("synthetic_demo")
    assert root == tmp_path.resolve()
    _, created = load_recipe("synthetic_demo", root="new/data")  # generated: root is created
    assert created == (tmp_path / "new" / "data").resolve() and created.is_dir()
    package = Path(rscovlm.__file__).resolve().parent
    with pytest.raises(InputError, match="inside the installed rscovlm package"):
        load_recipe("synthetic_demo", root=package / "configs")
    monkeypatch.chdir(package)
    with pytest.raises(InputError, match="inside the installed rscovlm package"):
        load_recipe("synthetic_demo")
    assert not (package / "synthetic").exists()
