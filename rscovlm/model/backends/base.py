"""The :class:`Backend` protocol every inference backend implements, and its parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.resolution import PixelBand

__all__ = [
    "Backend",
    "FinishReason",
    "Generation",
    "GenerationParams",
    "ImageLists",
    "Usage",
    "check_image_lists",
    "texts",
]

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


@dataclass(frozen=True)
class Usage:
    """Token counts of one generation (``None`` where the backend cannot tell)."""

    prompt_tokens: int | None = None
    """Tokens of the prompt as the model saw it (pads expanded; padding of a batch not
    counted)."""
    completion_tokens: int | None = None
    """Tokens generated, the stop token included."""
    image_tokens: int | None = None
    """Visual tokens among the prompt tokens."""


FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One reply and what it cost: returned together, so a caller never has to ask the backend
    afterwards (which would race between concurrent callers).

    Attributes:
        text: The reply, decoded as WIRE §1.4 says (``<think>`` stripped when asked).
        usage: Its token counts.
        finish_reason: ``stop`` (a stop token), ``length`` (the token budget ran out) or
            ``None`` when the backend cannot tell.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | None = None


def texts(generations: Sequence[Generation]) -> list[str]:
    """The reply texts of ``generations``, in order (for callers that need no usage)."""
    return [g.text for g in generations]


@runtime_checkable
class Backend(Protocol):
    """Generates one reply per conversation, batched.

    Attributes:
        family: The model family (``qwen2_5_vl`` …): box coordinates and image sizes follow it.
        band: The pixel band images are resized into before they are sent (a checkpoint's
            own band by default, see :func:`rscovlm.model.manifest.checkpoint_band`).
    """

    family: str
    band: PixelBand

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """The reply to each conversation with its usage, in order.

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
