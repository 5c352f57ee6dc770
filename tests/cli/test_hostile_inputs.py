"""Hostile files through ``data build``, ``eval det`` and ``train --validate``.

Every file is generated here, in tmp: one per failure of the hostile-input campaign (issue #14)
and the near-misses that already passed. What must hold for each: no traceback (exit 0, or one
line and exit 2), every bad input reported with its reason, the counts add up, nothing outside
the data root opened (an audit hook on ``open``), and memory bounded (``tracemalloc`` peak).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from rscovlm.cli import main
from rscovlm.data.recipe import load_recipe
from rscovlm.errors import InputError
from rscovlm.eval.detection_io import read_ground_truth, read_predictions

# --- the audit hook: every path opened while a test listens -----------------------------------

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed: it records only inside ``_listening``


@pytest.fixture
def opened() -> Iterator[list[str]]:
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    assert "Traceback" not in err and "Traceback" not in out, err
    if code != 0:
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    return int(code or 0), out, err


# --- hostile files --------------------------------------------------------------------------


def _png(path: Path, size: tuple[int, int] = (64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _png_header_claiming(path: Path, width: int, height: int) -> None:
    """A valid PNG signature and IHDR chunk claiming ``width x height``, and no pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    idat = zlib.compress(b"\x00" * 16)  # a few pixels; the header is what lies
    for kind, data in ((b"IDAT", idat), (b"IEND", b"")):
        chunk += struct.pack(">I", len(data)) + kind + data
        chunk += struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)


def _coco(images: list[Any], annotations: list[Any] | None = None) -> str:
    cats = [{"id": 1, "name": "plane"}]
    return json.dumps({"images": images, "annotations": annotations or [], "categories": cats})


GOOD_ANN = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20]}


def _img(i: Any, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": i, "file_name": name, "width": 64, "height": 64, **extra}


def _hostile_tree(base: Path) -> tuple[Path, Path, dict[str, str]]:
    """The data root, a folder outside it, and ``{source name: reason expected}``."""
    root, outside = base / "data", base / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text("10 10 40 10 40 30 10 30 plane 0\n")
    _png(outside / "secret.png")
    c = root / "coco"
    for name in ("a.png", "b.png"):
        _png(c / "images" / name)
    sources: dict[str, str] = {}

    def coco(name: str, text: str | bytes, reason: str) -> None:
        data = text.encode() if isinstance(text, str) else text
        (c / f"{name}.json").write_bytes(data)
        sources[name] = reason

    coco("not_utf8", _coco([_img(1, "a.png")]).encode().replace(b"a.png", b"a\xff.png"), "UTF-8")
    coco("infinity", _coco([_img(1, "a.png")]).replace("64", "Infinity", 1), "whole number")
    coco("list_id", _coco([_img([1], "a.png"), _img(2, "b.png")]), "number or a string")
    coco("deep", '{"images": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper")
    coco("big_int", _coco([_img(int("9" * 400), "a.png")]), "400 digits")
    coco("dup_id", _coco([_img(1, "a.png"), _img(1, "b.png")], [GOOD_ANN]), "duplicate image id")
    coco("escape", _coco([_img(1, "../../../outside/secret.png")]), "escapes the data root")
    coco("python_tag", "!!python/object/apply:os.system ['touch pwned']", "not valid JSON")
    # near-misses: images that are truncated, empty, or claim 50000² in a 40-byte header
    for name, write in (
        ("trunc.png", lambda p: p.write_bytes((c / "images" / "a.png").read_bytes()[:200])),
        ("zero.png", lambda p: p.write_bytes(b"")),
        ("bomb.png", lambda p: _png_header_claiming(p, 50_000, 50_000)),
    ):
        write(c / "images" / name)
    near = [_img(1, "trunc.png"), _img(2, "zero.png"),
            {"id": 3, "file_name": "bomb.png", "width": 50_000, "height": 50_000}]  # fmt: skip
    nan_ann = {"id": 9, "image_id": 4, "category_id": 1, "bbox": [float("nan"), 1, 2, 3]}
    coco("near_miss", _coco([*near, _img(4, "a.png")], [nan_ann]), "too_large")
    # a JSONL source: a good line between deep, huge-number and non-UTF-8 lines
    lines = [
        json.dumps({"image": "a.png", "normal_caption": "the plane", "solution": [1, 2, 30, 40]}),
        "[" * 5000 + "]" * 5000,
        '{"image": "a.png", "normal_caption": "x", "solution": [' + "1" * 400 + ", 2, 3, 4]}",
    ]
    (c / "images" / "ref.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n")
    sources["jsonl"] = "nested deeper"
    # DOTA: a label file and an image that are symlinks out of the root, an undecodable name
    d = root / "dota"
    (d / "labelTxt").mkdir(parents=True)
    _png(d / "images" / "good.png")
    _png(d / "images" / "linked.png")
    (d / "labelTxt" / "good.txt").write_text("10 10 40 10 40 30 10 30 plane 0\n")
    (d / "labelTxt" / "linked.txt").symlink_to(outside / "secret.txt")
    (d / "labelTxt" / "img_linked.txt").write_text("10 10 40 10 40 30 10 30 plane 0\n")
    (d / "images" / "img_linked.png").symlink_to(outside / "secret.png")
    odd = os.fsdecode(b"P\xff01")
    (d / "labelTxt" / f"{odd}.txt").write_text("1 1 9 1 9 9 1 9 plane 0\n")
    _png(d / "images" / f"{odd}.png")
    (d / "labelTxt" / "nan.txt").write_text("1 1 nan 1 9 9 1 9 plane 0\n")
    sources["dota"] = "symlink out of the data root"
    (root / "empty").mkdir()
    return root, outside, sources


def _recipe(base: Path, root: Path, sources: dict[str, str]) -> Path:
    entries: list[dict[str, Any]] = [
        {"name": n, "adapter": "coco", "path": f"coco/{n}.json"}
        for n in sources
        if n not in ("jsonl", "dota")
    ]
    entries += [
        {"name": "jsonl", "adapter": "refgeo", "path": "coco/images/ref.jsonl"},
        {"name": "dota", "adapter": "dota", "path": "dota", "classes": "dota1.0"},
        {"name": "missing", "adapter": "dota", "path": "no/such/folder"},
        {"name": "empty", "adapter": "dota", "path": "empty"},
    ]
    recipe = {"name": "hostile", "root": str(root), "max_pixels": 4096 * 4096, "shard_size": 4}
    path = base / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "sources": entries}))
    return path


