"""DOTA v1.0 / v1.5 / v2.0 labels (the file-level reader) and the record adapter.

On disk (see ``shared/DATASETS.md``): ``images/P0000.png`` beside ``labelTxt/P0000.txt``. A label
file may open with the header lines ``imagesource:GoogleEarth`` and ``gsd:0.146343590398``; every
other line is one object, ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult`` (floats in original pixels,
the four vertices in annotation order, the class spelled with hyphens, difficult 0/1; the
difficult flag is missing in some releases and then means 0).

Split-patch names live with the tiler (:mod:`rscovlm.data.patches`), DOTA Task1 result files
with the other result formats (:mod:`rscovlm.formats.results.task1`).

Citation: Xia et al., "DOTA: A Large-scale Dataset for Object Detection in Aerial Images", CVPR
2018; Ding et al., "Object Detection in Aerial Images: A Large-Scale Benchmark and Challenges",
TPAMI 2021. Licence: academic research use only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rscovlm import safe_read
from rscovlm.errors import InputError

if TYPE_CHECKING:
    from rscovlm.data.record import BadEntry, Record

__all__ = [
    "DotaFolderColumns",
    "DotaLabelColumns",
    "DotaLabelFile",
    "DotaObject",
    "iter_dota_records",
    "parse_dota_columns",
    "parse_dota_labels",
    "read_dota_columns",
    "read_dota_folder",
    "read_dota_labels",
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


@dataclass
class DotaLabelColumns:
    """A parsed label file as columns: what the evaluation reads (no object per box).

    Attributes:
        quads: ``(N, 4, 2)`` float original pixels, annotation order.
        class_names: The class of each object, as written.
        difficult: ``(N,)`` bool.
        imagesource, gsd: The header values, when present.
        bad_lines: ``(line number, line, reason)`` of every unreadable line, in file order.
    """

    quads: NDArray[np.float64]
    class_names: list[str]
    difficult: NDArray[np.bool_]
    imagesource: str | None = None
    gsd: float | None = None
    bad_lines: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.class_names)


def parse_dota_columns(text: str) -> DotaLabelColumns:
    """Parse the content of one DOTA label file into columns; never raises on malformed lines.

    The coordinates of every well-formed line go through one numpy conversion; only when it
    fails (a coordinate that is not a number) is the file parsed line by line to name each bad
    line. The one parser of the format: :func:`parse_dota_labels` is its per-object view.
    """
    imagesource: str | None = None
    gsd: float | None = None
    bad: list[tuple[int, str, str]] = []
    lines: list[tuple[int, str, str]] = []  # (line number, raw, stripped) of object lines
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line[0] in "ig" and line.startswith("imagesource:"):
            imagesource = line.partition(":")[2].strip() or None
        elif line[0] in "ig" and line.startswith("gsd:"):
            value = line.partition(":")[2].strip()
            try:
                gsd = float(value)
            except ValueError:
                if value.lower() not in ("", "none", "null"):
                    bad.append((lineno, raw, f"unreadable gsd {value!r}"))
        else:
            lines.append((lineno, raw, line))
    header_bad = list(bad)
    flat: list[str] = []
    names: list[str] = []
    diff: list[bool] = []
    linenos: list[int] = []
    slow: list[tuple[int, str, DotaObject]] = []
    for lineno, raw, line in lines:
        parts = line.split()
        n = len(parts)
        if n == 9 or (n == 10 and parts[9] in ("0", "1")):
            flat += parts[:8]
            names.append(parts[8])
            diff.append(n == 10 and parts[9] == "1")
            linenos.append(lineno)
            continue
        parsed = _parse_object_line(line)  # short lines, spaced class names, bad flags
        if isinstance(parsed, str):
            bad.append((lineno, raw, parsed))
        else:
            slow.append((lineno, raw, parsed))
    try:
        coords = np.fromiter(map(float, flat), np.float64, len(flat)).reshape(-1, 8)
    except ValueError:  # a coordinate is not a number: name each culprit
        return _parse_line_by_line(lines, imagesource, gsd, header_bad)
    finite = np.isfinite(coords).all(axis=1)
    raws = {lineno: raw for lineno, raw, _ in lines}
    bad += [
        (linenos[k], raws[linenos[k]], "non-finite coordinate") for k in np.flatnonzero(~finite)
    ]
    keep = np.flatnonzero(finite).tolist()
    rows = [(linenos[k], coords[k], names[k], diff[k]) for k in keep]
    if slow:
        rows += [(lineno, o.quad.reshape(8), o.class_name, o.difficult) for lineno, _, o in slow]
        rows.sort(key=lambda r: r[0])
        quads = np.array([r[1] for r in rows], dtype=np.float64).reshape(-1, 4, 2)
    else:
        quads = coords[keep].reshape(-1, 4, 2)
    bad.sort(key=lambda b: b[0])
    return DotaLabelColumns(
        quads,
        [r[2] for r in rows],
        np.array([r[3] for r in rows], dtype=bool),
        imagesource,
        gsd,
        bad,
    )


def _parse_line_by_line(
    lines: list[tuple[int, str, str]],
    imagesource: str | None,
    gsd: float | None,
    bad: list[tuple[int, str, str]],
) -> DotaLabelColumns:
    objects: list[DotaObject] = []
    for lineno, raw, line in lines:
        parsed = _parse_object_line(line)
        if isinstance(parsed, str):
            bad.append((lineno, raw, parsed))
        else:
            objects.append(parsed)
    bad.sort(key=lambda b: b[0])
    quads = np.array([o.quad for o in objects], dtype=np.float64).reshape(-1, 4, 2)
    return DotaLabelColumns(
        quads,
        [o.class_name for o in objects],
        np.array([o.difficult for o in objects], dtype=bool),
        imagesource,
        gsd,
        bad,
    )


def parse_dota_labels(text: str) -> DotaLabelFile:
    """Parse the content of one DOTA label file; never raises on malformed lines."""
    cols = parse_dota_columns(text)
    objects = [
        DotaObject(q, c, d)
        for q, c, d in zip(cols.quads, cols.class_names, cols.difficult.tolist(), strict=True)
    ]
    return DotaLabelFile(objects, cols.imagesource, cols.gsd, cols.bad_lines)


def read_dota_columns(path: str | Path) -> DotaLabelColumns:
    """Read one DOTA label file as columns; raises :class:`InputError` only when the file is
    unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read DOTA label file {path}: {exc.strerror or exc}") from exc
    return parse_dota_columns(text)


