"""The shared conversation → model-inputs encoder: exact text, ids, labels, pads, padding."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from rscovlm.data.conversation import Conversation, ImagePart, Message, TextPart, chat_text
from rscovlm.errors import InputError
from rscovlm.formats import ZOOM_FOLLOW_UP, ZOOM_SYSTEM_PROMPT, encode_zoom_call
from rscovlm.model.encoding import (
    IGNORE_INDEX,
    count_tokens,
    encode,
    image_part,
    question_conversation,
    segments,
)


def _zoom_conversation(tmp_path: Any) -> tuple[Conversation, list[Image.Image]]:
    src = tmp_path / "scene.png"
    Image.new("RGB", (300, 200), (90, 120, 60)).save(src)
    full = image_part(src, (300, 200))
    crop = image_part(src, (300, 200), window=(10, 20, 150, 160))
    msgs = [
        Message("system", (TextPart(ZOOM_SYSTEM_PROMPT),)),
        Message("user", (full, TextPart("What colour?\nZoom in to the region of interest."))),
        Message("assistant", (TextPart(encode_zoom_call([3, 4, 50, 60])),)),
        Message("user", (crop, TextPart(ZOOM_FOLLOW_UP))),
        Message("assistant", (TextPart("green"),)),
    ]
    return Conversation(msgs), []


def test_segments_concatenate_to_chat_text(tmp_path: Any) -> None:
    conv, _ = _zoom_conversation(tmp_path)
    pieces = segments(conv)
    assert "".join(t for t, _ in pieces) == chat_text(conv, expand_pads=True)
    supervised = [t for t, s in pieces if s]
    assert supervised == [encode_zoom_call([3, 4, 50, 60]) + "<|im_end|>", "green<|im_end|>"]


def test_labels_are_assistant_bodies_and_im_end(tiny_lm: Any, tmp_path: Any) -> None:
    conv, _ = _zoom_conversation(tmp_path)
    batch = encode(
        [conv],
        tiny_lm.tokenizer,
        tiny_lm.image_processor,
        labels=True,
        add_generation_prompt=False,
        padding_side="right",
        root=tmp_path,
    )
    ids = batch.inputs["input_ids"][0]
    labels = batch.inputs["labels"][0]
    whole = tiny_lm.tokenizer(batch.texts[0], add_special_tokens=False)["input_ids"]
    assert ids.tolist() == whole  # segment-wise tokenisation equals whole-string
    kept = ids[labels != IGNORE_INDEX].tolist()
    expected = encode_zoom_call([3, 4, 50, 60]) + "<|im_end|>" + "green<|im_end|>"
    assert tiny_lm.tokenizer.decode(kept) == expected
    assert (labels[labels != IGNORE_INDEX] == ids[labels != IGNORE_INDEX]).all()
    # the two image spans: pads count equals the grids, and mm_token_type_ids marks them
    n_pads = int((ids == 151655).sum())
    grid = batch.inputs["image_grid_thw"]
    assert n_pads == int(grid.prod(dim=1).sum()) // 4 == sum(batch.image_tokens)
    assert int(batch.inputs["mm_token_type_ids"].sum()) == n_pads


def test_count_tokens_is_the_encoded_length_without_images(tiny_lm: Any, tmp_path: Any) -> None:
    # What `data export` measures for cutoff_len and the over-long rule: the training sample's
    # length, counted from the text alone (no image read, no torch).
    conv, _ = _zoom_conversation(tmp_path)
    batch = encode(
        [conv],
        tiny_lm.tokenizer,
        tiny_lm.image_processor,
        labels=True,
        add_generation_prompt=False,
        padding_side="right",
        root=tmp_path,
    )
    (tmp_path / "scene.png").unlink()  # the count never opens it
    assert count_tokens(conv, tiny_lm.tokenizer) == batch.inputs["input_ids"].shape[-1]
    assert count_tokens(conv, tiny_lm.tokenizer) > sum(batch.image_tokens) > 0


def test_left_padding_batch_and_forward(tiny_lm: Any, demo_image: Any) -> None:
    import torch

    part = ImagePart("mem", demo_image.size, (224, 168))
    with_image = question_conversation("Describe the scene.", part)
    text_only = question_conversation("Hi")
    batch = encode(
        [with_image, text_only],
        tiny_lm.tokenizer,
        tiny_lm.image_processor,
        images=[[demo_image], []],
    )
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    assert ids.shape[0] == 2 and mask[1, 0] == 0 and mask[1, -1] == 1 and mask[0].all()
    assert batch.texts[1].endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    with torch.no_grad():
        out = tiny_lm.model(**batch.inputs)
    assert out.logits.shape[:2] == ids.shape


def test_bad_inputs_raise(tiny_lm: Any, demo_image: Any) -> None:
    part = ImagePart("mem", demo_image.size, (224, 170))
    with pytest.raises(InputError, match="multiple of 28"):
        encode(
            [question_conversation("q", part)],
            tiny_lm.tokenizer,
            tiny_lm.image_processor,
            images=[[demo_image]],
        )
    ok = ImagePart("mem", demo_image.size, (224, 168))
    with pytest.raises(InputError, match="images for"):
        encode(
            [question_conversation("q", ok)],
            tiny_lm.tokenizer,
            tiny_lm.image_processor,
            images=[[demo_image, demo_image]],
        )
