"""Seeded procedural aerial-like scenes: the embedded dataset of demos and tests.

:func:`generate_scenes` draws small scenes (textured ground, roads, objects of several DOTA-v1.0
classes as oriented shapes of distinct size and colour) and writes them in real layouts, so they
travel through the real adapters::

    <out>/images/syn_00000.png          DOTA layout (class list ``dota1.0``)
    <out>/labelTxt/syn_00000.txt        ``imagesource:synthetic`` and ``gsd`` headers, quads
    <out>/vqa.jsonl                     LRS-VQA training layout: count / colour / position
                                        questions with their evidence boxes in ``bbox_info``
    <out>/scenes/<scene>/syn_00000.png  class-per-folder layout of the scene label (hard links)

:func:`write_colour_scenes` writes a second, simpler scene set in the class-per-folder layout
(``<out>/<class>/<class>_000.png``, read by the ``scene_folder`` adapter): flat colour/texture
fields of four classes that stay apart at 56–112 px, where the scene labels above (told apart by
small objects) are not separable by a tiny model trained for seconds.

:func:`~rscovlm.data.sources.synthetic_raster.write_large_geotiff` writes one huge tiled,
compressed GeoTIFF with a CRS, window by window (never held whole in memory), with a few small
targets and a ``zoom_vqa.jsonl`` beside it (one crop box per question): the input of the
Zoom-in Chain demo.

Every random draw comes from ``numpy.random.default_rng([seed, index])``, so scene ``i`` is the
same whatever the number of scenes, on every machine.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from rscovlm.data.record import Record
from rscovlm.data.sources._common import Item
from rscovlm.data.sources._synthetic_draw import (
    COLOURS,
    ground_field,
    object_polygons,
    position_name,
)
from rscovlm.data.sources.dota import iter_dota_records
from rscovlm.data.sources.lrs_vqa import iter_lrs_vqa_records
from rscovlm.data.sources.scene_folder import iter_scene_folder_records
from rscovlm.geometry import obb_to_quad, quad_to_hbb

__all__ = [
    "BOX_CLASSES",
    "COLOUR_CLASSES",
    "SCENE_CLASSES",
    "SyntheticObject",
    "SyntheticScene",
    "generate_scenes",
    "iter_synthetic_records",
    "write_box_scenes",
    "write_colour_scenes",
]

#: Scene classes and, for each, the object classes drawn with their (min, max) counts.
SCENE_CLASSES: dict[str, dict[str, tuple[int, int]]] = {
    "airport": {"plane": (2, 4), "large-vehicle": (0, 2)},
    "parking_lot": {"small-vehicle": (5, 10), "large-vehicle": (1, 3)},
    "industrial_area": {"storage-tank": (3, 6), "large-vehicle": (1, 2)},
    "sports_ground": {"tennis-court": (1, 2), "swimming-pool": (1, 2), "small-vehicle": (0, 3)},
}
#: Object size ``(long side, short side)`` in pixels at scale 1.
_SIZES = {
    "small-vehicle": (16, 8),
    "large-vehicle": (36, 12),
    "plane": (64, 60),
    "storage-tank": (36, 36),
    "tennis-court": (72, 36),
    "swimming-pool": (44, 24),
}
_FIXED_COLOUR = {
    "plane": "white",
    "storage-tank": "white",
    "tennis-court": "green",
    "swimming-pool": "blue",
}


@dataclass
class SyntheticObject:
    """One drawn object: class, ``(4, 2)`` quad in pixels, colour name."""

    class_name: str
    quad: NDArray[np.float64]
    colour: str


@dataclass
class SyntheticScene:
    """One generated scene: its id, scene label, size and objects."""

    id: str
    scene: str
    size: int
    objects: list[SyntheticObject] = field(default_factory=list)


def _place(rng: np.random.Generator, scene: str, size: int) -> list[SyntheticObject]:
    objects: list[SyntheticObject] = []
    boxes: list[NDArray[np.float64]] = []
    scale = size / 512
    for class_name, (lo, hi) in SCENE_CLASSES[scene].items():
        for _ in range(int(rng.integers(lo, hi + 1))):
            jitter = rng.uniform(0.9, 1.15, 2)
            if class_name == "storage-tank":
                jitter[1] = jitter[0]  # round tanks
            long_side, short_side = (
                s * scale * j for s, j in zip(_SIZES[class_name], jitter, strict=True)
            )
            angle = 0.0 if class_name == "storage-tank" else float(rng.uniform(-90, 90))
            for _try in range(30):
                cx, cy = rng.uniform(0.1 * size, 0.9 * size, 2)
                quad = obb_to_quad([[cx, cy, long_side, short_side, angle]])[0]
                hbb = quad_to_hbb(quad)[0]
                if all(_apart(hbb, other) for other in boxes):
                    colour = _FIXED_COLOUR.get(class_name) or str(rng.choice(list(COLOURS)[:4]))
                    objects.append(SyntheticObject(class_name, quad, colour))
                    boxes.append(hbb)
                    break
    return objects


def _apart(a: NDArray[np.float64], b: NDArray[np.float64], margin: float = 4.0) -> bool:
    return bool(
        a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1]
    )


def _draw_scene(rng: np.random.Generator, scene: SyntheticScene) -> Image.Image:
    size = scene.size
    tone = {"airport": (150, 150, 140), "parking_lot": (120, 125, 120)}.get(
        scene.scene, (95, 125, 80)
    )
    pixels = ground_field(rng, size, size, tone)
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 3))):
        width = int(rng.integers(10, 18) * size / 512)
        pos = int(rng.integers(0, size))
        line = [(0, pos), (size, pos)] if rng.random() < 0.5 else [(pos, 0), (pos, size)]
        draw.line(line, fill=(88, 88, 92), width=max(width, 2))
    for obj in scene.objects:
        for polygon, colour in object_polygons(obj.class_name, obj.quad, obj.colour):
            draw.polygon([tuple(p) for p in polygon.tolist()], fill=colour)
    return img


def _questions(scene: SyntheticScene, image: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    by_class: dict[str, list[SyntheticObject]] = {}
    for obj in scene.objects:
        by_class.setdefault(obj.class_name, []).append(obj)

    def add(category: str, question: str, answer: str, objs: list[SyntheticObject]) -> None:
        hbbs = [[round(float(v), 1) for v in quad_to_hbb(o.quad)[0]] for o in objs]
        rboxes = [[round(float(v), 1) for v in o.quad.reshape(-1)] for o in objs]
        out.append(
            {
                "question_id": f"{scene.id}_q{len(out)}",
                "image": image,
                "image_size": [scene.size, scene.size],
                "category": category,
                "question": question,
                "answer": answer,
                "bbox_info": {"crop_hbox": hbbs, "rbox": rboxes},
            }
        )

    for class_name in sorted(SCENE_CLASSES[scene.scene]):
        objs = by_class.get(class_name, [])
        label = class_name.replace("-", " ")
        add("count", f"How many {label}s are there in the image?", str(len(objs)), objs)
        if len(objs) == 1:
            where = position_name(objs[0].quad.mean(axis=0), scene.size, scene.size)
            add("position", f"Where is the {label} located in the image?", where, objs)
        if objs and class_name.endswith("vehicle"):
            corner = min(objs, key=lambda o: float(np.hypot(*o.quad.mean(axis=0))))
            question = f"What color is the {label} closest to the top-left corner?"
            add("object color", question, corner.colour, [corner])
    return out


def generate_scenes(
    out_dir: str | Path, n: int = 8, size: int = 512, seed: int = 0
) -> list[SyntheticScene]:
    """Write ``n`` seeded scenes of ``size``² pixels in DOTA layout plus ``vqa.jsonl``.

    Returns:
        The scenes with their objects (quads in pixels), in id order.
    """
    out = Path(out_dir)
    for sub in ("images", "labelTxt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    scene_names = list(SCENE_CLASSES)
    scenes: list[SyntheticScene] = []
    questions: list[dict[str, object]] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        scene = SyntheticScene(
            f"syn_{i:05d}", scene_names[int(rng.integers(len(scene_names)))], size
        )
        scene.objects = _place(rng, scene.scene, size)
        img_path = out / "images" / f"{scene.id}.png"
        _draw_scene(rng, scene).save(img_path)
        lines = ["imagesource:synthetic", f"gsd:{0.3 * 512 / size:.6f}"]
        for obj in scene.objects:
            coords = " ".join(f"{v:.1f}" for v in obj.quad.reshape(-1))
            lines.append(f"{coords} {obj.class_name} 0")
        (out / "labelTxt" / f"{scene.id}.txt").write_text("\n".join(lines) + "\n")
        link = out / "scenes" / scene.scene / img_path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        try:
            os.link(img_path, link)
        except OSError:
            shutil.copyfile(img_path, link)
        questions += _questions(scene, f"images/{img_path.name}")
        scenes.append(scene)
    with (out / "vqa.jsonl").open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q) + "\n")
    return scenes


def iter_synthetic_records(
    root: str | Path,
    path: str = "synthetic",
    *,
    source: str = "synthetic",
    split: str | None = None,
    n: int = 8,
    size: int = 512,
    seed: int = 0,
) -> Iterator[Item]:
    """Generate the scenes under ``root / path`` if absent, then read them back.

    Yields, through the real adapters: one detection record per scene (DOTA layout), one VQA
    record per question (LRS-VQA layout) and one classification record per scene (class-per-
    folder layout). The folder is (re)generated when its ``synthetic.json`` stamp does not match
    ``(n, size, seed)``.
    """
    root = Path(root)
    base = root / path
    stamp = {"n": n, "size": size, "seed": seed}
    stamp_file = base / "synthetic.json"
    if not stamp_file.is_file() or json.loads(stamp_file.read_text()) != stamp:
        generate_scenes(base, n=n, size=size, seed=seed)
        stamp_file.write_text(json.dumps(stamp))
    split = split or "train"
    yield from iter_dota_records(root, path, source=source, split=split)
    for item in iter_lrs_vqa_records(root, f"{path}/vqa.jsonl", source=source, split=split):
        if isinstance(item, Record):
            item.id = f"vqa/{item.id}"
        yield item
    for item in iter_scene_folder_records(root, f"{path}/scenes", source=source):
        if isinstance(item, Record):
            item.id = f"scene/{item.id}"
            item.split = split
        yield item


#: Colour/texture scene classes: base RGB and texture kind. Hue, brightness and texture all
#: differ, so the classes stay apart at 56–112 px; the names are single Qwen2 tokens.
COLOUR_CLASSES: dict[str, tuple[tuple[int, int, int], str]] = {
    "forest": ((22, 62, 26), "blobs"),  # dark green, mottled
    "lake": ((40, 105, 205), "smooth"),  # mid blue, flat
    "sand": ((236, 214, 158), "grain"),  # bright yellow, grainy
    "urban": ((150, 150, 156), "grid"),  # light grey, street grid
}


def write_colour_scenes(out: str | Path, per_class: int, seed: int) -> list[Path]:
    """Write ``out/<class>/<class>_<k>.png``: ``per_class`` seeded colour/texture scenes of
    64–160 px for each class of :data:`COLOUR_CLASSES`.

    Image ``k`` of class ``c`` draws from ``numpy.random.default_rng([seed, c, k])``, so it is
    the same whatever ``per_class``.

    Returns:
        The written files, class by class.
    """
    written: list[Path] = []
    for c, (name, (rgb, texture)) in enumerate(COLOUR_CLASSES.items()):
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            rng = np.random.default_rng([seed, c, k])
            h, w = (int(v) for v in rng.integers(64, 161, 2))
            base = np.array(rgb, dtype=np.float32) + rng.uniform(-18, 18, 3)
            img = np.broadcast_to(base, (h, w, 3)).copy()
            if texture == "grain":
                img += rng.normal(0, 14, (h, w, 1))
            elif texture == "blobs":
                coarse = rng.uniform(-35, 35, (h // 16 + 2, w // 16 + 2, 1))
                img += np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
            elif texture == "grid":
                img[:: int(rng.integers(12, 20)), :] = 60
                img[:, :: int(rng.integers(12, 20))] = 60
            img += rng.normal(0, 4, (h, w, 1))
            path = folder / f"{name}_{k:03d}.png"
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
            written.append(path)
    return written


def _ramp(size: int, amplitude: float) -> np.ndarray:
    """``(size, size, 2)`` offsets: x from ``-amplitude`` to ``+amplitude`` in channel 0, y
    in channel 1 (pixel centres)."""
    t = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1) * amplitude
    return np.stack(np.broadcast_arrays(t[None, :], t[:, None]), axis=-1)


#: Object classes of :func:`write_box_scenes` and their fill colours: two classes far apart in
#: colour, both bright on the dark field.
BOX_CLASSES: dict[str, tuple[int, int, int]] = {
    "storage-tank": (205, 205, 200),  # light grey (room for the position ramp below 255)
    "swimming-pool": (40, 110, 235),  # blue
}


POSITION_RAMP = 40.0
"""Amplitude (0-255 levels) of the position ramp of :func:`write_box_scenes`: red rises from
``-a`` to ``+a`` left to right, green top to bottom, over the field and the object alike."""


def write_box_scenes(
    out: str | Path,
    n: int,
    size: int,
    seed: int,
    cell: int = 28,
    ramp: float | None = None,
) -> list[Path]:
    """Write ``n`` seeded detection scenes in DOTA layout (``images/``, ``labelTxt/``): one
    axis-aligned, high-contrast object of :data:`BOX_CLASSES` on a dark noisy field, its edges
    on a ``cell``-px grid (28: Qwen2.5-VL's merged visual token), 1-3 cells on each side, clipped
    to the image.

    Why a second scene set: the aerial scenes above put 5-15 objects of a few pixels into each
    image, which a tiny model trained for a minute cannot localise at all (mAP_nc 0.000 and an
    answer of commas). One big object of two classes is a detection task it can learn within the
    demo's budget (edges on the token grid: each cell is all object or all ground, so the
    coordinates are few values that the visual tokens carry directly), so the demo shows a
    detector that learned, through the same adapters,
    prompt, parser and protocol as real data. Scene ``i`` draws from
    ``numpy.random.default_rng([seed, 31, i])``, whatever ``n``.

    Why the position ramp (``ramp`` levels, default :data:`POSITION_RAMP`; 0: none): Qwen2.5-VL
    has no absolute position embedding. Its vision tower sees only relative 2-D rotary
    positions, and the LLM's M-RoPE gives image rows and columns the lowest frequencies of each
    head, so a tiny random model trained for a few hundred steps answers one box for every
    image (mAP_nc 0.000). A faint ramp — red with x, green with y, like the graticule of a map
    — puts each visual token's place into what it sees, so the coordinates can be read off
    the object's own tokens.

    Returns:
        The written image files.
    """
    out = Path(out)
    for sub in ("images", "labelTxt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    names = list(BOX_CLASSES)
    written: list[Path] = []
    for i in range(n):
        rng = np.random.default_rng([seed, 31, i])
        name = names[int(rng.integers(len(names)))]
        rgb = BOX_CLASSES[name]
        cells = size // cell
        # start and extent (1-3 cells) on each axis, on the grid of the merged visual tokens
        (xa, xb), (ya, yb) = (
            (start * cell, min(start + extent, cells) * cell)
            for start, extent in rng.integers([0, 1], [cells, 4], (2, 2))
        )
        base = np.array([45, 60, 40], dtype=np.float32) + rng.uniform(-10, 10, 3)
        img = np.broadcast_to(base, (size, size, 3)).copy() + rng.normal(0, 6, (size, size, 1))
        img[ya:yb, xa:xb] = np.array(rgb, dtype=np.float32)
        img[..., :2] += _ramp(size, POSITION_RAMP if ramp is None else ramp)
        path = out / "images" / f"box_{i:05d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
        quad = f"{xa} {ya} {xb} {ya} {xb} {yb} {xa} {yb}"
        (out / "labelTxt" / f"box_{i:05d}.txt").write_text(
            f"imagesource:synthetic\ngsd:0.3\n{quad} {name} 0\n", encoding="utf-8"
        )
        written.append(path)
    return written
