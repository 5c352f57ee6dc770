"""The objects the detection codec reads and writes (re-exported by ``formats.boxes``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rscovlm.errors import InputError
from rscovlm.formats._coords import COORD_COUNTS
from rscovlm.formats.classes import normalize_label
from rscovlm.geometry import BoxKind

__all__ = ["DetObject", "DetParse", "LineFate", "Rejected"]

#: What became of one non-blank input line.
LineFate = Literal["object", "rejected", "empty", "syntax"]


@dataclass(frozen=True)
class DetObject:
    """One detected or annotated object, in model coordinates.

    Attributes:
        label: The label as it appears in the text (for encoding: the normalised class name).
        kind: ``"hbb"`` (x1, y1, x2, y2), ``"obb"`` (cx, cy, w, h, angle) or ``"quad"``.
        coords: 4, 5 or 8 numbers; ints when encoding.
        class_name: The matched class in its original spelling, when a matcher was used.
        score: Confidence; a VLM gives none, so 1.0 (the mAP_nc protocol).

    Raises:
        InputError: Unknown kind or a coordinate count that does not fit it.
    """

    label: str
    kind: BoxKind
    coords: tuple[float, ...]
    class_name: str | None = None
    score: float = 1.0

    def __post_init__(self) -> None:
        coords = tuple(self.coords)
        if self.kind not in COORD_COUNTS:
            raise InputError(f"unknown box kind {self.kind!r}; expected hbb, obb or quad")
        if len(coords) != COORD_COUNTS[self.kind]:
            raise InputError(
                f"{self.kind} needs {COORD_COUNTS[self.kind]} coordinates, got {len(coords)}"
            )
        object.__setattr__(self, "coords", coords)

    @classmethod
    def for_class(cls, class_name: str, kind: BoxKind, coords: Sequence[float]) -> DetObject:
        """An object whose label is the normalised text of ``class_name`` (what render needs)."""
        return cls(normalize_label(class_name), kind, tuple(coords), class_name=class_name)


@dataclass(frozen=True)
class Rejected:
    """A piece of model output that could not be read, and why."""

    line: str
    reason: str


@dataclass
class DetParse:
    """What :func:`parse_detections` could read, and everything it could not.

    Attributes:
        objects: The objects read, in output order.
        rejected: Unreadable lines or JSON items with reasons (the count of what was lost).
        empty: The output contained the no-object sentence (objects of other lines, if any,
            are still read: a caller decides which to trust).
        line_fates: One entry per non-blank input line, in order, saying what became of it
            (JSON punctuation and continuation lines of an item are ``"syntax"``), so a caller
            can prove no line was dropped silently.
    """

    objects: list[DetObject] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    empty: bool = False
    line_fates: tuple[LineFate, ...] = ()

    @property
    def n_unread(self) -> int:
        """How many lines or items could not be read."""
        return len(self.rejected)
