"""Conversations → model inputs: the one encoder inference and training share.

:func:`encode` turns a batch of :class:`~rscovlm.data.conversation.Conversation` into the
tensors a Qwen-VL ``*ForConditionalGeneration`` takes: ``input_ids``, ``attention_mask``,
``pixel_values``, ``image_grid_thw``, ``mm_token_type_ids`` (always: transformers 5 computes the
multimodal rope only with it), and optionally assistant-only ``labels`` (WIRE §1.2).

- The text is exactly :func:`rscovlm.data.conversation.chat_text` with expanded pads (the
  default system turn for Qwen2/2.5-VL, none for Qwen3-VL).
- It is tokenised as one string (``add_special_tokens=False``), so the ids equal the chat
  template's even where a token spans a segment boundary (an answer starting with ``\\n``: the
  original trainer's segment-by-segment tokenisation split that ``\\n\\n``); labels come from
  the characters each token covers. The supervised characters are the assistant bodies plus
  their ``<|im_end|>``; the ``\\n`` after it, every header and all user/system content are
  ``-100``.
- Each image is resized to its part's ``resized_size`` with PIL bicubic (WIRE §7.2) and fed to
  the image processor with ``do_resize=False``; the pad count is checked against the grid.

Images come from :func:`load_part_image`: a part's ``source`` path (relative to ``root``) with
its ``window`` read lazily — whole small images through PIL, huge rasters by decimated windowed
reads, crops at native pixels — or from the caller (in-memory images, one per image part).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rscovlm.data.conversation import (
    Conversation,
    ImagePart,
    VideoPart,
    chat_text,
)
from rscovlm.data.tasks import question_conversation
from rscovlm.errors import InputError
from rscovlm.extras import require_torch
from rscovlm.formats.prompts import CHAT_IM_START
from rscovlm.formats.tokens import PAD_ID
from rscovlm.imaging import read_region
from rscovlm.resolution import RSCOVLM_BAND, CoordMap, PixelBand, get_family

__all__ = [
    "IGNORE_INDEX",
    "PAD_TOKEN_ID",
    "EncodedBatch",
    "count_tokens",
    "encode",
    "image_part",
    "load_conversation_images",
    "load_part_image",
    "prepare_image",
    "question_conversation",
    "segments",
]

IGNORE_INDEX = -100
PAD_TOKEN_ID = PAD_ID
"""``<|endoftext|>``, the pad of every Qwen2-tokenizer model (WIRE §1.3)."""


@dataclass
class EncodedBatch:
    """Model inputs of a batch, plus the rendered text of each conversation."""

    inputs: dict[str, Any]
    """``input_ids``, ``attention_mask``, ``mm_token_type_ids``, and when there are images
    ``pixel_values`` and ``image_grid_thw``; ``labels`` when asked for."""
    texts: list[str]
    """The chat text of each conversation (expanded pads)."""
    image_tokens: list[int]
    """Visual tokens per conversation."""


def image_part(
    source: str | Path,
    size: tuple[int, int],
    band: PixelBand = RSCOVLM_BAND,
    family: str = "qwen2_5_vl",
    window: tuple[int, int, int, int] | None = None,
) -> ImagePart:
    """An :class:`ImagePart` for ``source`` (``size`` = its ``(w, h)``) resized into ``band``.

    With a ``window`` the part is that crop of the source and ``size`` is ignored.
    """
    if window is not None:
        x1, y1, x2, y2 = (int(v) for v in window)
        size = (x2 - x1, y2 - y1)
    cmap = CoordMap.for_image(int(size[0]), int(size[1]), band, family)
    return ImagePart(str(source), cmap.orig_size, cmap.resized_size, window)


def _resolve(source: str, root: str | Path | None) -> Path:
    path = Path(source)
    if root is not None and not path.is_absolute():
        path = Path(root) / path
    return path


def load_part_image(part: ImagePart, root: str | Path | None = None) -> Image.Image:
    """The pixels of ``part`` at its ``resized_size``, RGB, read without a full decode.

    The window (or whole image) is read by :func:`rscovlm.imaging.read_region`: native pixels
    then a PIL bicubic resize when the region is small, a decimated windowed read for a huge
    region (e.g. the overview of a 20000² GeoTIFF).

    Raises:
        InputError: The source cannot be read.
    """
    return read_region(_resolve(part.source, root), part.window, part.resized_size)


def load_conversation_images(
    conversation: Conversation, root: str | Path | None = None
) -> list[Image.Image]:
    """One loaded image per image part of ``conversation`` (video frames included)."""
    return [load_part_image(p, root) for p in conversation.image_parts()]


def prepare_image(image: Any, part: ImagePart) -> Image.Image:
    """``image`` (PIL or HWC uint8 array) as RGB (alpha on white) at ``part.resized_size``."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise InputError(f"expected a PIL image or an array, got {type(image).__name__}")
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba).convert("RGB")
        else:
            image = image.convert("RGB")
    if image.size != tuple(part.resized_size):
        image = image.resize(tuple(part.resized_size), Image.Resampling.BICUBIC)
    return image


