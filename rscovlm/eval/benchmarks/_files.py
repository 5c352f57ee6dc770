"""Reading helpers of the question, caption, TEOChatlas and segmentation families.

Why a module of their own: every reader of these families opens a json or JSONL file whose
absence means "wrong ``--root``" (one :class:`~rscovlm.errors.InputError` line naming the file)
while a bad LINE of a present file is a counted, skipped record; and every reader turns an
adapter's :class:`~rscovlm.data.record.BadEntry` into a ``ReadReport`` entry the same way.
Image parts carry the annotation's size or :data:`~rscovlm.eval.benchmarks.base.UNKNOWN_SIZE`,
and their ``source`` is a POSIX path relative to ``--root``, so ids never depend on where the
data sits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import ImagePart
from rscovlm.data.record import BadEntry, Record
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks.base import UNKNOWN_SIZE
from rscovlm.eval.read_report import ReadReport

__all__ = ["image_part", "iter_rows", "load_json", "records", "require_file"]


def image_part(path: str | Path, size: tuple[int | None, int | None] | None = None) -> ImagePart:
    """An image part of ``path`` (relative to the root) with the annotated size, if any.

    Examples:
        >>> image_part("a/b.png", (640, 480)).orig_size, image_part("a/b.png").orig_size
        ((640, 480), (0, 0))
    """
    known = UNKNOWN_SIZE
    if size is not None and size[0] and size[1]:
        known = (int(size[0]), int(size[1]))
    return ImagePart(Path(path).as_posix(), known, known)


def require_file(root: Path, name: str, what: str) -> Path:
    """``root / name``, or the one-line error saying which file the benchmark expected."""
    file = Path(root) / name
    if not file.is_file():
        raise InputError(f"{what}: expected {file} (see `rscovlm eval list` for the layout)")
    return file


def load_json(root: Path, name: str, what: str) -> Any:
    """The parsed json file ``root / name`` (missing or unparsable: :class:`InputError`)."""
    file = require_file(root, name, what)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{what}: {file} is not readable json ({exc})") from None


def iter_rows(file: Path, report: ReadReport) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` of a json list, a ``{"key": [...]}`` wrapper or a JSONL file.

    A JSONL line that does not parse, or a row that is not an object, is counted in ``report``
    and skipped; the rest of the file is still read.
    """
    text = file.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{file.name}:{n}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                report.bad(where, f"not json ({exc.__class__.__name__})")
                continue
            if isinstance(row, dict):
                yield where, row
            else:
                report.bad(where, "line is not a json object")
        return
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list):
        report.bad(file.name, "neither a json list nor JSONL")
        return
    for n, row in enumerate(data):
        where = f"{file.name}[{n}]"
        if isinstance(row, dict):
            yield where, row
        else:
            report.bad(where, "entry is not a json object")


def records(items: Iterable[Record | BadEntry], report: ReadReport) -> Iterator[Record]:
    """The records of a data-source adapter; its bad entries are counted in ``report``."""
    for item in items:
        if isinstance(item, BadEntry):
            report.bad(f"{item.source_file}:{item.id}", item.reason)
        else:
            yield item
