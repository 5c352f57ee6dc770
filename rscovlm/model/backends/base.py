"""The :class:`Backend` protocol every inference backend implements, and its parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.resolution import PixelBand

__all__ = ["Backend", "GenerationParams", "ImageLists", "Usage", "check_image_lists"]

ImageLists = Sequence[Sequence[Any] | None]
"""Per conversation, one in-memory image per image part (``None``: load the parts' sources)."""


@dataclass(frozen=True)
class GenerationParams:
    """How to decode. The default is the evaluation's greedy decoding (WIRE §1.4).

    Attributes:
        max_new_tokens: Tokens to generate at most; ``None`` is the original's
            ``min(max_position_embeddings, 16384)``.
        temperature: 0 is greedy; > 0 samples.
        top_p: Nucleus mass when sampling.
        seed: Sampling seed (ignored when greedy).
        strip_think: Remove a leading ``<think>…</think>`` and strip (WIRE §1.4 step 4).
    """

    max_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    strip_think: bool = True

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise InputError(f"temperature must be ≥ 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        """Whether decoding is greedy."""
        return self.temperature == 0


@dataclass
class Usage:
    """Token counts of one generation (``None`` when the backend cannot tell)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    image_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Generates one reply per conversation, batched.

    Attributes:
        family: The model family (``qwen2_5_vl`` …): box coordinates and image sizes follow it.
        band: The pixel band images are resized into before they are sent.
        last_usage: Token counts of the last :meth:`generate` call, one per conversation.
    """

    family: str
    band: PixelBand
    last_usage: list[Usage]

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[str]:
        """The reply to each conversation, in order.

        Args:
            conversations: Chats ending in a user turn.
            params: Decoding parameters (default: greedy, WIRE §1.4).
            images: Per conversation, in-memory images (one per image part) instead of
                reading the parts' sources.
        """
        ...


def check_image_lists(conversations: Sequence[Conversation], images: ImageLists | None) -> None:
    """Every backend takes optional pre-loaded images, one list per conversation."""
    if images is not None and len(images) != len(conversations):
        raise InputError(f"{len(images)} image lists for {len(conversations)} conversations")
