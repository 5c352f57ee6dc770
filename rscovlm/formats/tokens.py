"""The special tokens of the Qwen2 vocabulary that rscovlm's code names, as strings and ids.

Qwen2-VL, Qwen2.5-VL and Qwen3-VL share one vocabulary: 151643 ranked byte strings followed by
added tokens at fixed ids (WIRE §1.1, §1.3). The chat layout, the encoder, the collators, the
backends' stop condition and the tiny checkpoints all need some of them; they read them here
so that an id is written down once. ``rscovlm.model.tokenizer`` holds the full added-token
table the tokenizer is built from, and a test checks both agree (the ids here are what a
*built* tokenizer returns for these strings).

>>> IM_END, IM_END_ID
('<|im_end|>', 151645)
>>> TOKEN_IDS[IMAGE_PAD] == IMAGE_PAD_ID
True
"""

from __future__ import annotations

__all__ = [
    "ENDOFTEXT",
    "ENDOFTEXT_ID",
    "EOS_ID",
    "IMAGE_PAD",
    "IMAGE_PAD_ID",
    "IM_END",
    "IM_END_ID",
    "IM_START",
    "IM_START_ID",
    "PAD_ID",
    "STOP_IDS",
    "TOKEN_IDS",
    "VIDEO_PAD",
    "VIDEO_PAD_ID",
    "VISION_END",
    "VISION_END_ID",
    "VISION_START",
    "VISION_START_ID",
]

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"

ENDOFTEXT_ID = 151643
IM_START_ID = 151644
IM_END_ID = 151645
VISION_START_ID = 151652
VISION_END_ID = 151653
IMAGE_PAD_ID = 151655
VIDEO_PAD_ID = 151656

PAD_ID = ENDOFTEXT_ID
"""The pad of every Qwen2-tokenizer model (``<|endoftext|>``, WIRE §1.3)."""
EOS_ID = IM_END_ID
"""The end of an assistant turn: what chat models stop on."""
STOP_IDS = (IM_END_ID, ENDOFTEXT_ID)
"""Generation stops at either: a turn's end or the pad (the released generation config)."""

TOKEN_IDS: dict[str, int] = {
    ENDOFTEXT: ENDOFTEXT_ID,
    IM_START: IM_START_ID,
    IM_END: IM_END_ID,
    VISION_START: VISION_START_ID,
    VISION_END: VISION_END_ID,
    IMAGE_PAD: IMAGE_PAD_ID,
    VIDEO_PAD: VIDEO_PAD_ID,
}
"""String → id of every token above (the test cross-checks it with the tokenizer's table)."""
