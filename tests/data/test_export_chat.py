"""The ms-swift / LLaMA-Factory export renders through ``render`` under a fixed policy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from rscovlm.cli import main
from rscovlm.data.build import build_dataset
from rscovlm.data.export import export_dataset
from rscovlm.data.export_chat import export_chat
from rscovlm.data.loader import load_images
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.recipe import load_recipe
from rscovlm.data.record import QA, Box, Instance, Record, Referring, Turn
from rscovlm.data.render import render
from rscovlm.data.shards import MANIFEST_NAME, SHARD_DIR, iter_records, write_jsonl
from rscovlm.files import atomic_write_text
from rscovlm.formats.boxes import parse_detections
from rscovlm.geometry import obb_to_quad
from rscovlm.resolution import RSCOVLM_BAND, PixelBand, smart_resize

# 140×140 images in a band of exactly 280×280 pixels: every coordinate is scaled by 2, so a value
# truncated before rescaling (x2 = int(x + w)) differs from one truncated only after it.
BAND = PixelBand(280 * 280, 280 * 280)
PLANE = [[90, 90], [120, 95], [115, 125], [85, 120]]
CAR = [10, 20, 50, 60]
SYS_HBB = (
    "As an AI assistant, you specialize in accurate image object detection, delivering "
    "coordinates in plain text format 'x1,y1,x2,y2 object'."
)


def fixed_policy(kind: str) -> RenderPolicy:
    """The export's policy written out: band, no random resize, plain text, one box kind."""
    return RenderPolicy(
        family="qwen2_5_vl",
        defaults={
            "min_pixels": BAND.min_pixels,
            "max_pixels": BAND.max_pixels,
            "random_resize_prob": 0.0,
            "json_prob": 0.0,
            "proxy_prob": 0.0,
            "box_kind": kind,
        },
        tasks={},
    )


def image(root: Path, name: str, size: tuple[int, int], seed: int = 0) -> dict:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(root / name)
    return {"path": name, "width": size[0], "height": size[1]}


def make_built(tmp_path: Path, records: list[Record]) -> Path:
    """A built dataset as ``rscovlm data build`` lays it out (only what the export reads)."""
    built = tmp_path / "built"
    write_jsonl(built / SHARD_DIR / "toy-00000.jsonl", records)
    manifest = {"data_root": str(tmp_path / "data"), "recipe": {"sources": [{"name": "toy"}]}}
    atomic_write_text(built / MANIFEST_NAME, json.dumps(manifest))
    return built


@pytest.fixture
def records(tmp_path: Path) -> list[Record]:
    root = tmp_path / "data"
    det_img = image(root, "det.png", (140, 140))
    zoom_img = image(root, "big.png", (300, 200), seed=1)
    det = Record(
        id="det",
        source="toy",
        task="detection",
        images=[det_img],
        objects=[
            Instance(class_name="small-vehicle", box=Box.from_hbb([10.7, 20.9, 50.6, 61.3])),
            Instance(class_name="plane", box=Box.from_quad(PLANE)),
        ],
        meta={"class_list": "dota1.0"},
    )  # fmt: skip
    ground = Record(
        id="ground",
        source="toy",
        task="grounding",
        images=[det_img],
        referring=[
            Referring(expression="the plane on the right", box=Box.from_quad(PLANE)),
            Referring(expression="the small car", box=Box.from_hbb([10.7, 20.9, 50.6, 61.3])),
        ],
    )  # fmt: skip
    zoom = Record(
        id="zoom",
        source="toy",
        task="vqa",
        images=[zoom_img],
        qa=[QA(question="What color is the roof?", answer="red", category="color")],
        zoom=[Box.from_hbb([40.4, 30.6, 140.2, 90.5])],
    )
    mcq = Record(
        id="mcq",
        source="toy",
        task="vqa",
        images=[det_img],
        qa=[QA(question="Which object?", answer="A", choices=["plane", "ship"])],
    )
    caption = Record(
        id="cap", source="toy", task="caption", images=[det_img], captions=["one", "two", "three"]
    )
    scene = Record(id="scene", source="toy", task="classification", images=[det_img], label="port")
    instruction = Record(
        id="chat",
        source="toy",
        task="instruction",
        images=[det_img],
        conversation=[
            Turn(role="user", text="<image>\nWhat is at <box:0>?", boxes=[Box.from_hbb(CAR)]),
            Turn(role="assistant", text="A car."),
        ],
    )  # fmt: skip
    turns = [Turn(role="user", text="<video> What changed?"), Turn(role="assistant", text="None.")]
    video = instruction.model_copy(
        update={"id": "video", "conversation": turns, "meta": {"video": True}}
    )
    no_classes = det.model_copy(update={"id": "nocls", "meta": {}})
    return [det, ground, zoom, mcq, caption, scene, instruction, video, no_classes]