def segments(
    conversation: Conversation, *, add_generation_prompt: bool = False, expand_pads: bool = True
) -> list[tuple[str, bool]]:
    """The chat text cut into ``(text, supervised)`` pieces whose concatenation is
    :func:`chat_text`; supervised pieces are each assistant body with its ``<|im_end|>``."""
    default_system = conversation.family.name != "qwen3_vl"
    full = chat_text(
        conversation,
        expand_pads=expand_pads,
        add_generation_prompt=add_generation_prompt,
        default_system=default_system,
    )
    out: list[tuple[str, bool]] = []
    cursor = 0
    msgs = conversation.messages
    for i, msg in enumerate(msgs):
        if msg.role != "assistant":
            continue
        prefix = dataclasses.replace(conversation, messages=msgs[: i + 1])
        end = len(
            chat_text(prefix, expand_pads=expand_pads, default_system=default_system)
        )  # just after this message's trailing "\n"
        alone = dataclasses.replace(conversation, messages=[msg])
        block = len(chat_text(alone, expand_pads=expand_pads, default_system=False))
        body_start = end - block + len(f"{CHAT_IM_START}assistant\n")
        if full[body_start - len("assistant\n") : body_start] != "assistant\n":
            raise AssertionError("chat layout changed: assistant header not where expected")
        if body_start > cursor:
            out.append((full[cursor:body_start], False))
        out.append((full[body_start : end - 1], True))
        cursor = end - 1
    if cursor < len(full):
        out.append((full[cursor:], False))
    return out


def _tokenize_with_labels(
    tokenizer: Any, pieces: list[tuple[str, bool]]
) -> tuple[list[int], list[int], str]:
    """Whole-string ids (as ``apply_chat_template`` gives them) and assistant-only labels.

    The text is tokenised once, so a merge across a segment boundary (an answer that starts
    with ``\\n`` right after ``assistant\\n`` gives one ``\\n\\n`` token) comes out as the chat
    template has it; the original trainer tokenised segment by segment and got ``\\n``, ``\\n``
    there. A token is supervised when any of its characters lie in a supervised piece.
    """
    text = "".join(piece for piece, _ in pieces)
    supervised_spans: list[tuple[int, int]] = []
    cursor = 0
    for piece, supervised in pieces:
        if supervised and piece:
            supervised_spans.append((cursor, cursor + len(piece)))
        cursor += len(piece)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    span = 0
    for index, (start, end) in enumerate(enc["offset_mapping"]):
        while span < len(supervised_spans) and supervised_spans[span][1] <= start:
            span += 1
        if span < len(supervised_spans) and end > supervised_spans[span][0] and end > start:
            labels[index] = ids[index]
    return ids, labels, text


