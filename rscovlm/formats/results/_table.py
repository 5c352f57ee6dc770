"""The plain container every result writer takes, the row every reader yields."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm import geometry
from rscovlm.errors import InputError
from rscovlm.safe_read import iter_jsonl_lines, printable

if TYPE_CHECKING:
    from rscovlm.imaging import RasterInfo

__all__ = ["DetectionTable", "ResultBox", "ResultColumns", "ResultImage", "intern", "json_lines"]


@dataclass(frozen=True)
class ResultImage:
    """One image of a result: its id, and what the COCO and GeoJSON writers need to know.

    Attributes:
        id: The image id in every file (``P0001``, a patch name, a file stem).
        file_name: The image's file name (COCO ``file_name``; default ``id``).
        size: ``(width, height)`` (COCO ``width``/``height``), when known.
        raster: The raster header; a georeferenced one gives GeoJSON map coordinates.
    """

    id: str
    file_name: str | None = None
    size: tuple[int, int] | None = None
    raster: RasterInfo | None = None


@dataclass(frozen=True)
class DetectionTable:
    """Boxes of many images as flat columns, in original pixels.

    Attributes:
        images: The images; ``image`` indexes them.
        classes: The class list (original spelling); ``label`` indexes it.
        image: ``(N,)`` int image index of each box.
        label: ``(N,)`` int class index.
        quads: ``(N, 4, 2)`` float boxes.
        scores: ``(N,)`` float scores (1 for a VLM).
    """

    images: tuple[ResultImage, ...]
    classes: tuple[str, ...]
    image: NDArray[np.int64]
    label: NDArray[np.int64]
    quads: NDArray[np.float64]
    scores: NDArray[np.float64]

    @classmethod
    def create(
        cls,
        images: Sequence[str | ResultImage],
        classes: Sequence[str],
        image: ArrayLike,
        label: ArrayLike,
        quads: ArrayLike,
        scores: ArrayLike | None = None,
    ) -> DetectionTable:
        """Build and check the columns (scores default to 1).

        Raises:
            InputError: The columns disagree in length or index out of range.
        """
        imgs = tuple(i if isinstance(i, ResultImage) else ResultImage(str(i)) for i in images)
        img = np.asarray(image, dtype=np.int64).reshape(-1)
        lab = np.asarray(label, dtype=np.int64).reshape(-1)
        q = geometry.as_quads(quads)
        s = np.ones(len(q)) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        if not len(img) == len(lab) == len(q) == len(s):
            raise InputError(
                f"result boxes disagree: {len(img)} images, {len(lab)} labels, "
                f"{len(s)} scores, {len(q)} quads"
            )
        if len(img) and (img.min() < 0 or img.max() >= len(imgs)):
            raise InputError("result boxes index an image that is not in the image list")
        if len(lab) and (lab.min() < 0 or lab.max() >= len(classes)):
            raise InputError("result boxes index a class that is not in the class list")
        return cls(imgs, tuple(classes), img, lab, q, s)

    def __len__(self) -> int:
        return len(self.image)

    @property
    def image_ids(self) -> list[str]:
        """The id of each image."""
        return [i.id for i in self.images]

    def class_names(self) -> list[str]:
        """The class of each box."""
        return [self.classes[i] for i in self.label.tolist()]


@dataclass(frozen=True)
class ResultBox:
    """One box read back from a result file (class as written; the caller matches it).

    Attributes:
        image_id: The image id as written.
        label: The class text as written.
        quad: ``(4, 2)`` original pixels.
        score: The score (1 when the file gave none).
        scored: Whether the file gave a score.
    """

    image_id: str
    label: str
    quad: NDArray[np.float64]
    score: float = 1.0
    scored: bool = True


def json_lines(path: str | Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """``(where, object)`` for each JSON-object line, ``(where, reason)`` for a bad one.

    ``where`` is ``<file name>:<line number>``; blank lines are skipped. Lines are read by
    :func:`rscovlm.safe_read.iter_jsonl_lines`: a line that is not UTF-8, too deep, too long or
    holds a 400-digit number is one bad row, and the file goes on.

    Raises:
        InputError: The file cannot be opened.
    """
    path = Path(path)
    for lineno, record, reason in iter_jsonl_lines(path, "predictions"):
        where = f"{printable(path.name)}:{lineno}"
        if reason is not None:
            yield where, reason
        elif not isinstance(record, dict):
            yield where, "not a JSON object"
        else:
            yield where, record


def intern(values: Iterable[str]) -> tuple[tuple[str, ...], NDArray[np.int64]]:
    """``(distinct values in first-seen order, index of each value)``: what a bulk reader keeps
    instead of one string per box, so per-name work (matching, ``image_key``) runs once a name.

    Examples:
        >>> intern(["P2", "P1", "P2"])
        (('P2', 'P1'), array([0, 1, 0]))
    """
    items = values if isinstance(values, list | tuple) else list(values)
    # dict.fromkeys keeps first-seen order; both passes run in C (no Python frame per value).
    distinct = tuple(dict.fromkeys(items))
    index = {v: k for k, v in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, items), np.int64, len(items))
    return distinct, codes


@dataclass(frozen=True)
class ResultColumns:
    """The boxes of one result file read in bulk, as columns (image ids and labels interned).

    Attributes:
        source: The file name, for the ``where`` of a row (``<source>:<unit><position>``).
        names: The distinct image ids, as written; ``image`` indexes them.
        labels: The distinct class texts, as written; ``label`` indexes them.
        image, label: ``(N,)`` int indices.
        quads: ``(N, 4, 2)`` original pixels.
        scores: ``(N,)`` (1 where the file gave none).
        scored: ``(N,)`` whether the file gave the score.
        position: ``(N,)`` line number (or entry index) of each box.
        bad: ``(position, reason)`` of every unreadable line or entry.
        unit: What a position counts: ``""`` for lines, ``"annotation "`` for COCO entries.
    """

    source: str
    names: tuple[str, ...]
    labels: tuple[str, ...]
    image: NDArray[np.int64]
    label: NDArray[np.int64]
    quads: NDArray[np.float64]
    scores: NDArray[np.float64]
    scored: NDArray[np.bool_]
    position: NDArray[np.int64]
    bad: tuple[tuple[int, str], ...] = ()
    unit: str = ""

    @classmethod
    def build(
        cls,
        source: str,
        names: Sequence[str],
        labels: Sequence[str],
        quads: ArrayLike,
        scores: ArrayLike,
        scored: ArrayLike,
        position: ArrayLike,
        bad: Sequence[tuple[int, str]] = (),
        unit: str = "",
    ) -> ResultColumns:
        """Columns from one image id and one label per box (both are interned here)."""
        name_list, image = intern(names)
        label_list, label = intern(labels)
        q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
        return cls(
            source, name_list, label_list, image, label, q,
            np.asarray(scores, dtype=np.float64).reshape(-1),
            np.asarray(scored, dtype=bool).reshape(-1),
            np.asarray(position, dtype=np.int64).reshape(-1),
            tuple(bad), unit,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.image)

    def where(self, position: int) -> str:
        """``<file name>:<unit><position>``: how a reason names its line."""
        return f"{self.source}:{self.unit}{position}"

    def rows(self) -> Iterator[tuple[str, ResultBox | str]]:
        """``(where, box)`` / ``(where, reason)`` in file order: the per-row view."""
        bad = sorted(self.bad)
        k = 0
        for i, pos in enumerate(self.position.tolist()):
            while k < len(bad) and bad[k][0] < pos:
                yield self.where(bad[k][0]), bad[k][1]
                k += 1
            yield self.where(pos), ResultBox(
                self.names[self.image[i]], self.labels[self.label[i]], self.quads[i],
                float(self.scores[i]), bool(self.scored[i]),
            )  # fmt: skip
        for pos, reason in bad[k:]:
            yield self.where(pos), reason
