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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rscovlm.errors import InputError

__all__ = [
    "DotaLabelFile",
    "DotaObject",
    "PatchName",
    "format_patch_name",
    "parse_dota_labels",
    "parse_patch_name",
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