def test_hostile_build_reports_everything_and_opens_nothing_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opened: list[str]
) -> None:
    root, outside, sources = _hostile_tree(tmp_path)
    recipe = _recipe(tmp_path, root, sources)
    out = tmp_path / "out"
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "NOTES.md").write_text("mine")  # a foreign file in --out
    opened.clear()  # only what the build opens
    tracemalloc.start()
    try:
        code, stdout, err = _run(["data", "build", str(recipe), "--out", str(out),
                                  "--workers", "0"], capsys)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the missing and the empty source: exit 2, one line naming both; the rest was built
    assert code == 2
    assert "missing: source path 'no/such/folder' does not exist" in err
    assert "empty: no entries found in 'empty'" in err
    assert (out / "shards" / "NOTES.md").read_text() == "mine"
    manifest = json.loads((out / "manifest.json").read_text())
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    for name, entry in manifest["sources"].items():
        assert entry["read"] == entry["kept"] + entry["rejected"], name
        assert entry["rejected"] == sum(1 for r in rejected if r["source"] == name), name
    assert all(r["reason"] for r in rejected)
    for name, reason in sources.items():
        reasons = " | ".join(f"{r['code']}: {r['reason']}" for r in rejected if r["source"] == name)
        assert reason in reasons, f"{name}: {reasons}"
    counts = manifest["sources"]
    assert (counts["dup_id"]["kept"], counts["dup_id"]["rejected"]) == (1, 1)  # 2 images in
    assert counts["list_id"]["kept"] == 1 and counts["jsonl"]["kept"] == 1
    near = {r["id"]: r["code"] for r in rejected if r["source"] == "near_miss"}
    assert near == {
        "near_miss/1": "corrupt_image", "near_miss/2": "unreadable_image",
        "near_miss/3": "too_large", "near_miss/bad_entry_0": "bad_entry",
    }  # fmt: skip
    dota = {r["id"]: r["reason"] for r in rejected if r["source"] == "dota"}
    assert any("P\\xff01" in key for key in dota)  # the undecodable name, reported legibly
    assert counts["dota"]["kept"] == 1
    # nothing outside the root was opened: not the linked label file, not the linked image
    resolved_outside = outside.resolve()
    leaks = [p for p in opened if Path(p).resolve().is_relative_to(resolved_outside)]
    assert leaks == []
    assert peak < 200 << 20, peak  # the 100,000-deep file is refused before parsing
    assert "read " in stdout


