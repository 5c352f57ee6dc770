"""Samples → training tensors, with the over-long rule (issue 6, Build 2).

:func:`encode_sample` is a thin wrapper of :func:`rscovlm.model.encoding.encode` (the one
encoder inference and training share: ids identical to the official chat template, labels on
exactly the assistant bodies and their ``<|im_end|>``) for one rendered sample.

:class:`OverlongFitter` applies ``data.overlong`` to a sample longer than ``train.max_length``.
A sample is never cut — a cut could fall inside an image span, and the original code's
truncation trained detection answers cut mid-line without their ``<|im_end|>`` (WIRE §1.2):

- ``drop``: the sample is left out and counted;
- ``rerender``: the record is rendered again, with the same random generator, in a lower pixel
  band — the band's ``max_pixels`` halved (never below its ``min_pixels``) until the sample
  fits. The targets are rewritten for the new size by ``render`` itself, so box coordinates
  stay right. A sample still too long at ``min_pixels`` (or without images, or with no way to
  re-render it) is dropped and counted.

Counts always add up: ``seen = kept + dropped``, and ``rerendered`` of the kept ones were
re-rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rscovlm.data.policy import RenderOptions, RenderPolicy
from rscovlm.data.record import Record

__all__ = [
    "OverlongCounts",
    "OverlongFitter",
    "OverlongMode",
    "ShrunkBandPolicy",
    "encode_sample",
    "record_rerenderer",
    "sample_length",
]

OverlongMode = Literal["drop", "rerender"]


def encode_sample(sample: Any, tokenizer: Any, image_processor: Any, family: str) -> dict[str, Any]:
    """Per-sample tensors of a :class:`~rscovlm.data.loader.Sample` (batch of one, no mask).

    Raises:
        InputError: The encoder cannot take the conversation (e.g. a video part).
    """
    from rscovlm.model.encoding import encode

    encoded = encode(
        [sample.conversation],
        tokenizer,
        image_processor,
        family=family,
        images=[sample.images],
        add_generation_prompt=False,
        labels=True,
        padding_side="right",
    )
    return {k: v for k, v in encoded.inputs.items() if k != "attention_mask"}


def sample_length(encoded: dict[str, Any]) -> int:
    """Tokens of one encoded sample."""
    return int(encoded["input_ids"].shape[-1])


class ShrunkBandPolicy(RenderPolicy):
    """A render policy whose every band has its ``max_pixels`` halved ``halvings`` times,
    never below its ``min_pixels`` (the over-long re-render)."""

    halvings: int = 0

    @classmethod
    def of(cls, policy: RenderPolicy, halvings: int) -> ShrunkBandPolicy:
        """``policy`` with its bands shrunk by ``halvings`` halvings."""
        fields = policy.model_dump(exclude={"halvings"})
        return cls(**fields, halvings=halvings)

    def options_for(self, record: Record, dataset: str | None = None) -> RenderOptions:
        opts = super().options_for(record, dataset)
        top = max(opts.min_pixels, opts.max_pixels >> self.halvings)
        return opts if top == opts.max_pixels else opts.updated({"max_pixels": top})


@dataclass
class OverlongCounts:
    """What the over-long rule did (``seen = kept + dropped``)."""

    seen: int = 0
    kept: int = 0
    rerendered: int = 0
    """Kept samples that fit only after a re-render at a lower band."""
    dropped: int = 0
    """Samples left out: over-long at the lowest band, or in ``drop`` mode."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Rerender = Callable[[Any, int], Any]
"""``rerender(sample, halvings)``: the sample rendered again with its bands halved
``halvings`` times (same generator), its images loaded; ``None`` once the band was already
at its ``min_pixels`` floor for ``halvings - 1``."""


class OverlongFitter:
    """Encode samples and apply the over-long rule (module docstring).

    Args:
        encode: ``encode(sample) -> tensors`` (e.g. :func:`encode_sample` bound to a tokenizer).
        max_length: Longest sample kept, in tokens (``None``: no limit).
        mode: ``drop`` or ``rerender``.
        rerender: How to re-render a sample (``rerender`` mode); without it over-long samples
            are dropped.
        max_halvings: At most this many halvings are tried (a safety bound; the band's
            ``min_pixels`` normally stops it first).
    """

    def __init__(
        self,
        encode: Callable[[Any], dict[str, Any]],
        max_length: int | None,
        mode: OverlongMode = "drop",
        rerender: Rerender | None = None,
        max_halvings: int = 16,
    ) -> None:
        if mode not in ("drop", "rerender"):
            raise ValueError(f"overlong mode must be drop or rerender, got {mode!r}")
        self.encode, self.max_length, self.mode = encode, max_length, mode
        self.rerender, self.max_halvings = rerender, max_halvings
        self.counts = OverlongCounts()
        self.dropped_uids: list[str] = []
        self.last_length = 0
        """Tokens of the last encoding tried (of a dropped sample: at its lowest band)."""

    def _fits(self, encoded: dict[str, Any]) -> bool:
        self.last_length = sample_length(encoded)
        return self.max_length is None or sample_length(encoded) <= self.max_length

    def __call__(self, sample: Any) -> dict[str, Any] | None:
        """The sample's tensors, or ``None`` when it is dropped (counted)."""
        self.counts.seen += 1
        encoded = self.encode(sample)
        if self._fits(encoded):
            self.counts.kept += 1
            return encoded
        if self.mode == "rerender" and self.rerender is not None:
            sizes = _image_sizes(sample)
            for halvings in range(1, self.max_halvings + 1 if sizes else 1):
                again = self.rerender(sample, halvings)
                if again is None:
                    break  # every band is at its floor
                if _image_sizes(again) == sizes:
                    continue  # the images were already below the lowered band
                sizes = _image_sizes(again)
                encoded = self.encode(again)
                if self._fits(encoded):
                    self.counts.kept += 1
                    self.counts.rerendered += 1
                    return encoded
        self.counts.dropped += 1
        self.dropped_uids.append(str(sample.conversation.meta.get("uid", "?")))
        return None


def _image_sizes(sample: Any) -> tuple[tuple[int, int], ...]:
    """The resized sizes of a sample's images."""
    return tuple(tuple(p.resized_size) for p in sample.conversation.image_parts())


def record_rerenderer(store: Any, policy: RenderPolicy, root: Any, seed: int) -> Rerender:
    """The :data:`Rerender` of samples drawn by a :class:`~rscovlm.data.loader.ConversationLoader`
    over ``store`` with ``policy``, ``root`` and render ``seed``.

    The record is fetched again and rendered with the loader's generator for that mixture
    position (``default_rng([seed, epoch, global position])``), so only the band changes.
    """
    import numpy as np

    from rscovlm.data.loader import fetch_sample
    from rscovlm.errors import InputError

    def rerender(sample: Any, halvings: int) -> Any:
        item = sample.item
        if item is None:
            return None
        try:
            record = store.get(item.source, item.index)
            opts = policy.options_for(record, item.entry)
            if max(opts.min_pixels, opts.max_pixels >> (halvings - 1)) <= opts.min_pixels:
                return None
            rng = np.random.default_rng([seed, *item.key])
            shrunk = ShrunkBandPolicy.of(policy, halvings)
            again = fetch_sample(record, rng, shrunk, root, dataset=item.entry)
        except (InputError, OSError, ValueError):
            return None
        again.item = item
        return again

    return rerender