def export(built: Path, out: Path, kind: str = "hbb") -> tuple[dict[str, int], dict[str, dict]]:
    counts = export_dataset(built, out, "swift", band=BAND, kind=kind)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return counts, {row["id"]: row for row in rows}


@pytest.mark.parametrize("kind", ["hbb", "quad", "obb"])
def test_detection_and_grounding_equal_render(records, tmp_path: Path, kind: str) -> None:
    built = make_built(tmp_path, records)
    _, rows = export(built, tmp_path / "out.jsonl", kind)
    for rec in records[:2]:
        # The grounding record has two expressions: with another generator the export could pick
        # the other one, so compare against whichever it wrote.
        for seed in range(16):
            conv = render(rec, np.random.default_rng(seed), fixed_policy(kind))
            user = conv.messages[1].text
            if user in rows[rec.uid]["messages"][1]["content"]:
                break
        else:
            pytest.fail(f"no render of {rec.uid} asks what the export asks")
        texts = [m.text for m in conv.messages]
        exported = rows[rec.uid]["messages"]
        assert [m["role"] for m in exported] == [m.role for m in conv.messages]
        assert exported[0]["content"] == texts[0] and exported[2]["content"] == texts[2]
        assert exported[1]["content"] == "<image>" + texts[1]
        # The image is written at the size the boxes assume (140² upscaled into the 280² band),
        # with the pixels online training feeds.
        (written,) = rows[rec.uid]["images"]
        assert Path(written).parent == (tmp_path / "out_images").resolve()
        with Image.open(written) as img:
            assert img.size == conv.image_parts()[0].resized_size == (280, 280)
            expected = load_images(conv, tmp_path / "data")[0]
            assert np.array_equal(np.asarray(img), np.asarray(expected))


def test_hbb_line_follows_the_coco_rule(records, tmp_path: Path) -> None:
    _, rows = export(make_built(tmp_path, records), tmp_path / "out.jsonl", "hbb")
    # WIRE §2.2: x1, y1 as read, x2 = int(x + w), y2 = int(y + h), then int(v * 280 / 140).
    x1, y1 = int(10.7 * 2), int(20.9 * 2)
    x2, y2 = int(int(50.6) * 2), int(int(61.3) * 2)
    assert (x1, y1, x2, y2) == (21, 41, 100, 122)  # truncating x1 first would give 20, 40
    plane = f"{85 * 2},{90 * 2},{120 * 2},{125 * 2} plane"  # integer vertices: exact
    messages = rows["toy/det"]["messages"]
    assert messages[0] == {"role": "system", "content": SYS_HBB}
    assert messages[2]["content"] == f"{plane}\n{x1},{y1},{x2},{y2} small vehicle\n"


def test_every_task_exports_and_skips_are_counted(records, tmp_path: Path) -> None:
    counts, rows = export(make_built(tmp_path, records), tmp_path / "out.jsonl")
    assert counts == {
        "records": 9,
        "samples": 7,
        "images": 3,  # det.png (six samples share it), big.png's overview and its crop
        "crops": 1,
        "overlong_rerendered": 0,
        "skipped_detection_invalid": 1,
        "skipped_instruction_video": 1,
    }
    assert set(rows) == {
        f"toy/{k}" for k in ("det", "ground", "zoom", "mcq", "cap", "scene", "chat")
    }
    for row in rows.values():
        text = "".join(m["content"] for m in row["messages"])
        assert text.count("<image>") == len(row["images"]) >= 1
    assert rows["toy/scene"]["messages"][0]["content"].endswith("classes:port.")
    assert rows["toy/chat"]["messages"][0]["content"] == "<image>What is at [20, 40, 100, 120]?"
    assert rows["toy/mcq"]["messages"][0]["content"].startswith("<image>Which object?")


