"""The strings added for rendering (chat layout, TEOChatlas cleanup), against WIRE_FORMATS.md."""

from __future__ import annotations

import os
from pathlib import Path

from rscovlm import formats
from rscovlm.formats import prompts as p

WIRE = Path(
    os.environ.get(
        "RSCOVLM_WIRE_FORMATS",
        Path(__file__).resolve().parents[3] / "shared" / "WIRE_FORMATS.md",
    )
)


def test_chat_layout_tokens_are_the_qwen_special_tokens() -> None:
    assert (p.CHAT_IM_START, p.CHAT_IM_END) == ("<|im_start|>", "<|im_end|>")
    assert (p.CHAT_VISION_START, p.CHAT_VISION_END) == ("<|vision_start|>", "<|vision_end|>")
    assert (p.CHAT_IMAGE_PAD, p.CHAT_VIDEO_PAD) == ("<|image_pad|>", "<|video_pad|>")
    assert formats.CHAT_IMAGE_PAD == p.CHAT_IMAGE_PAD


def test_teochat_cleanup_strings_are_byte_exact() -> None:
    assert p.TEOCHAT_USER_REPLACEMENTS == ((". ?", "."), (".. ", "."))
    assert p.TEOCHAT_CATEGORY_REMOVALS[0] == "This is a satellite image:"
    assert p.TEOCHAT_CATEGORY_REMOVALS[-1] == "What is "
    assert len(p.TEOCHAT_CATEGORY_REMOVALS) == 9


def test_render_strings_appear_verbatim_in_the_wire_spec() -> None:
    spec = WIRE.read_text(encoding="utf-8")
    tokens = [
        p.CHAT_IM_START,
        p.CHAT_IM_END,
        p.CHAT_VISION_START,
        p.CHAT_VISION_END,
        p.CHAT_IMAGE_PAD,
        p.CHAT_VIDEO_PAD,
    ]
    for value in [*tokens, *p.TEOCHAT_CATEGORY_REMOVALS]:
        assert f"`{value}" in spec or value in spec, value
    for old, new in p.TEOCHAT_USER_REPLACEMENTS:
        assert f'`"{old}"`→`"{new}"`' in spec


def test_bracket_box_is_the_teochat_in_text_form() -> None:
    assert p.bracket_box([12, 3, 40, 56]) == "[12, 3, 40, 56]"
    assert formats.bracket_box((0, 0, 1, 1)) == "[0, 0, 1, 1]"
