"""Validation of one record before it is written to a shard.

:func:`validate_record` checks, in this order, and stops at the first failure:

1. every image path stays inside the data root (``escapes_root``; checked on the resolved path,
   so a symlink out of the root is refused unless the build follows symlinks), exists
   (``missing_image``),
   has a readable header (``unreadable_image``), is within the pixel limit (``too_large``),
   decodes (``corrupt_image``: truncated or damaged files) and has the size the annotation
   states, if it states one (``size_mismatch``); unknown sizes are filled in from the header;
2. every box has finite coordinates (``bad_box``) and a positive extent, and keeps some area
   inside the image; boxes partly outside are clipped to it (``outside_image`` when nothing is
   left);
3. every object class is in the source's class list, compared by normalised label text
   (``unknown_class``);
4. every text field is non-empty (``empty_text``) and the record has the target its task needs
   (``no_target``).

Each failure is a :class:`Rejection` with a short ``code`` and a ``reason`` naming the detail.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rscovlm.data.record import Box, Record
from rscovlm.errors import InputError
from rscovlm.formats.classes import normalize_label
from rscovlm.geometry import clip_hbb, clip_quads, quad_to_hbb
from rscovlm.imaging import image_size, verify_image
from rscovlm.safe_read import check_inside, printable

__all__ = ["DECODE_PIXELS", "Rejection", "check_image", "validate_record"]

#: Images up to this many pixels are decoded whole to check them; larger ones (still within the
#: pixel limit) are checked by decoding their first and last window with rasterio.
DECODE_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class Rejection:
    """Why a record was rejected: a short machine code and a human reason."""

    code: str
    reason: str


@lru_cache(maxsize=512)
def check_image(
    path: str, root: str, max_pixels: int, follow_symlinks: bool = False
) -> tuple[int, int] | Rejection:
    """Check one image file (cached per process: many records share an image).

    A ``..`` or absolute path from an annotation never leaves the root. By default the path is
    also resolved, so a symlink inside the root that points out of it is refused before the
    file is opened (a dataset folder is someone else's file tree); ``follow_symlinks`` reads
    such links where they point (datasets linked into the root on purpose).
    """
    full = Path(os.path.normpath(Path(root) / path))
    if Path(path).is_absolute() or not full.is_relative_to(Path(os.path.normpath(root))):
        return Rejection("escapes_root", f"image path {printable(path)!r} escapes the data root")
    outside = check_inside(path, root, follow_symlinks=follow_symlinks)
    if outside:
        return Rejection("escapes_root", f"image path {outside}")
    if not full.is_file():
        return Rejection("missing_image", f"image file not found: {path}")
    try:
        width, height = image_size(full)
    except InputError as exc:
        return Rejection("unreadable_image", f"cannot read image header of {path}: {exc}")
    if width * height > max_pixels:
        return Rejection(
            "too_large",
            f"image {path} is {width}x{height} = {width * height} pixels, over the limit "
            f"{max_pixels}",
        )
    try:
        verify_image(full, min(max_pixels, DECODE_PIXELS))
    except InputError as exc:
        return Rejection("corrupt_image", f"image {path} does not decode: {exc}")
    except Exception as exc:
        return Rejection("corrupt_image", f"image {path} does not decode: {type(exc).__name__}")
    return width, height


def _clip_box(box: Box, width: int, height: int) -> Box | str:
    values = box.values()
    if not np.isfinite(values).all():
        return "non-finite coordinate"
    x1, y1, x2, y2 = box.hbb
    if x2 <= x1 or y2 <= y1:
        return f"empty box {box.hbb}"
    if box.quad is None:
        clipped = clip_hbb(box.hbb, width, height)[0]
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            return "outside"
        return box if np.array_equal(clipped, box.hbb) else Box.from_hbb(clipped)
    quads, frac = clip_quads(box.quad_array(), (0, 0, width, height), inside=True)
    if frac[0] <= 0:
        return "outside"
    if frac[0] >= 1.0:
        return box
    # The quad is the minimum-area rectangle of the clipped polygon, shrunk into the image where
    # it poked out (a corner at x=960 of a 952-wide resized DOTA P0706, issue 17), so quad, OBB
    # and horizontal targets all lie inside; the clip of the hbb only removes float noise.
    return Box(hbb=clip_hbb(quad_to_hbb(quads), width, height)[0].tolist(), quad=quads[0].tolist())


def validate_record(
    rec: Record,
    root: str | Path,
    max_pixels: int,
    classes: Collection[str] | None = None,
    *,
    follow_symlinks: bool = False,
) -> Record | Rejection:
    """Validate (and complete) one record; returns the cleaned record or a :class:`Rejection`.

    Args:
        rec: The record as the adapter produced it (not modified).
        root: The data root every image must lie in.
        max_pixels: Largest image accepted.
        classes: Allowed object classes (any spelling; compared by normalised label), or
            ``None`` to accept any class.
        follow_symlinks: Read images through symlinks that leave the root.
    """
    rec = rec.model_copy(deep=True)
    for img in rec.images:
        checked = check_image(img.path, str(root), max_pixels, follow_symlinks)
        if isinstance(checked, Rejection):
            return checked
        if (img.width, img.height) not in ((None, None), checked):
            return Rejection(
                "size_mismatch",
                f"image {img.path} is {checked[0]}x{checked[1]}, the annotation says "
                f"{img.width}x{img.height}",
            )
        img.width, img.height = checked
    # Boxes refer to the first image (temporal samples share one frame geometry, WIRE §3.4).
    width, height = rec.images[0].width or 0, rec.images[0].height or 0
    containers = (
        [("objects", o) for o in rec.objects]
        + [("referring", r) for r in rec.referring]
    )  # fmt: skip
    for field, holder in containers:
        result = _clip_box(holder.box, width, height)
        if isinstance(result, str):
            return _box_rejection(field, result, width, height)
        holder.box = result
    for field, boxes in (
        [("qa.evidence", q.evidence) for q in rec.qa]
        + [("conversation.boxes", t.boxes) for t in rec.conversation]
        + [("zoom", rec.zoom)]
    ):
        for k, box in enumerate(boxes):
            result = _clip_box(box, width, height)
            if isinstance(result, str):
                return _box_rejection(f"{field}[{k}]", result, width, height)
            boxes[k] = result
    if classes is not None and rec.objects:
        allowed = {normalize_label(c) for c in classes}
        for obj in rec.objects:
            if normalize_label(obj.class_name) not in allowed:
                return Rejection("unknown_class", f"unknown class {obj.class_name!r}")
    for field, text in rec.texts():
        if not text.strip():
            return Rejection("empty_text", f"empty text in {field}")
    missing = {
        "vqa": not rec.qa,
        "caption": not rec.captions,
        "classification": rec.label is None,
        "grounding": not rec.referring,
        "instruction": not rec.conversation,
    }.get(rec.task, False)
    if missing:
        return Rejection("no_target", f"a {rec.task} record without its target")
    return rec


def _box_rejection(field: str, problem: str, width: int, height: int) -> Rejection:
    if problem == "outside":
        return Rejection(
            "outside_image", f"a box in {field} lies outside the {width}x{height} image"
        )
    return Rejection("bad_box", f"a box in {field}: {problem}")