def test_zoom_chain_crop_is_written_beside_the_export(records, tmp_path: Path) -> None:
    _, rows = export(make_built(tmp_path, records), tmp_path / "out.jsonl")
    row = rows["toy/zoom"]
    conv = render(records[2], np.random.default_rng(0), fixed_policy("hbb"))
    expected = [("<image>" if i in (1, 3) else "") + m.text for i, m in enumerate(conv.messages)]
    assert [m["content"] for m in row["messages"]] == expected
    assert row["messages"][0]["role"] == "system"
    overview, crop = row["images"]
    window = conv.image_parts()[1].window
    assert window == (40, 31, 140, 90)  # the region rounded to whole pixels, as PIL crops it
    size = conv.image_parts()[1].resized_size
    assert Path(crop).parent == (tmp_path / "out_images").resolve() and crop.endswith(
        f"_40_31_140_90_{size[0]}x{size[1]}.png"
    )
    # Both at the size the model sees them, cut and resized as online training does.
    loaded = load_images(conv, tmp_path / "data")
    for path, part, expected in zip(row["images"], conv.image_parts(), loaded, strict=True):
        with Image.open(path) as img:
            assert img.size == part.resized_size
            assert np.array_equal(np.asarray(img), np.asarray(expected))
    source = np.asarray(Image.open(tmp_path / "data" / "big.png"))
    native = Image.fromarray(source[31:90, 40:140]).resize(size, Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(Image.open(crop)), np.asarray(native))
    assert overview != crop


def test_exports_are_reproducible(records, tmp_path: Path) -> None:
    built = make_built(tmp_path, records)
    export(built, tmp_path / "a.jsonl")
    export(built, tmp_path / "b.jsonl")
    a = (tmp_path / "a.jsonl").read_text().replace("a_images", "X")
    assert a == (tmp_path / "b.jsonl").read_text().replace("b_images", "X")


def test_cli_exports_llamafactory_with_box_and_seed(records, tmp_path: Path, capsys) -> None:
    built = make_built(tmp_path, records)
    out = tmp_path / "exported"
    argv = ["data", "export", str(built), "--format", "llamafactory", "--out", str(out)]
    argv += ["--min-pixels", str(BAND.min_pixels), "--max-pixels", str(BAND.max_pixels)]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--box", "obb", "--seed", "3"])
    assert info.value.code == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "9 records, 7 samples, 3 images, 1 crops" in printed
    settings = yaml.safe_load((out / "llamafactory.yaml").read_text())
    assert (out / "llamafactory.yaml").read_text() in printed  # the settings, printed as written
    areas = [
        w * h for w, h in (Image.open(p).size for p in (out / "llamafactory_images").iterdir())
    ]
    # The 300×200 overview cannot land inside a 280² band (smart_resize's rounding): the
    # settings hold what was written, not just the band.
    assert settings["image_max_pixels"] == max(areas) > BAND.max_pixels
    assert settings["image_min_pixels"] == BAND.min_pixels <= min(areas)
    assert settings["dataset"] == "llamafactory" and settings["template"] == "qwen2_vl"
    assert settings["cutoff_len"] > 0
    info_file = json.loads((out / "dataset_info.json").read_text())
    assert info_file["llamafactory"]["file_name"] == "llamafactory.jsonl"
    assert (out / "llamafactory.jsonl").is_file()
    assert info_file["llamafactory"]["columns"] == {"messages": "messages", "images": "images"}
    # issue 16: the band the boxes assume travels with the dataset, and is said on screen
    note = info_file["llamafactory"]["rscovlm"]
    assert note["pixel_band"] == [BAND.min_pixels, BAND.max_pixels]
    assert note["family"] == "qwen2_5_vl" and note["image_pixels"] == [min(areas), max(areas)]
    assert f"pixel band {BAND.min_pixels}..{BAND.max_pixels}" in printed
    assert "dataset_info.json under llamafactory.rscovlm" in printed
    with pytest.raises(SystemExit) as info:
        main([*argv, "--box", "poly"])
    assert info.value.code != 0


