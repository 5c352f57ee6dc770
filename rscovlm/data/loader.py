"""The online loader: mixture -> record -> rendered conversation with its resized images.

:class:`ConversationLoader` walks a :class:`~rscovlm.data.mixture.Mixture`, fetches each record
from a :class:`RecordStore`, renders it with a generator seeded by ``(seed, epoch, global
position)`` (so the sample is the same whatever the number of workers, ranks or restarts) and
loads its images at the drawn sizes. It yields :class:`Sample` objects in mixture order; with
``num_workers > 0`` fetches run in worker processes, at most ``num_workers × prefetch`` ahead.

Images: each file is decoded at most once per fetch (a zoom sample's overview and crop share
one decode); RGBA is composited on white, then the image is resized with bicubic resampling
(WIRE §7.2). Images above ``max_decode_pixels`` are never decoded whole: the overview is read
decimated and a crop window by window through rasterio (:func:`rscovlm.imaging.read_window`).

A sample whose record or image is bad is reported in :attr:`ConversationLoader.report` and
skipped: ``fetched = yielded + skipped`` always holds. The record stores live in
:mod:`rscovlm.data._stores`, the worker processes in :mod:`rscovlm.data._workers`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rscovlm.data._stores import ListStore, RecordStore, ShardStore
from rscovlm.data._workers import Workers, in_order
from rscovlm.data.conversation import Conversation, ImagePart, chat_text
from rscovlm.data.mixture import Mixture, MixtureItem
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Record
from rscovlm.data.render import render
from rscovlm.errors import InputError
from rscovlm.imaging import open_image_checked, read_window

__all__ = [
    "ConversationLoader",
    "ListStore",
    "LoaderReport",
    "RecordStore",
    "Sample",
    "ShardStore",
    "fetch_sample",
    "load_images",
]

log = logging.getLogger(__name__)

#: Images above this many pixels are read through rasterio windows instead of decoded whole.
DEFAULT_MAX_DECODE_PIXELS = 64 * 1024 * 1024
_DATA_ERRORS = (InputError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass
class Sample:
    """One rendered sample and its images, ready for a model's processor.

    Attributes:
        conversation: The rendered conversation.
        images: One RGB image per :meth:`Conversation.image_parts` entry (video frames
            included), each at its part's resized size.
        item: The mixture item it was drawn for (``None`` outside a mixture).
    """

    conversation: Conversation
    images: list[Image.Image]
    item: MixtureItem | None = None

    def messages(self) -> list[dict[str, Any]]:
        """The chat with the decoded images in place (``processor.apply_chat_template`` input)."""
        return self.conversation.to_messages(self.images)

    def text(self) -> str:
        """The chat text in the Qwen layout, one pad per image (the processor expands it)."""
        return chat_text(self.conversation)


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparency composited on white (``qwen_vl_utils.to_rgb``)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img.convert("RGB")


def _from_array(pixels: np.ndarray) -> Image.Image:
    if pixels.shape[-1] == 1:
        return Image.fromarray(pixels[..., 0]).convert("RGB")
    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]))


def load_images(
    conversation: Conversation,
    root: str | Path,
    *,
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
    full_size: Mapping[str, tuple[int, int]] | None = None,
) -> list[Image.Image]:
    """The conversation's images at their drawn sizes, each file decoded at most once.

    Args:
        conversation: A rendered conversation.
        root: Data root the image sources are relative to.
        max_decode_pixels: Larger images are read through rasterio windows.
        full_size: ``(width, height)`` of each source file when known (saves header reads).

    Raises:
        InputError: A file is missing, unreadable or corrupt.
    """
    root = Path(root)
    decoded: dict[str, Image.Image] = {}
    out = []
    for part in conversation.image_parts():
        out.append(_load_part(part, root, decoded, max_decode_pixels, full_size or {}))
    return out


def _full_size(
    part: ImagePart, root: Path, sizes: Mapping[str, tuple[int, int]]
) -> tuple[int, int]:
    if part.window is None:
        return part.orig_size
    if part.source in sizes:
        return sizes[part.source]
    from rscovlm.imaging import image_size

    return image_size(root / part.source)


def _load_part(
    part: ImagePart,
    root: Path,
    decoded: dict[str, Image.Image],
    limit: int,
    sizes: Mapping[str, tuple[int, int]],
) -> Image.Image:
    path = root / part.source
    width, height = _full_size(part, root, sizes)
    if part.source not in decoded and width * height > limit:
        if part.window is None:
            pixels = read_window(path, 0, 0, width, height, out_size=part.resized_size)
            return _from_array(pixels)
        x1, y1, x2, y2 = part.window
        img = _from_array(read_window(path, x1, y1, x2 - x1, y2 - y1))
    else:
        if part.source not in decoded:
            decoded[part.source] = _to_rgb(open_image_checked(path, max(limit, width * height)))
        img = decoded[part.source]
        if part.window is not None:
            img = img.crop(part.window)  # outside the image PIL pads with black, as trained
    if img.size != part.resized_size:
        img = img.resize(part.resized_size, Image.Resampling.BICUBIC)
    return img


def fetch_sample(
    record: Record,
    rng: np.random.Generator,
    policy: RenderPolicy,
    root: str | Path,
    *,
    dataset: str | None = None,
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
) -> Sample:
    """Render ``record`` and load its images: the whole online path for one sample."""
    conv = render(record, rng, policy, root=root, dataset=dataset)
    sizes = {
        ref.path: (ref.width, ref.height)
        for ref in record.images
        if ref.width is not None and ref.height is not None
    }
    images = load_images(conv, root, max_decode_pixels=max_decode_pixels, full_size=sizes)
    return Sample(conv, images)


@dataclass
class LoaderReport:
    """What the loader did: ``fetched = yielded + skipped``; ``skips`` are (uid, reason)."""

    fetched: int = 0
    yielded: int = 0
    skipped: int = 0
    skips: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Skip:
    item: MixtureItem
    uid: str
    reason: str


@dataclass(frozen=True)
class _Job:
    store: RecordStore
    policy: RenderPolicy
    root: Path
    seed: int
    max_decode_pixels: int

    def __call__(self, item: MixtureItem) -> Sample | _Skip:
        uid = f"{item.source}[{item.index}]"
        try:
            record = self.store.get(item.source, item.index)
            uid = record.uid
            rng = np.random.default_rng([self.seed, *item.key])
            sample = fetch_sample(
                record,
                rng,
                self.policy,
                self.root,
                dataset=item.entry,
                max_decode_pixels=self.max_decode_pixels,
            )
        except _DATA_ERRORS as exc:
            return _Skip(item, uid, f"{type(exc).__name__}: {exc}")
        sample.item = item
        return sample


class ConversationLoader:
    """Iterate rendered samples of a mixture (see the module docstring).

    Args:
        mixture: The sample stream (its state is this loader's position).
        store: Where the records are.
        policy: Render policy (default: the paper's).
        root: Data root of the image paths.
        seed: Render seed (default: the mixture's).
        num_workers: Worker processes; 0 fetches in the calling process.
        prefetch: Samples in flight per worker.
        max_decode_pixels: Images above this are read through rasterio windows.
        mp_context: ``fork``, ``spawn`` or ``forkserver`` (default: ``fork`` on Linux).
    """

    def __init__(
        self,
        mixture: Mixture,
        store: RecordStore,
        policy: RenderPolicy | None = None,
        root: str | Path = ".",
        *,
        seed: int | None = None,
        num_workers: int = 0,
        prefetch: int = 2,
        max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
        mp_context: str | None = None,
    ) -> None:
        if num_workers < 0 or prefetch < 1:
            raise InputError(
                f"need num_workers >= 0 and prefetch >= 1, got {num_workers}, {prefetch}"
            )
        self.mixture = mixture
        self.num_workers, self.prefetch = num_workers, prefetch
        self.mp_context = mp_context or ("fork" if sys.platform.startswith("linux") else "spawn")
        self._job = _Job(
            store,
            policy if policy is not None else RenderPolicy.paper(),
            Path(root),
            mixture.seed if seed is None else int(seed),
            max_decode_pixels,
        )
        self.report = LoaderReport()
        self._state = mixture.state_dict()

    def _account(self, result: Sample | _Skip) -> Sample | None:
        item = result.item
        assert item is not None
        self.report.fetched += 1
        self._state = {
            "epoch": item.epoch,
            "position": item.position + 1,
            "fingerprint": self.mixture.fingerprint(),
        }
        if isinstance(result, _Skip):
            self.report.skipped += 1
            self.report.skips.append((result.uid, result.reason))
            log.warning("skipped %s: %s", result.uid, result.reason)
            return None
        self.report.yielded += 1
        return result

    def __iter__(self) -> Iterator[Sample]:
        self.mixture.load_state_dict(self._state)
        if self.num_workers == 0:
            for item in self.mixture:
                sample = self._account(self._job(item))
                if sample is not None:
                    yield sample
            return
        workers = Workers(self.mp_context, self.num_workers, self._job)
        try:
            depth = self.num_workers * self.prefetch
            for result in in_order(workers, iter(self.mixture), depth):
                sample = self._account(result)
                if sample is not None:
                    yield sample
        finally:
            workers.close()

    def state_dict(self) -> dict[str, Any]:
        """Resume point: the mixture state just after the last sample handed out or skipped."""
        return {"mixture": dict(self._state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` (validated against the mixture)."""
        self.mixture.load_state_dict(state["mixture"])
        self._state = dict(state["mixture"])
