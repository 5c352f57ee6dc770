"""The typed ``Record``: one training or evaluation sample, targets structured in original pixels.

A record is what a source adapter yields and what a JSONL shard stores, one per line. Its targets
stay *structured* and in the ORIGINAL image's pixel coordinates; text with coordinates is only
produced later by ``data/render.py``, because the coordinates depend on the resolution drawn
online (DESIGN.md, "The data curation engine").

Box convention (:class:`Box`): ``hbb`` is always present, ``[x1, y1, x2, y2]`` float pixels;
``quad`` is present for oriented boxes, ``[[x, y] × 4]`` float pixels in the annotation's vertex
order (renderers put it in each task's canonical order). Image paths are POSIX paths relative
to the data root of the build, so a shard can move with its data.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rscovlm.geometry import as_quads, hbb_to_quad, quad_to_hbb

__all__ = [
    "QA",
    "TASK_KINDS",
    "BadEntry",
    "Box",
    "ImageRef",
    "Instance",
    "Record",
    "Referring",
    "TaskKind",
    "Turn",
]

TaskKind = Literal["detection", "grounding", "vqa", "caption", "classification", "instruction"]
TASK_KINDS: tuple[str, ...] = (
    "detection",
    "grounding",
    "vqa",
    "caption",
    "classification",
    "instruction",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class Box(_Model):
    """A box in original pixels: ``hbb`` always, ``quad`` for oriented boxes."""

    hbb: list[float] = Field(min_length=4, max_length=4)
    quad: list[list[float]] | None = None

    @field_validator("quad")
    @classmethod
    def _four_points(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        if value is not None and (len(value) != 4 or any(len(p) != 2 for p in value)):
            raise ValueError("quad must be four [x, y] points")
        return value

    @classmethod
    def from_hbb(cls, hbb: Any) -> Box:
        """A horizontal box from ``[x1, y1, x2, y2]``."""
        return cls(hbb=[float(v) for v in np.asarray(hbb, dtype=np.float64).reshape(4)])

    @classmethod
    def from_quad(cls, quad: Any) -> Box:
        """An oriented box from four vertices (``(4, 2)`` or 8 values); ``hbb`` encloses it."""
        q = as_quads(quad)[0]
        return cls(hbb=quad_to_hbb(q)[0].tolist(), quad=q.tolist())

    @property
    def oriented(self) -> bool:
        """True when the box carries a quad."""
        return self.quad is not None

    def quad_array(self) -> NDArray[np.float64]:
        """``(4, 2)`` vertices: the quad, or the hbb's corners (TL, TR, BR, BL)."""
        if self.quad is not None:
            return np.asarray(self.quad, dtype=np.float64)
        return hbb_to_quad(self.hbb)[0]

    def values(self) -> NDArray[np.float64]:
        """Every coordinate of the box, for finiteness checks."""
        vals = list(self.hbb)
        if self.quad is not None:
            vals.extend(v for p in self.quad for v in p)
        return np.asarray(vals, dtype=np.float64)


class ImageRef(_Model):
    """One image of a record; ``width``/``height`` are filled from the header at build time."""

    path: str
    width: int | None = None
    height: int | None = None
    #: Acquisition date (``%Y-%m-%d``) of a temporal frame, when known.
    timestamp: str | None = None


class Instance(_Model):
    """One detection object; ``class_name`` keeps the dataset's spelling."""

    class_name: str
    box: Box
    difficult: bool = False
    #: Clipped by a tile or the image border and kept because enough of its area remained.
    partial: bool = False


class QA(_Model):
    """A question with its answer; ``choices`` for multiple choice (answer = the letter)."""

    question: str
    answer: str
    category: str | None = None
    choices: list[str] | None = None
    #: Regions that hold the evidence for the answer.
    evidence: list[Box] = Field(default_factory=list)


class Referring(_Model):
    """A referring expression and the box it refers to."""

    expression: str
    box: Box
    class_name: str | None = None


class Turn(_Model):
    """One conversation turn; ``<image>``/``<video>`` placeholders stay in the text.

    Boxes written in the text of instruction data (GeoChat's 0–100 grid, TEOChatlas brackets) are
    lifted out into ``boxes`` in original pixels and their place marked ``<box:k>``.
    """

    role: Literal["system", "user", "assistant"]
    text: str
    boxes: list[Box] = Field(default_factory=list)


class Record(_Model):
    """One sample. ``id`` is unique within ``source``; ``source_file`` is where it was read."""

    id: str
    source: str
    split: str = "train"
    task: TaskKind
    images: list[ImageRef] = Field(min_length=1)
    objects: list[Instance] = Field(default_factory=list)
    qa: list[QA] = Field(default_factory=list)
    captions: list[str] = Field(default_factory=list)
    label: str | None = None
    referring: list[Referring] = Field(default_factory=list)
    conversation: list[Turn] = Field(default_factory=list)
    #: Regions to zoom into (Zoom-in Chain crop boxes), horizontal boxes in original pixels.
    zoom: list[Box] = Field(default_factory=list)
    source_file: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def uid(self) -> str:
        """``source/id``, unique across a build."""
        return f"{self.source}/{self.id}"

    def boxes(self) -> list[Box]:
        """Every box of the record, in a fixed order (objects, QA, referring, turns, zoom)."""
        out = [o.box for o in self.objects]
        out += [b for q in self.qa for b in q.evidence]
        out += [r.box for r in self.referring]
        out += [b for t in self.conversation for b in t.boxes]
        return out + list(self.zoom)

    def texts(self) -> list[tuple[str, str]]:
        """Every text field as ``(field name, text)``, for emptiness checks."""
        out: list[tuple[str, str]] = []
        for i, q in enumerate(self.qa):
            out += [(f"qa[{i}].question", q.question), (f"qa[{i}].answer", q.answer)]
        out += [(f"captions[{i}]", c) for i, c in enumerate(self.captions)]
        out += [(f"referring[{i}]", r.expression) for i, r in enumerate(self.referring)]
        out += [(f"conversation[{i}]", t.text) for i, t in enumerate(self.conversation)]
        if self.label is not None:
            out.append(("label", self.label))
        return out

    def to_json(self) -> str:
        """One JSON line (no newline), fields in declaration order, ``None`` kept."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, line: str) -> Record:
        """Parse one JSON line written by :meth:`to_json`."""
        return cls.model_validate_json(line)


class BadEntry(_Model):
    """An input entry an adapter could not turn into a record, with the reason."""

    id: str
    source: str
    source_file: str
    reason: str
