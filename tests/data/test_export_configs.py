"""Exports (COCO, fixed-resolution conversations), shipped recipes, and the data doctests."""

from __future__ import annotations

import doctest
import importlib
import json
import pkgutil
from pathlib import Path

import pytest
import yaml

import rscovlm.data
from rscovlm import configs
from rscovlm.data.build import build_dataset
from rscovlm.data.export import export_dataset
from rscovlm.data.recipe import Recipe, load_recipe
from rscovlm.data.shards import iter_records
from rscovlm.formats.boxes import parse_detections
from rscovlm.resolution import PixelBand

CONFIGS = sorted(configs.shipped("recipe").values())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export")
    (base / "data").mkdir()
    recipe = Recipe.model_validate(yaml.safe_load(CONFIGS[-1].read_text()))
    recipe = recipe.model_copy(
        update={
            "sources": [
                s.model_copy(update={"options": {"n": 4, "size": 256}}) for s in recipe.sources
            ]
        }
    )
    build_dataset(recipe, base / "data", base / "built", workers=0)
    return base / "built"


def test_shipped_recipes_validate(tmp_path: Path) -> None:
    assert [p.name for p in CONFIGS] == ["rs_cotrain_example.yaml", "synthetic_demo.yaml"]
    for path in CONFIGS:
        text = path.read_text()
        assert text.startswith("#") and "rscovlm data build" in text
        recipe, root = load_recipe(path, root=tmp_path)
        assert root == tmp_path.resolve() and recipe.sources


def test_coco_export_round_trips_objects(built: Path, tmp_path: Path) -> None:
    counts = export_dataset(built, tmp_path / "c.json", "coco")
    coco = json.loads((tmp_path / "c.json").read_text())
    det = [r for r in iter_records(built) if r.task == "detection"]
    assert counts == {"images": len(det), "annotations": sum(len(r.objects) for r in det)}
    assert [c["name"] for c in coco["categories"][:2]] == ["plane", "baseball-diamond"]
    first = coco["annotations"][0]
    assert len(first["segmentation"][0]) == 8 and first["area"] > 0


@pytest.mark.parametrize("fmt", ["swift", "llamafactory"])
def test_chat_export_fixed_resolution(built: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"{fmt}.jsonl"
    band = PixelBand(128 * 128, 128 * 128)
    counts = export_dataset(built, out, fmt, band=band, kind="quad")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    # Every task of the build exports now (detection, VQA with zoom chains, scene classes).
    assert counts["samples"] == len(rows) == counts["records"]
    assert not [k for k in counts if k.startswith("skipped_")]
    det = [r for r in rows if r["messages"][0]["content"].startswith("As an AI assistant")]
    assert len(det) == 4
    for row in det:
        assert row["messages"][1]["content"].startswith("<image>find the baseball diamond, ")
        assert Path(row["images"][0]).is_file()
        answer = row["messages"][2]["content"]
        parsed = parse_detections(answer)
        assert answer == "There are none." or all(
            0 <= v <= 140 for o in parsed.objects for v in o.coords
        )  # 256 px scenes resized to 112 px: coordinates are in the resized image
    assert (tmp_path / "dataset_info.json").is_file() == (fmt == "llamafactory")


def _data_modules() -> list[str]:
    return sorted(
        i.name for i in pkgutil.walk_packages(rscovlm.data.__path__, prefix="rscovlm.data.")
    )


@pytest.mark.parametrize("name", _data_modules())
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
