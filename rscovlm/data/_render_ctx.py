"""What one :func:`rscovlm.data.render.render` call draws from and writes with.

:class:`RenderContext` holds the record, its generator, its layered options and the model family;
it draws every image's resized size and every Bernoulli / uniform choice in the documented order
(:mod:`rscovlm.data.render`). The small helpers here (image part, class list) are
shared by the task renderers of :mod:`rscovlm.data._render_det` and
:mod:`rscovlm.data._render_qa`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rscovlm.data.conversation import ImagePart
from rscovlm.data.policy import RenderOptions
from rscovlm.data.record import Record
from rscovlm.errors import InputError
from rscovlm.formats import get_classes
from rscovlm.imaging import image_size
from rscovlm.resolution import CoordMap, ModelFamily

__all__ = ["RenderContext", "SkipSampleError", "class_list", "image_part"]


class SkipSampleError(InputError):
    """The record renders to no sample under its options (e.g. empty detection, not kept)."""


@dataclass
class RenderContext:
    """What one render call draws from and writes with."""

    record: Record
    rng: np.random.Generator
    opts: RenderOptions
    family: ModelFamily
    root: Path | None

    def size(self, index: int) -> tuple[int, int]:
        """``(width, height)`` of image ``index``: from the record, else from its header."""
        ref = self.record.images[index]
        if ref.width is not None and ref.height is not None:
            return ref.width, ref.height
        if self.root is None:
            raise InputError(
                f"{self.record.uid}: size of {ref.path} unknown; give the data root or build "
                "the dataset first"
            )
        return image_size(self.root / ref.path)

    def coord_map(self, index: int, random_ok: bool) -> CoordMap:
        """Draw image ``index``'s resized size (random resize only where ``random_ok``)."""
        width, height = self.size(index)
        prob = self.opts.random_resize_prob if random_ok else 0.0
        return CoordMap.for_image(
            width, height, self.opts.band, self.family, self.rng, random_resize_prob=prob
        )

    def draw(self, prob: float) -> bool:
        """A Bernoulli draw; certain outcomes (0 or 1) consume no random number."""
        if prob <= 0.0:
            return False
        if prob >= 1.0:
            return True
        return bool(self.rng.random() < prob)

    def pick(self, n: int) -> int:
        """A uniform index in ``[0, n)``; a single choice consumes no random number."""
        return 0 if n <= 1 else int(self.rng.integers(n))


def image_part(ctx: RenderContext, index: int, cmap: CoordMap) -> ImagePart:
    return ImagePart(ctx.record.images[index].path, cmap.orig_size, cmap.resized_size)


def class_list(record: Record, opts: RenderOptions) -> list[str]:
    spec = opts.classes or record.meta.get("class_list") or record.meta.get("classes")
    if isinstance(spec, str):
        return list(get_classes(spec))
    if isinstance(spec, list) and spec:
        return [str(c) for c in spec]
    raise InputError(f"{record.uid}: no class list (set meta.class_list or the classes option)")