def test_two_exports_into_one_folder_leave_both_datasets_registered(
    records, tmp_path: Path, capsys
) -> None:
    built = make_built(tmp_path, records)
    out = tmp_path / "exported"
    out.mkdir()
    # Someone else's dataset already registered there.
    (out / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    base = ["data", "export", str(built), "--format", "llamafactory", "--out", str(out)]
    base += ["--min-pixels", str(BAND.min_pixels), "--max-pixels", str(BAND.max_pixels)]
    for name, box in (("toy_quad", "quad"), ("toy_hbb", "hbb")):
        with pytest.raises(SystemExit) as info:
            main([*base, "--name", name, "--box", box])
        assert info.value.code == 0, capsys.readouterr()
    registry = json.loads((out / "dataset_info.json").read_text())
    assert set(registry) == {"mine", "toy_quad", "toy_hbb"}
    assert registry["mine"] == {"file_name": "mine.json"}
    for name in ("toy_quad", "toy_hbb"):
        assert registry[name]["file_name"] == f"{name}.jsonl" and (out / f"{name}.jsonl").is_file()
        assert yaml.safe_load((out / f"{name}.yaml").read_text())["dataset"] == name
    (out / "dataset_info.json").write_text("[1, 2]")
    with pytest.raises(SystemExit) as info:
        main([*base, "--name", "third"])
    assert info.value.code == 2 and "dataset_info.json" in capsys.readouterr().err


def _tokens(conv) -> int:
    """A stand-in length: characters of the chat text plus one per visual token (the tests of
    the real tokenizer's count are in tests/model)."""
    text = "".join(m.text for m in conv.messages)
    return len(text) + sum(p.pad_tokens() for p in conv.image_parts())


def test_overlong_samples_are_dropped_or_rerendered_never_cut(records, tmp_path: Path) -> None:
    built = make_built(tmp_path, records[:1])  # the 140² detection record
    band = PixelBand(28 * 28 * 4, 560 * 560)  # 140² stays 140²: 25 visual tokens
    full = export_chat(built, tmp_path / "f.jsonl", "swift", band=band, kind="hbb", measure=_tokens)
    assert full.longest is not None and full.counts["samples"] == 1
    common = {"band": band, "kind": "hbb", "measure": _tokens, "max_length": full.longest - 1}
    dropped = export_chat(built, tmp_path / "d.jsonl", "swift", overlong="drop", **common)
    rerendered = export_chat(built, tmp_path / "r.jsonl", "swift", overlong="rerender", **common)
    assert dropped.counts["samples"] == 0 and dropped.counts["skipped_detection_overlong"] == 1
    assert rerendered.counts["samples"] == 1 == rerendered.counts["overlong_rerendered"]
    assert rerendered.longest is not None and rerendered.longest < full.longest
    assert f"--max_length {rerendered.longest}" in rerendered.settings_path.read_text()
    row = json.loads((tmp_path / "r.jsonl").read_text())
    (image,) = row["images"]
    with Image.open(image) as img:
        width, height = img.size
    assert width == height < 140  # re-rendered in a lower band ...
    answer = row["messages"][2]["content"]
    boxes = [list(map(int, line.split(" ")[0].split(","))) for line in answer.splitlines()]
    scale = width / 140  # ... and its boxes rewritten for that size (WIRE §2.2)
    assert boxes[1] == [int(10.7 * scale), int(20.9 * scale), int(50 * scale), int(61 * scale)]
    assert dropped.counts["records"] == rerendered.counts["records"] == 1


def test_exported_files_honour_the_umask(records, tmp_path: Path) -> None:
    import os

    built = make_built(tmp_path, records)
    old = os.umask(0o027)
    try:
        export_chat(built, tmp_path / "u.jsonl", "llamafactory", band=BAND)
    finally:
        os.umask(old)
    files = [tmp_path / "u.jsonl", tmp_path / "u.yaml", tmp_path / "dataset_info.json"]
    files += list((tmp_path / "u_images").iterdir())
    assert len(files) == 6
    assert {f.stat().st_mode & 0o777 for f in files} == {0o640}


# The frameworks' documented resize rules, written from their documentation (facts, not their
# code); `make interop` checks the real pipelines.
def _llamafactory_size(width: int, height: int, max_px: int, min_px: int, band: PixelBand):
    """LLaMA-Factory: shrink above image_max_pixels (int() sides), grow below image_min_pixels,
    then the checkpoint processor's smart_resize in its own band."""
    if width * height > max_px:
        f = math.sqrt(max_px / (width * height))
        width, height = int(width * f), int(height * f)
    if width * height < min_px:
        f = math.sqrt(min_px / (width * height))
        width, height = int(width * f), int(height * f)
    h, w = smart_resize(height, width, 28, band.min_pixels, band.max_pixels)
    return w, h


def _swift_size(width: int, height: int, max_px: int, min_px: int):
    """ms-swift (qwen_vl_utils): smart_resize in MAX_PIXELS / MIN_PIXELS."""
    h, w = smart_resize(height, width, 28, min_px, max_px)
    return w, h


STOCK = PixelBand(3136, 12845056)  # the stock Qwen2.5-VL preprocessor_config.json band


def test_framework_resize_rules_feed_the_original_wrong_and_the_export_unchanged(
    real_data: Path, tmp_path: Path
) -> None:
    # The original DOTA P0706 under each framework's defaults (issue 17's figures) ...
    assert RSCOVLM_BAND.resize(1182, 1111) == (1036, 952)
    assert _llamafactory_size(1111, 1182, 768 * 768, 32 * 32, STOCK) == (756, 784)
    assert _llamafactory_size(1111, 1182, RSCOVLM_BAND.max_pixels, 1024, STOCK) == (980, 1036)
    assert _swift_size(1111, 1182, STOCK.max_pixels, STOCK.min_pixels) == (1120, 1176)
    # ... and the exported image, already 952×1036, under the printed settings and ms-swift's
    # defaults, with a stock or an rscovlm checkpoint band.
    recipe = {"root": str(real_data), "sources": [
        {"name": "dota", "adapter": "dota", "path": "dota", "classes": "dota1.0"}]}  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    spec, root = load_recipe(tmp_path / "r.yaml")
    build_dataset(spec, root, tmp_path / "built", workers=0)
    result = export_chat(tmp_path / "built", tmp_path / "lf.jsonl", "llamafactory")
    settings = yaml.safe_load(result.settings)
    sizes = [Image.open(p).size for p in (tmp_path / "lf_images").iterdir()]
    assert (952, 1036) in sizes
    for w, h in sizes:
        lf = settings["image_max_pixels"], settings["image_min_pixels"]
        for band in (STOCK, RSCOVLM_BAND):
            assert _llamafactory_size(w, h, *lf, band) == (w, h)
        assert _swift_size(w, h, STOCK.max_pixels, STOCK.min_pixels) == (w, h)
        assert _swift_size(w, h, RSCOVLM_BAND.max_pixels, RSCOVLM_BAND.min_pixels) == (w, h)


@pytest.mark.parametrize("kind", ["quad", "obb", "hbb"])
def test_real_dota_boxes_stay_inside_the_image(real_data: Path, tmp_path: Path, kind) -> None:
    recipe = {"root": str(real_data), "sources": [
        {"name": "dota", "adapter": "dota", "path": "dota", "classes": "dota1.0"},
        {"name": "dior", "adapter": "dior", "path": "dior", "classes": "dior"}]}  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    spec, root = load_recipe(tmp_path / "r.yaml")
    build_dataset(spec, root, tmp_path / "built", workers=0)
    for rec in iter_records(tmp_path / "built"):
        w, h = rec.images[0].width, rec.images[0].height
        for obj in rec.objects:
            corners = obj.box.quad_array()
            assert (corners >= 0).all() and (corners[:, 0] <= w).all(), (rec.uid, corners)
            assert (corners[:, 1] <= h).all() and obj.box.hbb[2] <= w and obj.box.hbb[3] <= h
    exported = export_chat(tmp_path / "built", tmp_path / "s.jsonl", "swift", kind=kind)
    assert exported.counts["samples"] >= 3
    for line in (tmp_path / "s.jsonl").open():
        row = json.loads(line)
        with Image.open(row["images"][0]) as img:
            width, height = img.size
        parsed = parse_detections(row["messages"][-1]["content"], kind=kind)
        for obj in parsed.objects:
            values = np.asarray(obj.coords, dtype=float)
            pts = obb_to_quad(values[None])[0] if kind == "obb" else values.reshape(-1, 2)
            # OBB text is five truncated values: its corners may move by under a pixel.
            slack = 1.0 if kind == "obb" else 0.0
            assert (pts >= -slack).all() and (pts[:, 0] <= width + slack).all(), (obj, width)
            assert (pts[:, 1] <= height + slack).all(), (obj, height)
