"""Raw model outputs (JSONL, one image or patch per line): the ``vlm`` prediction format.

Schema of a line::

    {"image_id": "P0001__1__0___0", "output": "<the model's answer>",
     "orig_size": [width, height], "resized_size": [width, height], "family": "qwen2_5_vl"}

A line keeps what decoding needs: the sizes that give the :class:`~rscovlm.resolution.CoordMap`
of the image the model saw. ``family`` is optional (default ``qwen2_5_vl``, the released
checkpoints); ``resized_size`` may be left out for grid families, whose coordinates do not
depend on it. The text itself is decoded by :func:`rscovlm.formats.decode.decode_detections`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.formats.results._table import json_lines
from rscovlm.resolution import DEFAULT_FAMILY, CoordMap, get_family

__all__ = ["RawOutput", "iter_raw_outputs", "write_raw_outputs"]


@dataclass(frozen=True)
class RawOutput:
    """One model output and the geometry of the image it answered about."""

    image_id: str
    output: str
    orig_size: tuple[int, int]
    resized_size: tuple[int, int]
    family: str = DEFAULT_FAMILY

    def coord_map(self) -> CoordMap:
        """The map from the model's coordinates to the image's (``orig_size``) pixels."""
        return CoordMap(self.orig_size, self.resized_size, get_family(self.family))

    def to_dict(self) -> dict[str, Any]:
        """The JSON line (schema above)."""
        return {
            "image_id": self.image_id,
            "output": self.output,
            "orig_size": list(self.orig_size),
            "resized_size": list(self.resized_size),
            "family": self.family,
        }


def write_raw_outputs(outputs: Iterable[RawOutput], path: str | Path) -> Path:
    """One JSON line per output."""
    lines = (json.dumps(o.to_dict(), ensure_ascii=False) + "\n" for o in outputs)
    return atomic_write_text(path, "".join(lines))


def _size(record: dict[str, Any], key: str) -> tuple[int, int] | str | None:
    value = record.get(key)
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        return f"{key} must be [width, height], got {value!r}"
    return (value[0], value[1])


def _raw(record: dict[str, Any], default_family: str | None) -> RawOutput | str:
    image_id, text = record.get("image_id"), record.get("output")
    if image_id is None or not isinstance(text, str):
        return "needs image_id and output (str)"
    try:
        family = get_family(record.get("family") or default_family or DEFAULT_FAMILY)
    except InputError as exc:  # an unknown family name: the line is bad, the run goes on
        return str(exc)
    orig, resized = _size(record, "orig_size"), _size(record, "resized_size")
    for size in (orig, resized):
        if isinstance(size, str):
            return size
    if orig is None:
        return "needs orig_size [width, height]"
    if resized is None:
        if family.coords != "grid1000":
            return f"needs resized_size [width, height] for family {family.name}"
        resized = orig
    try:  # the sizes must make a coordinate map: positive integers
        cmap = CoordMap(orig, resized, family)  # type: ignore[arg-type]
    except InputError as exc:
        return str(exc)
    return RawOutput(str(image_id), text, cmap.orig_size, cmap.resized_size, family.name)


def iter_raw_outputs(
    path: str | Path, default_family: str | None = None
) -> Iterator[tuple[str, RawOutput | str]]:
    """``(where, output)`` for each good line, ``(where, reason)`` for a line that cannot be
    decoded (missing fields, malformed sizes); model text itself is never a reason.

    Examples:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "raw.jsonl"
        >>> _ = f.write_text('{"image_id": "P1", "output": "x", "orig_size": [8, 8]}\\n')
        >>> [(w, r) for w, r in iter_raw_outputs(f)]
        [('raw.jsonl:1', 'needs resized_size [width, height] for family qwen2_5_vl')]
    """
    for where, record in json_lines(path):
        yield where, record if isinstance(record, str) else _raw(record, default_family)