def test_follow_symlinks_reads_the_linked_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, _ = _hostile_tree(tmp_path)
    recipe = tmp_path / "dota.yaml"
    src = {"name": "dota", "adapter": "dota", "path": "dota", "classes": "dota1.0"}
    recipe.write_text(yaml.safe_dump({"root": str(root), "sources": [src]}))
    args = ["data", "build", str(recipe), "--out", str(tmp_path / "o"), "--workers", "0"]
    _run(args, capsys)
    before = json.loads((tmp_path / "o" / "manifest.json").read_text())["sources"]["dota"]
    _run([*args, "--follow-symlinks"], capsys)
    after = json.loads((tmp_path / "o" / "manifest.json").read_text())["sources"]["dota"]
    assert after["read"] == before["read"]
    assert after["kept"] == before["kept"] + 2  # the linked label file and the linked image


def test_build_out_pointing_at_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").write_text("not a folder")
    code, _, err = _run(["data", "build", "synthetic_demo", "--root", str(tmp_path), "--out",
                         str(tmp_path / "out"), "--workers", "0"], capsys)  # fmt: skip
    assert code == 2 and "is a file, not a folder" in err


# --- recipes and train configs --------------------------------------------------------------

BOMB = """root: .
sources:
  - name: s
    adapter: synthetic
    options:
      a: &a [x, x, x, x, x, x, x, x, x]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
      i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

RECIPES = [
    ("bomb", BOMB.encode(), "aliases are expanded"),
    ("latin1", "root: .\nsources: [{name: caf\xe9, adapter: dota}]\n".encode("latin-1"), "UTF-8"),
    ("deep", b"root: " + b"[" * 5000 + b"]" * 5000, "nested deeper"),
    ("tag", b"root: !!python/object/apply:os.system ['touch pwned']\nsources: []\n", "tag"),
    ("unknown_option", b"sources: [{name: s, adapter: dior, options: {boxx: hbb}}]\n",
     "boxx: unknown key; did you mean 'box'?"),
    ("wrong_type", b"sources: [{name: s, adapter: synthetic, options: {n: many}}]\n", "options: n"),
    ("bad_literal", b"sources: [{name: s, adapter: dior, options: {box: quad}}]\n", "box"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "reason"), RECIPES, ids=[r[0] for r in RECIPES])
def test_hostile_recipes_are_one_line(
    name: str, content: bytes, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        code, _, err = _run(["data", "build", str(path), "--out", str(tmp_path / "o"),
                             "--validate"], capsys)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and reason in err, err
    assert peak < 64 << 20, peak  # before: the 520-byte alias tree grew to gigabytes
    assert not (tmp_path / "pwned").exists()


def test_near_miss_recipe_with_a_small_alias_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("root: .\nsources:\n  - &s {name: a, adapter: synthetic, options: {n: 2}}\n"
                    "  - {<<: *s, name: b}\n")  # fmt: skip
    recipe, _ = load_recipe(path, check_root=False)
    assert [s.name for s in recipe.sources] == ["a", "b"]


def _train_yaml(tmp_path: Path, **over: Any) -> Path:
    cfg: dict[str, Any] = {
        "model": {"path": "tiny:qwen2_5_vl"},
        "data": {"mixture": {"datasets": ["x"]}, "build_recipe": "synthetic_demo",
                 "built": str(tmp_path / "built")},
        "log": {"output_dir": str(tmp_path / "run")},
    }  # fmt: skip
    for dotted, value in over.items():
        section, key = dotted.split("__")
        cfg.setdefault(section, {})[key] = value
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


TRAIN_CASES = [
    ("lr_inf", {"optim__lr": float("inf")}, "optim.lr: Input should be a finite number"),
    ("lr_nan", {"optim__max_grad_norm": float("nan")}, "finite number"),
    ("max_steps_bool", {"train__max_steps": True}, "max_steps: expected a number, got true"),
    ("model_missing", {"model__path": "/no/such/checkpoint"}, "model.path '/no/such/checkpoint'"),
    ("built_missing", {"data__build_recipe": None}, "holds no manifest.json"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "over", "reason"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_validate_checks_values_and_paths(
    name: str,
    over: dict[str, Any],
    reason: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(["train", str(_train_yaml(tmp_path, **over)), "--validate"], capsys)
    assert code == 2 and reason in err, err


def test_train_validate_near_miss_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _train_yaml(tmp_path, optim__lr="1e-5", train__max_steps=3)  # YAML reads 1e-5 as text
    assert _run(["train", str(path), "--validate"], capsys)[0] == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"model: {path: caf\xe9}\n", "UTF-8"), (b"model: " + b"{a: " * 5000, "nested deeper")],
)
def test_hostile_train_configs_are_one_line(
    content: bytes, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(content)
    code, _, err = _run(["train", str(path), "--validate"], capsys)
    assert code == 2 and reason in err, err


# --- eval det ---------------------------------------------------------------------------------


def _write_eval_inputs(tmp_path: Path) -> tuple[Path, Path]:
    images = [_img(1, "A.png"), _img(1, "B.png"), _img(2, "C.png")]  # A and B share an id
    anns = [{**GOOD_ANN, "id": k, "image_id": i, "bbox": [4 + k, 4, 20, 20]}
            for k, i in ((1, 1), (2, 2))]  # fmt: skip
    gt = tmp_path / "gt.json"
    gt.write_text(_coco(images, anns))
    perfect = [
        {"image_id": "A", "class": "plane", "hbb": [5, 4, 25, 24], "score": 0.9},
        {"image_id": "C", "class": "plane", "hbb": [6, 4, 26, 24], "score": 0.8},
    ]
    pred = tmp_path / "pred.jsonl"
    hostile = [
        '{"image_id": "A", "class": "plane", "hbb": [' + "1" * 400 + ", 0, 1, 1]}",
        '{"image_id": "A", "class": "plane", "hbb": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"image_id": "A", "class": "plane", "hbb": [NaN, 0, 1, 1]}',
        '{"image_id": [1], "class": "plane", "hbb": [0, 0, 1, 1]}',
    ]
    text = "\n".join([*(json.dumps(p) for p in perfect), *hostile]) + "\n"
    pred.write_bytes(text.encode() + b'{"image_id": "\xff"}\n')
    return gt, pred


def test_hostile_eval_inputs_are_counted_and_scored(tmp_path: Path) -> None:
    gt_path, pred_path = _write_eval_inputs(tmp_path)
    gt = read_ground_truth(gt_path)
    assert gt.report.n_bad == 1 and "duplicate image id 1" in gt.report.bad_examples[0]
    pred = read_predictions(pred_path, "jsonl", gt.classes)
    reasons = " | ".join(pred.report.bad_examples)
    for expected in ("400 digits", "nested deeper", "4 finite numbers", "UTF-8"):
        assert expected in reasons, reasons
    assert pred.report.n_bad == 4 and pred.report.n_boxes == 3


def test_hostile_eval_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, pred = _write_eval_inputs(tmp_path)
    args = ["eval", "det", "--gt", str(gt), "--pred", str(pred), "--pred-format", "jsonl"]
    code, _, _ = _run([*args, "--out", str(tmp_path / "scores")], capsys)
    assert code == 0
    result = json.loads((tmp_path / "scores" / "results.json").read_text())
    assert result["mAP"] == pytest.approx(1.0)  # before: A's boxes were B's, AP 0.0
    (tmp_path / "file").write_text("")
    code, _, err = _run([*args, "--out", str(tmp_path / "file")], capsys)
    assert code == 2 and "is a file" in err


def test_coco_reader_refuses_hostile_files_with_input_error(tmp_path: Path) -> None:
    from rscovlm.data.sources.coco import read_coco_detection

    for content in (b"\xff{}", b"[" * 100_000, b'{"images": [' + b"1" * 400 + b"]}"):
        path = tmp_path / "x.json"
        path.write_bytes(content)
        with pytest.raises(InputError):
            read_coco_detection(path)
