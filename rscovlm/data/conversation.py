"""Conversations in the Qwen / OpenAI chat shape, as :func:`rscovlm.data.render.render` writes them.

A :class:`Conversation` is a list of :class:`Message` (``system`` / ``user`` / ``assistant``),
each with ordered content parts: :class:`TextPart`, :class:`ImagePart` or :class:`VideoPart`.
An image part says where its pixels come from and at which size the model sees them:

- ``source``: the image path, relative to the data root (as in the record);
- ``window``: ``(x1, y1, x2, y2)`` integer pixels of the source to cut out first (a Zoom-in
  Chain crop), or ``None`` for the whole image;
- ``orig_size``: ``(width, height)`` of what is fed before resizing (the window's size for a
  crop), the *original* space of this part's :class:`~rscovlm.resolution.CoordMap`;
- ``resized_size``: ``(width, height)`` drawn for this fetch (both multiples of the factor).

:func:`chat_text` writes the Qwen2/2.5-VL chat layout (WIRE §1.1) that training tokenises, with
one ``<|image_pad|>`` per image by default (the processor expands it) or the expanded count.
:meth:`Conversation.to_messages` gives the list of dicts a Hugging Face processor or
``qwen_vl_utils`` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rscovlm.errors import InputError
from rscovlm.formats.prompts import (
    CHAT_IM_END,
    CHAT_IM_START,
    CHAT_IMAGE_PAD,
    CHAT_VIDEO_PAD,
    CHAT_VISION_END,
    CHAT_VISION_START,
    DEFAULT_SYSTEM_PROMPT,
)
from rscovlm.resolution import DEFAULT_FAMILY, CoordMap, ModelFamily, get_family

__all__ = [
    "Conversation",
    "ImagePart",
    "Message",
    "Part",
    "Role",
    "TextPart",
    "VideoPart",
    "chat_text",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class TextPart:
    """Text, verbatim."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    """One image as the model sees it (see the module docstring for the fields)."""

    source: str
    orig_size: tuple[int, int]
    resized_size: tuple[int, int]
    window: tuple[int, int, int, int] | None = None
    type: Literal["image"] = "image"

    def coord_map(self, family: ModelFamily | str = DEFAULT_FAMILY) -> CoordMap:
        """The map between this part's original pixels and the model's coordinates."""
        return CoordMap(self.orig_size, self.resized_size, family)

    def pad_tokens(self, factor: int = 28) -> int:
        """Visual tokens the image costs: (H/factor)·(W/factor) (WIRE §1.1)."""
        width, height = self.resized_size
        return (height // factor) * (width // factor)


@dataclass(frozen=True)
class VideoPart:
    """Frames fed as one video item (TEOChatlas temporal samples, GeoChat single frames)."""

    frames: tuple[ImagePart, ...]
    type: Literal["video"] = "video"

    def pad_tokens(self, factor: int = 28) -> int:
        """``(T/2)·(H/factor)·(W/factor)`` with T padded up to even (WIRE §1.1)."""
        frames = len(self.frames) + len(self.frames) % 2
        return frames // 2 * self.frames[0].pad_tokens(factor)


Part = TextPart | ImagePart | VideoPart


@dataclass(frozen=True)
class Message:
    """One chat message: a role and its ordered content parts."""

    role: Role
    content: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The concatenated text parts (images left out)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass
class Conversation:
    """A rendered sample: messages plus what was drawn to render it.

    Attributes:
        messages: The chat, in order. No system message means the template's default one.
        family: The model family whose coordinate convention the text uses.
        meta: Provenance and draws: record ``uid``, ``task``, ``variant`` (e.g. ``plain``,
            ``json``, ``proxy:2``, ``zoom``), and anything a caller wants to keep.
    """

    messages: list[Message]
    family: ModelFamily = field(default_factory=lambda: get_family(DEFAULT_FAMILY))
    meta: dict[str, Any] = field(default_factory=dict)

    def image_parts(self) -> list[ImagePart]:
        """Every image, video frames included, in the order the model sees them."""
        out: list[ImagePart] = []
        for msg in self.messages:
            for part in msg.content:
                if isinstance(part, ImagePart):
                    out.append(part)
                elif isinstance(part, VideoPart):
                    out.extend(part.frames)
        return out

    def to_messages(self, images: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The OpenAI / Qwen list-of-dicts shape.

        Args:
            images: Decoded images, one per entry of :meth:`image_parts` (video frames
                included), put in place of the sources; ``None`` keeps the sources and adds the
                ``resized_width``/``resized_height`` keys ``qwen_vl_utils`` reads.

        Raises:
            InputError: ``images`` does not have one entry per image part.
        """
        parts = self.image_parts()
        if images is not None and len(images) != len(parts):
            raise InputError(f"{len(images)} images for {len(parts)} image parts")
        lookup = iter(images) if images is not None else None

        def image(part: ImagePart) -> Any:
            if lookup is not None:
                return next(lookup)
            return part.source

        out: list[dict[str, Any]] = []
        for msg in self.messages:
            content: list[dict[str, Any]] = []
            for part in msg.content:
                if isinstance(part, TextPart):
                    content.append({"type": "text", "text": part.text})
                elif isinstance(part, ImagePart):
                    item = {"type": "image", "image": image(part)}
                    if lookup is None:
                        item["resized_width"], item["resized_height"] = part.resized_size
                    content.append(item)
                else:
                    frames = [image(f) for f in part.frames]
                    content.append({"type": "video", "video": frames})
            out.append({"role": msg.role, "content": content})
        return out


def _body(msg: Message, expand: bool, factor: int) -> str:
    out = []
    for part in msg.content:
        if isinstance(part, TextPart):
            out.append(part.text)
        else:
            pad = CHAT_IMAGE_PAD if isinstance(part, ImagePart) else CHAT_VIDEO_PAD
            count = part.pad_tokens(factor) if expand else 1
            out.append(CHAT_VISION_START + pad * count + CHAT_VISION_END)
    return "".join(out)


def chat_text(
    conversation: Conversation,
    *,
    expand_pads: bool = False,
    add_generation_prompt: bool = False,
    default_system: bool = True,
) -> str:
    """The conversation in the Qwen2/2.5-VL chat layout (WIRE §1.1), as training tokenises it.

    Args:
        conversation: A rendered conversation.
        expand_pads: Write ``<|image_pad|>`` (``<|video_pad|>``) as many times as the item costs
            tokens instead of once.
        add_generation_prompt: Append ``<|im_start|>assistant\\n`` (inference).
        default_system: Insert the default system turn when the first message is not a system
            message (Qwen2/2.5-VL do; Qwen3-VL does not).
    """
    factor = conversation.family.factor
    out = []
    msgs = conversation.messages
    if default_system and (not msgs or msgs[0].role != "system"):
        out.append(f"{CHAT_IM_START}system\n{DEFAULT_SYSTEM_PROMPT}{CHAT_IM_END}\n")
    for msg in msgs:
        out.append(f"{CHAT_IM_START}{msg.role}\n{_body(msg, expand_pads, factor)}{CHAT_IM_END}\n")
    if add_generation_prompt:
        out.append(f"{CHAT_IM_START}assistant\n")
    return "".join(out)
