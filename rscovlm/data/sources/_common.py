"""Helpers shared by the source adapters: paths relative to the data root, safe file reading.

An adapter is a function ``(root, path="", *, source, split=None, **options)`` that yields
:class:`~rscovlm.data.record.Record` and :class:`~rscovlm.data.record.BadEntry` items in a stable
order. ``root`` is the data root of the build (every image must lie inside it), ``path`` the
dataset folder or file relative to it. Adapters read annotations only; images are checked by the
build, so a missing or broken image becomes a rejected record with its reason there.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from rscovlm import safe_read
from rscovlm.data.record import BadEntry, ImageRef, Instance, Record
from rscovlm.errors import InputError
from rscovlm.files import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "Item",
    "bad",
    "detection_record",
    "find_image",
    "finite_floats",
    "image_ref",
    "iter_json_entries",
    "iter_json_items",
    "iter_sorted_files",
    "json_paths",
    "parse_xml",
    "read_id_list",
    "rel",
    "xml_float",
    "xml_size",
    "xml_text",
]

Item = Record | BadEntry


def rel(root: Path, path: Path | str) -> str:
    """``path`` as a POSIX path relative to ``root`` (``..`` parts kept, so escapes show)."""
    return Path(os.path.relpath(Path(root) / path, Path(root))).as_posix()


def bad(source: str, root: Path, source_file: Path | str, entry_id: str, reason: str) -> BadEntry:
    """A :class:`BadEntry` whose ``source_file`` is relative to the data root."""
    return BadEntry(id=entry_id, source=source, source_file=rel(root, source_file), reason=reason)


def image_ref(
    root: Path, image: Path | str, width: int | None = None, height: int | None = None
) -> ImageRef:
    """An :class:`ImageRef` to ``image``, its path relative to the data root."""
    return ImageRef(path=rel(root, image), width=width, height=height)


def detection_record(
    root: Path,
    record_id: str,
    image: Path,
    *,
    source: str,
    split: str,
    source_file: Path,
    meta: dict[str, Any],
    objects: Iterable[Instance] = (),
    size: tuple[int | None, int | None] = (None, None),
) -> Record:
    """A one-image detection :class:`Record`; ``image`` and ``source_file`` are made relative.

    ``size`` is the ``(width, height)`` the annotation states, ``None`` where it does not (the
    build fills it from the image header).
    """
    return Record(
        id=record_id,
        source=source,
        split=split,
        task="detection",
        images=[image_ref(root, image, *size)],
        objects=list(objects),
        source_file=rel(root, source_file),
        meta=meta,
    )


def read_id_list(path: Path) -> list[str]:
    """The non-empty, stripped lines of a split list file (image ids or indices), in order."""
    text = safe_read.read_text(path, "split list", errors="replace")
    return [s.strip() for s in text.splitlines() if s.strip()]


def find_image(
    folders: Iterable[Path], stem: str, suffixes: Iterable[str] = IMAGE_SUFFIXES
) -> Path | None:
    """The first existing ``folder/stem.suffix`` over folders then suffixes, or ``None``."""
    for folder in folders:
        for suffix in suffixes:
            for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                if cand.is_file():
                    return cand
    return None


def parse_xml(path: Path) -> ET.Element | str:
    """The root element of an XML file, or the reason it cannot be read."""
    try:
        return ET.fromstring(safe_read.read_bytes(path, "XML file"))
    except ET.ParseError as exc:
        return f"malformed XML ({exc})"
    except InputError as exc:
        return str(exc)
    except RecursionError:
        return "malformed XML (nested too deeply)"


def xml_text(node: ET.Element, tag: str, default: str = "") -> str:
    """Stripped text of the first ``tag`` child (a path like ``a/b`` works too)."""
    found = node.find(tag)
    return (found.text or "").strip() if found is not None and found.text else default


def xml_float(node: ET.Element, tag: str) -> float:
    """Float value of a child element; raises ``ValueError`` naming the tag when absent or bad."""
    text = xml_text(node, tag)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"<{tag}> is missing or not a number ({text!r})") from None


def xml_size(
    node: ET.Element, width_tag: str = "size/width", height_tag: str = "size/height"
) -> tuple[int | None, int | None]:
    """``(width, height)`` from two child elements; ``None`` for one that is not a whole number."""
    width, height = xml_text(node, width_tag), xml_text(node, height_tag)
    return (int(width) if width.isdigit() else None, int(height) if height.isdigit() else None)


def finite_floats(values: Any, count: int | None = None) -> list[float] | str:
    """``values`` as a list of finite floats, or the reason it is not one."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        return "coordinates are not numbers"
    if count is not None and len(out) != count:
        return f"expected {count} coordinates, got {len(out)}"
    if not all(math.isfinite(v) for v in out):
        return "non-finite coordinate"
    return out


