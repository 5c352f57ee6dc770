"""DOTA v1.0 / v1.5 / v2.0 labels and split-patch names (the file-level readers).

On disk (see ``shared/DATASETS.md``): ``images/P0000.png`` beside ``labelTxt/P0000.txt``. A label
file may open with the header lines ``imagesource:GoogleEarth`` and ``gsd:0.146343590398``; every
other line is one object, ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult`` (floats in original pixels,
the four vertices in annotation order, the class spelled with hyphens, difficult 0/1; the
difficult flag is missing in some releases and then means 0).

Split patches are named ``P0000__<m>__<x>___<y>``: the DOTA devkit writes the resize *rate* in the
middle field (``P0000__1__0___512``, ``P0000__0.5__0___512``) while mmrotate writes the patch size
(``P0000__1024__0___512``). :func:`parse_patch_name` reads both; rscovlm writes the rate
(:func:`format_patch_name`), which both toolchains merge correctly.

Citation: Xia et al., "DOTA: A Large-scale Dataset for Object Detection in Aerial Images", CVPR
2018; Ding et al., "Object Detection in Aerial Images: A Large-Scale Benchmark and Challenges",
TPAMI 2021. Licence: academic research use only.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm.data.record import BadEntry, Box, Instance, Record
from rscovlm.data.sources._common import (
    IMAGE_SUFFIXES,
    bad,
    detection_record,
    find_image,
    iter_sorted_files,
)
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text, atomic_writer

__all__ = [
    "DotaLabelFile",
    "DotaObject",
    "PatchName",
    "format_patch_name",
    "iter_dota_records",
    "parse_dota_labels",
    "parse_patch_name",
    "read_dota_labels",
    "write_task1",
]


@dataclass(frozen=True)
class DotaObject:
    """One annotated object: ``quad`` is ``(4, 2)`` float original pixels, annotation order."""

    quad: NDArray[np.float64]
    class_name: str
    difficult: bool = False


@dataclass
class DotaLabelFile:
    """A parsed label file; ``bad_lines`` keeps every unreadable line with its reason."""

    objects: list[DotaObject] = field(default_factory=list)
    imagesource: str | None = None
    gsd: float | None = None
    bad_lines: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def quads(self) -> NDArray[np.float64]:
        """All quads as one ``(N, 4, 2)`` array."""
        if not self.objects:
            return np.zeros((0, 4, 2))
        return np.stack([o.quad for o in self.objects])


def parse_dota_labels(text: str) -> DotaLabelFile:
    """Parse the content of one DOTA label file; never raises on malformed lines."""
    result = DotaLabelFile()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("imagesource:"):
            result.imagesource = line.partition(":")[2].strip() or None
            continue
        if line.startswith("gsd:"):
            value = line.partition(":")[2].strip()
            try:
                result.gsd = float(value)
            except ValueError:
                if value.lower() not in ("", "none", "null"):
                    result.bad_lines.append((lineno, raw, f"unreadable gsd {value!r}"))
            continue
        parsed = _parse_object_line(line)
        if isinstance(parsed, str):
            result.bad_lines.append((lineno, raw, parsed))
        else:
            result.objects.append(parsed)
    return result


def read_dota_labels(path: str | Path) -> DotaLabelFile:
    """Read one DOTA label file; raises :class:`InputError` only when the file is unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read DOTA label file {path}: {exc.strerror or exc}") from exc
    return parse_dota_labels(text)


def _parse_object_line(line: str) -> DotaObject | str:
    parts = line.split()
    if len(parts) < 9:
        return f"expected 8 coordinates and a class, got {len(parts)} fields"
    try:
        coords = [float(v) for v in parts[:8]]
    except ValueError:
        return "coordinates are not numbers"
    if not all(math.isfinite(v) for v in coords):
        return "non-finite coordinate"
    rest = parts[8:]
    difficult = False
    if len(rest) >= 2 and rest[-1] in ("0", "1"):
        difficult = rest[-1] == "1"
        rest = rest[:-1]
    elif len(rest) >= 2:
        return f"difficult flag must be 0 or 1, got {rest[-1]!r}"
    class_name = " ".join(rest)
    return DotaObject(np.asarray(coords, dtype=np.float64).reshape(4, 2), class_name, difficult)