def count_tokens(conversation: Conversation, tokenizer: Any, *, family: str | None = None) -> int:
    """Tokens of ``conversation`` as a training sample, exactly as :func:`encode` builds it
    (expanded image pads, no generation prompt), without reading an image or needing torch:
    what an export measures to set a framework's length limit and apply the over-long rule.

    Raises:
        InputError: A video part (the encoder cannot take it).
    """
    if family is not None and conversation.family.name != get_family(family).name:
        conversation = dataclasses.replace(conversation, family=get_family(family))
    if any(isinstance(p, VideoPart) for m in conversation.messages for p in m.content):
        raise InputError("video parts are not supported by the encoder")
    text = "".join(piece for piece, _ in segments(conversation))
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode(
    conversations: Sequence[Conversation],
    tokenizer: Any,
    image_processor: Any,
    *,
    family: str | None = None,
    images: Sequence[Sequence[Any] | None] | None = None,
    root: str | Path | None = None,
    add_generation_prompt: bool = True,
    labels: bool = False,
    padding_side: str = "left",
    pad_token_id: int = PAD_TOKEN_ID,
) -> EncodedBatch:
    """Encode a batch of conversations (see the module docstring).

    Args:
        conversations: The chats. Video parts are not supported here (InputError).
        tokenizer: The checkpoint's tokenizer (``LoadedModel.tokenizer``).
        image_processor: Its PIL image processor (``LoadedModel.image_processor``).
        family: The model family; the conversations' pad counts and default system follow it.
            ``None`` keeps each conversation's own family.
        images: Per conversation, one image per image part (PIL or HWC uint8 arrays, any size:
            each is resized to its part's ``resized_size``), or ``None`` to load the parts'
            sources with :func:`load_part_image`.
        root: Directory the parts' relative sources are resolved against.
        add_generation_prompt: Append ``<|im_start|>assistant\\n`` (inference).
        labels: Also return assistant-only ``labels`` (training).
        padding_side: ``left`` for generation, ``right`` for training (WIRE §1.2).
        pad_token_id: The pad id (``<|endoftext|>``).

    Raises:
        InputError: Images do not match the image parts, a resized size is not a multiple of
            the family's factor, or a video part.
        MissingExtraError: torch is missing (extra ``train``).
    """
    torch = require_torch()

    if padding_side not in ("left", "right"):
        raise InputError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    if images is not None and len(images) != len(conversations):
        raise InputError(f"{len(images)} image lists for {len(conversations)} conversations")
    all_ids: list[list[int]] = []
    all_labels: list[list[int]] = []
    texts: list[str] = []
    pil_images: list[Image.Image] = []
    tokens_per_conv: list[int] = []
    pads: list[int] = []
    for index, conv in enumerate(conversations):
        if family is not None and conv.family.name != get_family(family).name:
            conv = dataclasses.replace(conv, family=get_family(family))
        factor = conv.family.factor
        parts = conv.image_parts()
        if any(isinstance(p, VideoPart) for m in conv.messages for p in m.content):
            raise InputError("video parts are not supported by the inference encoder")
        for part in parts:
            w, h = part.resized_size
            if w % factor or h % factor:
                raise InputError(
                    f"image part resized_size {part.resized_size} is not a multiple of {factor}"
                )
        given = images[index] if images is not None else None
        if given is None:
            loaded = load_conversation_images(conv, root)
        else:
            if len(given) != len(parts):
                raise InputError(
                    f"conversation {index}: {len(given)} images for {len(parts)} image parts"
                )
            loaded = [prepare_image(img, part) for img, part in zip(given, parts, strict=True)]
        pil_images.extend(loaded)
        pads.extend(p.pad_tokens(factor) for p in parts)
        tokens_per_conv.append(sum(p.pad_tokens(factor) for p in parts))
        ids, labs, text = _tokenize_with_labels(
            tokenizer, segments(conv, add_generation_prompt=add_generation_prompt)
        )
        texts.append(text)
        all_ids.append(ids)
        all_labels.append(labs)
    inputs: dict[str, Any] = {}
    if pil_images:
        vision = image_processor(images=pil_images, return_tensors="pt", do_resize=False)
        grid = vision["image_grid_thw"]
        merge = int(getattr(image_processor, "merge_size", 2))
        expected = [int(g.prod()) // merge**2 for g in grid]
        if expected != pads:
            raise InputError(f"image token counts {pads} disagree with the grids {expected}")
        inputs["pixel_values"] = vision["pixel_values"]
        inputs["image_grid_thw"] = grid
    width = max(len(ids) for ids in all_ids) if all_ids else 0
    input_ids = torch.full((len(all_ids), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(all_ids), width), dtype=torch.long)
    label_t = torch.full((len(all_ids), width), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, labs) in enumerate(zip(all_ids, all_labels, strict=True)):
        n = len(ids)
        sl = slice(width - n, width) if padding_side == "left" else slice(0, n)
        input_ids[row, sl] = torch.tensor(ids, dtype=torch.long)
        mask[row, sl] = 1
        label_t[row, sl] = torch.tensor(labs, dtype=torch.long)
    inputs["input_ids"] = input_ids
    inputs["attention_mask"] = mask
    from rscovlm.model.loading import mm_token_type_ids

    inputs["mm_token_type_ids"] = mm_token_type_ids(input_ids)
    if labels:
        inputs["labels"] = label_t
    return EncodedBatch(inputs, texts, tokens_per_conv)