def iter_json_entries(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(position, entry, error)`` for each entry of a json list or a JSONL file.

    A json list (or one json object, or a dict of lists under a ``key`` read by the caller)
    gives positions 0, 1, ...; a JSONL file gives line numbers, and a line that cannot be read
    (not JSON, not UTF-8, too deep, a number too long: :mod:`rscovlm.safe_read`) gives
    ``(lineno, None, reason)``. A whole-file json that cannot be read raises
    :class:`~rscovlm.errors.InputError` naming the file and the reason.
    """
    if path.suffix.lower() != ".jsonl":
        text = safe_read.read_text(path, "annotation file")
        stripped = text.lstrip()
        if stripped.startswith("["):
            data = safe_read.loads_json(text, f"annotation file {safe_read.printable(path)}")
            for i, entry in enumerate(data):
                yield i, entry, None
            return
        if stripped.startswith("{"):
            try:
                data = safe_read.loads_json(text, f"annotation file {path}")
            except InputError:
                data = None  # maybe JSONL under a .json name: read line by line below
            if data is not None:
                yield 0, data, None
                return
    for lineno, entry, reason in safe_read.iter_jsonl_lines(path, "annotation file"):
        yield lineno, entry, None if reason is None else f"line {lineno}: {reason}"


def json_paths(root: str | Path, path: str, image_root: str | None) -> tuple[Path, Path, Path]:
    """``(root, file, image folder)`` of a json / JSONL adapter's arguments.

    The image folder is ``root / image_root``, or the json file's own folder by default.
    """
    root = Path(root)
    file = root / path
    return root, file, (root / image_root if image_root is not None else file.parent)


def iter_json_items(
    root: Path, file: Path, source: str, make: Callable[[str, dict[str, Any]], Item]
) -> Iterator[Item]:
    """``make(entry_id, entry)`` for each JSON object of a json list or JSONL ``file``.

    ``entry_id`` is ``<file stem>:<position>`` (see :func:`iter_json_entries`); a line that is not
    valid JSON, an entry that is not an object, or an entry ``make`` cannot turn into a record
    (it raises ``ValueError``, ``TypeError`` or ``KeyError``, pydantic's validation errors
    included) gives a :class:`BadEntry` under that id, and the file goes on: one bad entry never
    costs the good ones after it. A file that cannot be read or parsed at all gives one
    :class:`BadEntry` named after the file.
    """
    try:
        for pos, entry, error in iter_json_entries(file):
            entry_id = f"{file.stem}:{pos}"
            if error is not None or not isinstance(entry, dict):
                yield bad(source, root, file, entry_id, error or "entry is not a JSON object")
                continue
            try:
                item = make(entry_id, entry)
            except (ValueError, TypeError, KeyError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                yield bad(source, root, file, entry_id, f"invalid entry ({reason})")
                continue
            yield item
    except (OSError, ValueError) as exc:  # InputError is a ValueError
        yield bad(source, root, file, safe_read.printable(file.name), f"cannot read file ({exc})")


def iter_sorted_files(folder: Path, suffixes: Iterable[str]) -> Iterator[Path]:
    """Files of ``folder`` with one of ``suffixes`` (case-insensitive), in name order."""
    wanted = {s.lower() for s in suffixes}
    if folder.is_dir():
        yield from sorted(p for p in folder.iterdir() if p.suffix.lower() in wanted)