_PATCH_RE = re.compile(r"^(?P<base>.+?)__(?P<mid>\d+(?:\.\d+)?)__(?P<x>-?\d+)___(?P<y>-?\d+)$")
# A middle field above this is a patch size (mmrotate), not a resize rate (DOTA devkit).
_MAX_RATE = 16.0


@dataclass(frozen=True)
class PatchName:
    """A split patch's origin: patch pixel ``p`` is original pixel ``(p + (x, y)) / rate``."""

    base: str
    rate: float
    x: int
    y: int

    def to_original(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Map ``(..., 2)`` patch pixel coordinates back to the original image."""
        pts = np.asarray(points, dtype=np.float64)
        return (pts + np.array([self.x, self.y], dtype=np.float64)) / self.rate


def parse_patch_name(name: str) -> PatchName | None:
    """Read ``P0001__1024__0___512`` / ``P0001__0.5__0___512``; ``None`` for a plain name.

    A middle field with a decimal point or at most 16 is the devkit's resize rate; a larger
    integer is mmrotate's patch size, whose patches always have rate 1.

    Examples:
        >>> parse_patch_name("P2805__1024__0___512")
        PatchName(base='P2805', rate=1.0, x=0, y=512)
        >>> parse_patch_name("P0004__0.5__824___0").rate
        0.5
        >>> parse_patch_name("P0004") is None
        True
    """
    stem = Path(name).stem if "." in Path(name).name[-5:] else name
    match = _PATCH_RE.match(stem)
    if match is None:
        return None
    mid = match["mid"]
    value = float(mid)
    rate = value if ("." in mid or value <= _MAX_RATE) else 1.0
    if rate <= 0:
        return None
    return PatchName(match["base"], rate, int(match["x"]), int(match["y"]))


def format_patch_name(base: str, rate: float, x: int, y: int) -> str:
    """The devkit-style patch name (rate in the middle), readable by mmrotate's merger too.

    Examples:
        >>> format_patch_name("P0001", 1.0, 0, 512)
        'P0001__1__0___512'
        >>> format_patch_name("P0001", 0.5, 824, 0)
        'P0001__0.5__824___0'
    """
    rate_text = f"{rate:g}"
    return f"{base}__{rate_text}__{int(x)}___{int(y)}"


# --- Record adapter (rscovlm.data.build) ----------------------------------------------------

#: Class list name of each DOTA version (``rscovlm.formats.classes.CLASS_LISTS``).
DOTA_CLASS_LISTS = {"1.0": "dota1.0", "1.5": "dota1.5", "2.0": "dota2.0"}


def iter_dota_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "dota",
    split: str | None = None,
    version: str = "1.0",
    image_dir: str = "images",
    label_dir: str = "labelTxt",
    skip_bad_lines: bool = False,
) -> Iterator[Record | BadEntry]:
    """Yield one detection :class:`Record` per DOTA image, in label-file name order.

    Layout: ``<root>/<path>/images/P0000.png`` beside ``<root>/<path>/labelTxt/P0000.txt`` (split
    patches use the same layout). Objects keep their quads in annotation order and their
    difficult flag; ``imagesource`` and ``gsd`` headers go to ``meta``. Without a ``labelTxt``
    folder (the test split) every image becomes a record without objects. The image size is
    filled in by the build from the file header.

    Args:
        root: Data root of the build; image paths are stored relative to it.
        path: The DOTA folder (or split folder) under ``root``.
        source: Source name written into the records.
        split: Split name written into the records (default ``train``).
        version: ``1.0``, ``1.5`` or ``2.0``; recorded in ``meta`` and selects the class list.
        image_dir: Image folder name under ``path``.
        label_dir: Label folder name under ``path``.
        skip_bad_lines: Keep an image whose label file has malformed lines (each line is then
            reported on its own); by default the whole image is reported, since a dropped
            object would teach the model to miss it.
    """
    if version not in DOTA_CLASS_LISTS:
        raise InputError(f"unknown DOTA version {version!r}; use one of {sorted(DOTA_CLASS_LISTS)}")
    root = Path(root)
    base = root / path
    images, labels = base / image_dir, base / label_dir
    meta_base = {"version": version, "class_list": DOTA_CLASS_LISTS[version]}
    if not labels.is_dir():
        for img in iter_sorted_files(images, IMAGE_SUFFIXES):
            yield detection_record(
                root,
                img.stem,
                img,
                source=source,
                split=split or "test",
                source_file=img,
                meta=dict(meta_base),
            )
        return
    for label_path in iter_sorted_files(labels, (".txt",)):
        stem = label_path.stem
        try:
            parsed = read_dota_labels(label_path)
        except InputError as exc:
            yield bad(source, root, label_path, stem, str(exc))
            continue
        if parsed.bad_lines and not skip_bad_lines:
            lineno, _, reason = parsed.bad_lines[0]
            more = f" (and {len(parsed.bad_lines) - 1} more)" if len(parsed.bad_lines) > 1 else ""
            yield bad(source, root, label_path, stem, f"label line {lineno}: {reason}{more}")
            continue
        for lineno, _, reason in parsed.bad_lines:
            yield bad(
                source, root, label_path, f"{stem}:{lineno}", f"label line {lineno}: {reason}"
            )
        image = find_image([images], stem) or images / f"{stem}.png"
        meta: dict[str, object] = dict(meta_base)
        if parsed.imagesource is not None:
            meta["imagesource"] = parsed.imagesource
        if parsed.gsd is not None:
            meta["gsd"] = parsed.gsd
        yield detection_record(
            root,
            stem,
            image,
            source=source,
            split=split or "train",
            objects=[
                Instance(class_name=o.class_name, box=Box.from_quad(o.quad), difficult=o.difficult)
                for o in parsed.objects
            ],
            source_file=label_path,
            meta=meta,
        )


# --- Task1 result files (DOTA evaluation server) ----------------------------------------------


def write_task1(
    out_dir: str | Path,
    images: Sequence[str],
    classes: Sequence[str],
    image_index: ArrayLike,
    labels: ArrayLike,
    quads: ArrayLike,
    scores: ArrayLike,
    *,
    zip_path: str | Path | None = None,
) -> list[Path]:
    """Write one ``Task1_<class>.txt`` per class (every class, empty ones too) and a zip.

    Box ``k`` lies on image ``images[image_index[k]]``, has class ``classes[labels[k]]``, the
    ``(4, 2)`` quad ``quads[k]`` in original pixels and ``scores[k]``. Lines are ``image score x1
    y1 ... x4 y4`` with Python's shortest round-trip float text, so reading the files back gives
    the same numbers (and the same ties); within a file boxes go by image, then descending
    score. Every file is written to a temporary name and renamed. The zip holds the files at its
    root, as the DOTA evaluation server expects.

    Raises:
        InputError: The arrays disagree in length.
    """
    image = np.asarray(image_index, dtype=np.int64).reshape(-1)
    label = np.asarray(labels, dtype=np.int64).reshape(-1)
    score = np.asarray(scores, dtype=np.float64).reshape(-1)
    coords = np.asarray(quads, dtype=np.float64).reshape(-1, 8)
    if not len(image) == len(label) == len(score) == len(coords):
        raise InputError(
            f"Task1 boxes disagree: {len(image)} images, {len(label)} labels, "
            f"{len(score)} scores, {len(coords)} quads"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    order = np.lexsort((-score, image))
    for c, name in enumerate(classes):
        rows = order[label[order] == c]
        lines = (
            f"{images[i]} {s!r} " + " ".join(repr(v) for v in q) + "\n"
            for i, s, q in zip(
                image[rows].tolist(), score[rows].tolist(), coords[rows].tolist(), strict=True
            )
        )
        paths.append(atomic_write_text(out / f"Task1_{name}.txt", "".join(lines)))
    if zip_path is not None:
        with (
            atomic_writer(zip_path) as tmp_zip,
            zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            for p in paths:
                archive.write(p, arcname=p.name)
    return paths
