"""DOTA-style tiling of large images into overlapping patches, annotations clipped per patch.

An image is (optionally) rescaled by each ``rate``, then cut into ``size``² windows whose origins
step by ``size - gap`` with the last window flush with the border (as mmrotate's ``img_split``
does; an image smaller than ``size`` gives one smaller patch, never padded). Each object is
clipped to the window with :func:`rscovlm.geometry.clip_quads` and kept when the kept fraction of
its area is ``>= keep_threshold`` (0.7, the DOTA devkit's default); kept objects that lost area
are flagged ``partial`` in the patch records (the labelTxt keeps 0/1 difficult flags).

Patches are named ``<base>__<rate>__<x>___<y>`` (:func:`~rscovlm.data.patches.
format_patch_name`, readable by the DOTA devkit and mmrotate mergers); patch pixel ``p`` is
original pixel ``(p + (x, y)) / rate``. The way back is :func:`rscovlm.data.patches.merge_boxes`,
the one merge of every path. Images above the pixel limit, and every GeoTIFF, are
read window by window with rasterio (:func:`rscovlm.imaging.read_window`); PIL opens only
images within the limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from rscovlm.data.patches import DEFAULT_MERGE_IOU, format_patch_name, merge_boxes, parse_patch_name
from rscovlm.data.record import Box, Instance, Record
from rscovlm.data.sources.dota import iter_dota_records
from rscovlm.errors import InputError
from rscovlm.geometry import as_quads, clip_quads
from rscovlm.imaging import DEFAULT_MAX_PIXELS, image_size, open_image_checked, read_window

__all__ = [
    "TileSpec",
    "merge_patch_objects",
    "plan_windows",
    "split_dota",
    "split_image",
    "window_origins",
]

_WINDOWED_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2")


@dataclass(frozen=True)
class TileSpec:
    """Tiling parameters: patch ``size``, overlap ``gap``, resize ``rates``, keep threshold."""

    size: int = 1024
    gap: int = 200
    rates: tuple[float, ...] = (1.0,)
    keep_threshold: float = 0.7

    def __post_init__(self) -> None:
        if self.size <= 0 or not 0 <= self.gap < self.size:
            raise InputError(
                f"tiling needs size > 0 and 0 <= gap < size, got {self.size}/{self.gap}"
            )
        if not self.rates or any(r <= 0 for r in self.rates):
            raise InputError(f"tiling rates must be positive, got {self.rates}")
        if not 0 < self.keep_threshold <= 1:
            raise InputError(f"keep_threshold must be in (0, 1], got {self.keep_threshold}")


def window_origins(length: int, size: int, step: int) -> list[int]:
    """Origins along one axis: ``0, step, ...`` and a last window flush with the end.

    Examples:
        >>> window_origins(1182, 512, 312)
        [0, 312, 624, 670]
        >>> window_origins(300, 512, 312)
        [0]
    """
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def plan_windows(width: int, height: int, size: int, gap: int) -> list[tuple[int, int, int, int]]:
    """Windows ``(x0, y0, x1, y1)`` covering a ``width × height`` image, row by row."""
    step = size - gap
    return [
        (x, y, min(x + size, width), min(y + size, height))
        for y in window_origins(height, size, step)
        for x in window_origins(width, size, step)
    ]


def _scaled_size(width: int, height: int, rate: float) -> tuple[int, int]:
    return max(1, round(width * rate)), max(1, round(height * rate))


def split_image(
    image_path: str | Path,
    objects: Sequence[Instance],
    out_dir: str | Path,
    base: str,
    spec: TileSpec = TileSpec(),
    *,
    source: str = "dota_split",
    split: str = "train",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Record]:
    """Tile one image and its objects into ``out_dir/images`` and ``out_dir/labelTxt``.

    Args:
        image_path: The image (any PIL format within ``max_pixels``, or a raster rasterio reads).
        objects: Its objects in original pixels.
        out_dir: Output root (DOTA layout).
        base: Base name of the patches (usually the image stem).
        spec: Tiling parameters.
        source: Source name of the returned records.
        split: Split name of the returned records.
        max_pixels: Images above this are read window by window, never decoded whole.

    Returns:
        One detection record per patch (paths relative to ``out_dir``), objects in patch pixels.
    """
    image_path, out = Path(image_path), Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labelTxt").mkdir(parents=True, exist_ok=True)
    width, height = image_size(image_path)
    windowed = width * height > max_pixels or image_path.suffix.lower() in _WINDOWED_SUFFIXES
    whole = None if windowed else open_image_checked(image_path, max_pixels).convert("RGB")
    quads = np.stack([o.box.quad_array() for o in objects]) if objects else np.zeros((0, 4, 2))
    records: list[Record] = []
    for rate in spec.rates:
        sw, sh = _scaled_size(width, height, rate)
        scaled = whole
        if whole is not None and rate != 1.0:
            scaled = whole.resize((sw, sh), Image.Resampling.BICUBIC)
        for x0, y0, x1, y1 in plan_windows(sw, sh, spec.size, spec.gap):
            name = format_patch_name(base, rate, x0, y0)
            if scaled is not None:
                patch = scaled.crop((x0, y0, x1, y1))
            else:
                pixels = read_window(
                    image_path, round(x0 / rate), round(y0 / rate), round((x1 - x0) / rate),
                    round((y1 - y0) / rate), out_size=(x1 - x0, y1 - y0),
                )  # fmt: skip
                patch = Image.fromarray(
                    pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., 0]
                )
            patch.save(out / "images" / f"{name}.png")
            kept = _clip_objects(objects, quads * rate, (x0, y0, x1, y1), spec.keep_threshold)
            _write_labels(out / "labelTxt" / f"{name}.txt", kept)
            records.append(
                Record(
                    id=name,
                    source=source,
                    split=split,
                    task="detection",
                    images=[{"path": f"images/{name}.png", "width": x1 - x0, "height": y1 - y0}],
                    objects=kept,
                    source_file=str(image_path),
                    meta={"patch_of": base, "rate": rate, "x": x0, "y": y0},
                )
            )
    return records


def _clip_objects(
    objects: Sequence[Instance],
    quads: NDArray[np.float64],
    window: tuple[int, int, int, int],
    threshold: float,
) -> list[Instance]:
    if not len(objects):
        return []
    clipped, frac = clip_quads(quads, window)
    offset = np.array(window[:2], dtype=np.float64)
    out = []
    for obj, quad, f in zip(objects, clipped, frac, strict=True):
        if f >= threshold:
            out.append(
                Instance(
                    class_name=obj.class_name,
                    box=Box.from_quad(quad - offset),
                    difficult=obj.difficult,
                    partial=bool(f < 1.0 - 1e-9) or obj.partial,
                )
            )
    return out


def _write_labels(path: Path, objects: Iterable[Instance]) -> None:
    lines = []
    for obj in objects:
        coords = " ".join(f"{v:.1f}" for v in obj.box.quad_array().reshape(-1))
        lines.append(f"{coords} {obj.class_name} {int(obj.difficult)}")
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def split_dota(
    src_dir: str | Path,
    out_dir: str | Path,
    spec: TileSpec = TileSpec(),
    *,
    source: str = "dota_split",
    split: str = "train",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Record]:
    """Tile every image of a DOTA-layout folder (``images/`` + ``labelTxt/``) into ``out_dir``.

    Label files that cannot be read are skipped, and images that cannot be opened raise
    :class:`InputError` naming the file; run the build on ``out_dir`` to validate the patches.

    Returns:
        The patch records (also written as DOTA layout under ``out_dir``).
    """
    src = Path(src_dir)
    records: list[Record] = []
    for item in iter_dota_records(src, "", source=source, split=split):
        if not isinstance(item, Record):
            continue
        image = src / item.images[0].path
        records += split_image(
            image, item.objects, out_dir, item.id, spec,
            source=source, split=split, max_pixels=max_pixels,
        )  # fmt: skip
    return records


def merge_patch_objects(
    patches: Iterable[tuple[str, NDArray[np.float64], Sequence[str], NDArray[np.float64]]],
    iou_threshold: float = DEFAULT_MERGE_IOU,
) -> dict[str, tuple[NDArray[np.float64], list[str], NDArray[np.float64]]]:
    """Map per-patch detections back to their images and merge them
    (:func:`rscovlm.data.patches.merge_boxes`, the merge of ``rscovlm detect`` and ``eval
    merge``).

    Args:
        patches: ``(patch name, quads (N, 4, 2) patch pixels, class names, scores (N,))``.
        iou_threshold: Same-class boxes overlapping more than this are merged (DOTA devkit's
            merge uses 0.1).

    Returns:
        Per base image: ``(quads (M, 4, 2) original pixels, class names, scores)`` in the
        merge's canonical order.

    Raises:
        InputError: A patch name is not of the ``base__rate__x___y`` form.
    """
    bases: dict[str, int] = {}
    quads: list[NDArray[np.float64]] = []
    names: list[str] = []
    scores: list[float] = []
    image: list[int] = []
    for name, boxes, classes, values in patches:
        origin = parse_patch_name(name)
        if origin is None:
            raise InputError(f"{name!r} is not a patch name (base__rate__x___y)")
        q = origin.to_original(as_quads(boxes))
        quads.append(q)
        names += list(classes)
        scores += [float(v) for v in np.asarray(values).reshape(-1)]
        image += [bases.setdefault(origin.base, len(bases))] * len(q)
    all_quads = np.concatenate(quads) if quads else np.zeros((0, 4, 2))
    label_ids = {c: i for i, c in enumerate(sorted(set(names)))}
    labels = np.asarray([label_ids[c] for c in names], dtype=np.int64)
    img = np.asarray(image, dtype=np.int64)
    score = np.asarray(scores, dtype=np.float64)
    keep = merge_boxes(all_quads, labels, score, iou_threshold, image=img)
    merged = {}
    for base, i in bases.items():
        rows = keep[img[keep] == i]
        merged[base] = (all_quads[rows], [names[k] for k in rows.tolist()], score[rows])
    return merged
