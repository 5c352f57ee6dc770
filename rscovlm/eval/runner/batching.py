"""Turning samples into batches a backend runs fast, with images read and resized ONCE.

- :func:`prepare` builds a sample's conversation at the run's pixel band: the original size is
  read from the file header where the annotation gives none, and ``smart_resize`` (through
  :meth:`EvalSample.conversation`, i.e. :class:`~rscovlm.resolution.CoordMap`'s sizes) fixes
  the resized size. Every backend gets these conversations AND the pixels loaded here, so HF,
  vLLM and an OpenAI-compatible endpoint see the same pixels and the same chat text.
- :func:`plan_batches` sorts by visual tokens (similar lengths pad little) with the image as
  the tie-break, so the many questions of one image (LRS-VQA: 7,333 over 1,657 images) sit
  next to each other and share one decode through :class:`ImageCache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation, ImagePart
from rscovlm.eval.benchmarks.base import UNKNOWN_SIZE, EvalSample
from rscovlm.imaging import image_size
from rscovlm.model.encoding import load_part_image
from rscovlm.resolution import PixelBand

__all__ = ["ImageCache", "Job", "Prepared", "plan_batches", "prepare"]


@dataclass(frozen=True)
class Job:
    """One sample to run: its benchmark, the sample and the folder its images live under."""

    bench: str
    sample: EvalSample
    root: Path

    @property
    def key(self) -> tuple[str, str]:
        return (self.bench, self.sample.id)


@dataclass(frozen=True)
class Prepared:
    """A job with its conversation at the run's band (or why it could not be built)."""

    job: Job
    conversation: Conversation | None
    error: str | None = None

    parts: tuple[ImagePart, ...] = field(init=False, repr=False, compare=False)
    """The conversation's image parts (``()`` without one)."""
    tokens: int = field(init=False, repr=False, compare=False)
    """Visual tokens of the conversation (the batch plan sorts by them)."""
    image_key: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The image sources (the batch plan groups one image's questions by them)."""

    def __post_init__(self) -> None:
        # the conversation never changes after prepare: its parts are walked once here, not on
        # every sort key, cache lookup and journal line (the runner's per-sample cost is µs)
        conv = self.conversation
        parts = tuple(conv.image_parts()) if conv is not None else ()
        factor = conv.family.factor if conv is not None else 1
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "tokens", sum(p.pad_tokens(factor) for p in parts))
        object.__setattr__(self, "image_key", tuple(p.source for p in parts))

    def sizes(self) -> dict[str, list[int]]:
        """``orig_size``/``resized_size`` of the first image (what box scorers map with)."""
        if not self.parts:
            return {}
        first = self.parts[0]
        return {"orig_size": list(first.orig_size), "resized_size": list(first.resized_size)}


def _resolve(root: Path, source: str) -> Path:
    path = Path(source)
    return path if path.is_absolute() else root / path


def prepare(job: Job, band: PixelBand) -> Prepared:
    """The job's conversation resized into ``band`` (never raises: a bad image is an error)."""
    sample = job.sample
    try:
        parts = sample.image_parts()
        sizes = None
        if any(p.orig_size == UNKNOWN_SIZE for p in parts):
            sizes = [
                image_size(_resolve(job.root, p.source))
                if p.orig_size == UNKNOWN_SIZE
                else p.orig_size
                for p in parts
            ]
        return Prepared(job, sample.conversation(band, sizes))
    except Exception as exc:  # one bad sample is recorded, never a crash
        return Prepared(job, None, f"{type(exc).__name__}: {exc}")


def plan_batches(items: Sequence[Prepared], batch_size: int) -> list[list[Prepared]]:
    """Batches of at most ``batch_size``, sorted by visual tokens then image then id."""
    ordered = sorted(items, key=lambda p: (p.tokens, p.image_key, p.job.bench, p.job.sample.id))
    return [list(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]


class ImageCache:
    """Decoded, resized pixels of the images of the current and the previous batch.

    Keyed by (resolved source, window, resized size): a question about an image already
    decoded for the batch before reuses its pixels. ``n_decoded`` counts real reads (tests and
    the throughput benchmark check it).
    """

    def __init__(self) -> None:
        self._current: dict[Any, Any] = {}
        self._previous: dict[Any, Any] = {}
        self.n_decoded = 0

    def next_batch(self) -> None:
        """Forget images older than the previous batch."""
        self._previous, self._current = self._current, {}

    def get(self, part: ImagePart, root: Path) -> Any:
        key = (str(_resolve(root, part.source)), part.window, part.resized_size)
        image = self._current.get(key)
        if image is None:
            image = self._previous.get(key)
        if image is None:
            image = load_part_image(part, root)
            self.n_decoded += 1
        self._current[key] = image
        return image

    def images(self, item: Prepared) -> list[Any]:
        """The pixels of every image part of ``item``, in order."""
        assert item.conversation is not None
        return [self.get(p, item.job.root) for p in item.parts]