def read_dota_labels(path: str | Path) -> DotaLabelFile:
    """Read one DOTA label file; raises :class:`InputError` only when the file is unreadable."""
    text = safe_read.read_text(path, "DOTA label file", errors="replace")
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
    # The record model (pydantic) and the image finders load here, not with the module: the
    # label reader above is what ``rscovlm eval det`` imports, and it needs neither.
    from rscovlm.data.record import Box, Instance
    from rscovlm.data.sources._common import (
        IMAGE_SUFFIXES,
        bad,
        detection_record,
        find_image,
        iter_sorted_files,
    )

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


@dataclass
class DotaFolderColumns:
    """Many label files read as one table (the fast path of a ``labelTxt`` folder).

    Attributes:
        image: ``(N,)`` index of each object's file.
        class_names: The distinct class texts as written, first-seen order.
        label: ``(N,)`` index into ``class_names``.
        quads: ``(N, 4, 2)`` original pixels, file order then line order.
        difficult: ``(N,)`` bool.
        header_bad: ``(file index, line number, line, reason)`` of every unreadable header.
    """

    image: NDArray[np.int64]
    class_names: list[str]
    label: NDArray[np.int64]
    quads: NDArray[np.float64]
    difficult: NDArray[np.bool_]
    header_bad: list[tuple[int, int, str, str]]


_HEADERS = (b"imagesource:", b"gsd:")


def read_dota_folder(paths: list[Path]) -> DotaFolderColumns | None:
    """All ``paths`` parsed as one C table, or ``None`` when one of them is not clean.

    Why: 500 small files parsed in Python cost half a second; their bodies joined and parsed
    once by :func:`rscovlm.formats.columns_fast.read_fast_table` cost a few milliseconds.
    The leading ``imagesource:``/``gsd:`` lines of each file go through
    :func:`parse_dota_columns` (so a bad ``gsd`` is reported as before). ``None`` (a file
    with a short or odd line, a blank line, a spaced class name, a difficult flag other than
    0/1, a non-number...) sends the caller to :func:`read_dota_columns` file by file, which
    names every bad line.

    Raises:
        InputError: A file cannot be read.
    """
    from rscovlm.formats.columns_fast import clean_table, read_fast_table

    bodies: list[bytes] = []
    counts: list[int] = []
    header_bad: list[tuple[int, int, str, str]] = []
    for k, path in enumerate(paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read DOTA label file {path}: {exc.strerror or exc}") from exc
        if b"\r" in data:  # rows are counted by b"\n": the universal newlines of read_text
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while data.startswith(_HEADERS, start):
            end = data.find(b"\n", start)
            start = len(data) if end < 0 else end + 1
        if start:
            head = parse_dota_columns(data[:start].decode("utf-8", errors="replace"))
            if len(head):
                return None
            header_bad += [(k, n, raw, why) for n, raw, why in head.bad_lines]
        body = data[start:]
        if not body:
            counts.append(0)
            continue
        if not clean_table(body):
            return None
        body = body if body.endswith(b"\n") else body + b"\n"
        bodies.append(body)
        counts.append(body.count(b"\n"))
    if not bodies:
        fast: tuple | None = ([np.zeros(0)] * 8, [([], np.zeros(0, np.int64))] * 2)
    else:
        fast = read_fast_table(b"".join(bodies), "ffffffffss")
    if fast is None:
        return None
    floats, ((names, label), (flags, flag)) = fast
    if not set(flags) <= {"0", "1"}:
        return None
    one = flags.index("1") if "1" in flags else -1
    return DotaFolderColumns(
        np.repeat(np.arange(len(paths), dtype=np.int64), counts),
        names,
        label,
        np.column_stack(floats).reshape(-1, 4, 2),
        flag == one,
        header_bad,
    )
