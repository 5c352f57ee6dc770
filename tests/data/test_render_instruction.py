"""Instruction conversations (GeoChat, VHM, TEOChatlas) rendered per WIRE §3.4 and §10."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.data.conversation import VideoPart, chat_text
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Box, Record, Turn
from rscovlm.data.render import render
from rscovlm.data.sources.llava_instruct import iter_llava_records
from rscovlm.errors import InputError

DEFAULT_SYS = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
IMG = "<|vision_start|><|image_pad|><|vision_end|>"
VID = "<|vision_start|><|video_pad|><|vision_end|>"
TEOCHAT = RenderPolicy(defaults={"instruction_style": "teochat"})

# 1000×800 (w×h) -> smart_resize 1008×812; 0-100 percent boxes as the source lifts them.
W, H = 1000, 800


def pct_box(x1: float, y1: float, x2: float, y2: float) -> Box:
    return Box.from_hbb([x1 * W / 100, y1 * H / 100, x2 * W / 100, y2 * H / 100])


def pct_model(x1: int, y1: int, x2: int, y2: int) -> str:
    """The original rewrite int(p·W_res/100) of WIRE §3.4, written as [a, b, c, d]."""
    return (
        f"{int(x1 * 1008 / 100)},{int(y1 * 812 / 100)},{int(x2 * 1008 / 100)},{int(y2 * 812 / 100)}"
    )


def record(turns: list[Turn], frames: int = 1, video: bool = True) -> Record:
    return Record(
        id="g1",
        source="geochat",
        task="instruction",
        images=[{"path": f"f{i}.png", "width": W, "height": H} for i in range(frames)],
        conversation=turns,
        meta={"video": video},
    )


def text(rec: Record, policy: RenderPolicy = TEOCHAT) -> str:
    return chat_text(render(rec, np.random.default_rng(0), policy))


def test_box_only_answer_becomes_detection_lines_with_derived_category() -> None:
    rec = record(
        [
            Turn(
                role="user",
                text="This is a satellite image: <video> Identify the location of all small cars.",
            ),
            Turn(
                role="assistant",
                text="<box:0>, <box:1>.",
                boxes=[pct_box(10, 20, 30, 40), pct_box(50, 50, 60, 75)],
            ),
        ]
    )
    expected = (
        DEFAULT_SYS + "<|im_start|>user\nThis is a satellite image:" + VID + "Identify the "
        "location of all small cars.<|im_end|>\n<|im_start|>assistant\n"
        f"{pct_model(10, 20, 30, 40)} small cars\n{pct_model(50, 50, 60, 75)} small cars\n"
        "<|im_end|>\n"
    )
    assert pct_model(10, 20, 30, 40) == "100,162,302,324"
    assert text(rec) == expected


def test_in_text_boxes_and_user_cleanup() -> None:
    rec = record(
        [
            Turn(
                role="user", text="<video> What is at <box:0>. ?", boxes=[pct_box(10, 20, 30, 40)]
            ),
            Turn(role="assistant", text="A plane parked at <box:0>.", boxes=[pct_box(1, 2, 3, 4)]),
        ]
    )
    expected = (
        DEFAULT_SYS + f"<|im_start|>user\n{VID}What is at [100, 162, 302, 324].<|im_end|>\n"
        "<|im_start|>assistant\nA plane parked at [10, 16, 30, 32].<|im_end|>\n"
    )
    assert text(rec) == expected


def test_region_caption_drops_the_repeated_box() -> None:
    box = pct_box(10, 20, 30, 40)
    rec = record(
        [
            Turn(
                role="user",
                text="<video> [identify] What is the object present at <box:0>",
                boxes=[box],
            ),
            Turn(role="assistant", text="<box:0> a large white plane", boxes=[box]),
        ]
    )
    assert text(rec).endswith("<|im_start|>assistant\na large white plane<|im_end|>\n")


def test_llava_style_passes_text_through_and_collapses_image_newline() -> None:
    rec = record(
        [
            Turn(role="user", text="<image>\nWhat is the scene? "),
            Turn(role="assistant", text="An airport."),
            Turn(role="user", text="Any planes?"),
            Turn(role="assistant", text="Yes."),
        ],
        video=False,
    )
    expected = (
        DEFAULT_SYS + f"<|im_start|>user\n{IMG}What is the scene? <|im_end|>\n"
        "<|im_start|>assistant\nAn airport.<|im_end|>\n<|im_start|>user\nAny planes?<|im_end|>\n"
        "<|im_start|>assistant\nYes.<|im_end|>\n"
    )
    assert text(rec, RenderPolicy()) == expected


def test_temporal_frames_are_one_video_item() -> None:
    rec = record(
        [
            Turn(role="user", text="This is a sequence of images: <video> Did it change?"),
            Turn(role="assistant", text="Yes."),
        ],
        frames=3,
    )
    conv = render(rec, np.random.default_rng(0), TEOCHAT)
    video = conv.messages[0].content[1]
    assert isinstance(video, VideoPart) and len(video.frames) == 3
    assert [f.source for f in video.frames] == ["f0.png", "f1.png", "f2.png"]
    # T = 3 padded to 4 frames: (4/2)·(812/28)·(1008/28) pads.
    expanded = chat_text(conv, expand_pads=True)
    assert expanded.count("<|video_pad|>") == 2 * 29 * 36
    assert len(conv.to_messages()[0]["content"][1]["video"]) == 3


def test_without_placeholders_media_open_the_first_user_turn() -> None:
    rec = record(
        [Turn(role="user", text="Describe."), Turn(role="assistant", text="Fields.")],
        frames=2,
        video=False,
    )
    assert f"<|im_start|>user\n{IMG}{IMG}Describe.<|im_end|>" in text(rec, RenderPolicy())


def test_placeholder_mismatch_is_reported() -> None:
    rec = record(
        [Turn(role="user", text="<image> <image> x"), Turn(role="assistant", text="y")],
        video=False,
    )
    with pytest.raises(InputError, match="more placeholders than images"):
        text(rec, RenderPolicy())
    rec = record(
        [Turn(role="user", text="<image> x"), Turn(role="assistant", text="y")],
        frames=2,
        video=False,
    )
    with pytest.raises(InputError, match="2 images but 1 placed"):
        text(rec, RenderPolicy())


def test_geochat_native_boxes_through_the_real_adapter(tmp_path: Path) -> None:
    Image.new("RGB", (W, H)).save(tmp_path / "img.png")
    entry = {
        "id": "geo1",
        "image": "img.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is in {<10><20><30><40>|<0>}?"},
            {"from": "gpt", "value": "A ship."},
        ],
    }
    (tmp_path / "geochat.json").write_text(json.dumps([entry]))
    (rec,) = iter_llava_records(tmp_path, "geochat.json", box_format="geochat")
    assert isinstance(rec, Record)
    absolute = text(rec, RenderPolicy())
    assert "What is in [100, 162, 302, 324]?" in absolute
    grid = text(rec, RenderPolicy(family="qwen2_vl"))
    assert "What is in [100, 200, 300, 400]?" in grid
