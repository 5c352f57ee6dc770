"""Many images' boxes as flat arrays: the input of every detection metric."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rscovlm import geometry
from rscovlm.formats.results import DetectionTable

__all__ = ["DetBoxes"]


@dataclass(frozen=True)
class DetBoxes:
    """Boxes of many images, one row per box.

    Attributes:
        image: ``(N,)`` int, index of the box's image in a list the caller keeps.
        label: ``(N,)`` int, index of the class in the class list.
        quads: ``(N, 4, 2)`` float, original-image pixels.
        scores: ``(N,)`` float confidences (1 for models without scores; unused for GT).
        difficult: ``(N,)`` bool, the ground truth's difficult flag (false for predictions).
    """

    image: NDArray[np.int64]
    label: NDArray[np.int64]
    quads: NDArray[np.float64]
    scores: NDArray[np.float64]
    difficult: NDArray[np.bool_]

    @classmethod
    def create(
        cls,
        image: ArrayLike,
        label: ArrayLike,
        quads: ArrayLike,
        scores: ArrayLike | None = None,
        difficult: ArrayLike | None = None,
    ) -> DetBoxes:
        """Build and check the arrays (scores default to 1, difficult to false).

        Raises:
            ValueError: the lengths differ, or a coordinate or score is not finite.
        """
        img = np.asarray(image, dtype=np.int64).reshape(-1)
        n = len(img)
        lab = np.asarray(label, dtype=np.int64).reshape(-1)
        q = geometry.as_quads(quads)
        s = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        d = np.zeros(n, bool) if difficult is None else np.asarray(difficult, bool).reshape(-1)
        if not len(lab) == len(q) == len(s) == len(d) == n:
            raise ValueError(
                f"lengths differ: image {n}, label {len(lab)}, quads {len(q)}, "
                f"scores {len(s)}, difficult {len(d)}"
            )
        if not (np.isfinite(q).all() and np.isfinite(s).all()):
            raise ValueError("quads and scores must be finite")
        return cls(img, lab, q, s, d)

    @classmethod
    def empty(cls) -> DetBoxes:
        """No boxes."""
        return cls.create(np.zeros(0), np.zeros(0), np.zeros((0, 4, 2)))

    @classmethod
    def concat(cls, parts: Sequence[DetBoxes]) -> DetBoxes:
        """All ``parts`` one after another (indices are not remapped)."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.image for p in parts]),
            np.concatenate([p.label for p in parts]),
            np.concatenate([p.quads for p in parts]).reshape(-1, 4, 2),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.difficult for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.image)

    def take(self, index: ArrayLike) -> DetBoxes:
        """The rows ``index`` (an index array or a boolean mask), in that order."""
        idx = np.asarray(index)
        return DetBoxes(
            self.image[idx], self.label[idx], self.quads[idx], self.scores[idx], self.difficult[idx]
        )

    def with_scores(self, scores: ArrayLike) -> DetBoxes:
        """The same boxes with new scores."""
        s = np.broadcast_to(np.asarray(scores, dtype=np.float64), (len(self),)).copy()
        return DetBoxes(self.image, self.label, self.quads, s, self.difficult)

    def table(self, images: Sequence[str], classes: Sequence[str]) -> DetectionTable:
        """The boxes as the result writers' container (:mod:`rscovlm.formats.results`);
        ``image`` and ``label`` index ``images`` and ``classes``."""
        return DetectionTable.create(
            images, classes, self.image, self.label, self.quads, self.scores
        )

    def with_image(self, image: ArrayLike) -> DetBoxes:
        """The same boxes with new image indices (after remapping image lists)."""
        img = np.asarray(image, dtype=np.int64).reshape(-1)
        if len(img) != len(self):
            raise ValueError(f"expected {len(self)} image indices, got {len(img)}")
        return DetBoxes(img, self.label, self.quads, self.scores, self.difficult)
