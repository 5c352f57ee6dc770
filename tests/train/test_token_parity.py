"""Token parity: the training encoder gives the official chat template's ids, labels only the
assistant spans (issue 6, Must show 1; WIRE §1.1, §1.2, §4.7).

For every conversation of a varied set — rendered by ``render`` from synthetic scenes and from
hand-made records (detection, empty detection, VQA, multi-turn VQA, the Zoom-in Chain with its
tool call, classification) plus hand-built chats (several images in one turn and across turns,
empty answers, an explicit system turn, unicode) — the ids of :func:`encode` equal
``tokenizer.apply_chat_template(messages, tokenize=True)`` with every ``<|image_pad|>`` expanded,
on the ids, to the image's grid count. The labelled positions are recomputed from those template
ids alone (after each ``<|im_start|>assistant\\n`` up to and including the next ``<|im_end|>``)
and each labelled run decodes to the assistant content plus ``<|im_end|>``.

A literal-string check pins :data:`QWEN2_5_VL_CHAT_TEMPLATE` to the documented output of the
official Qwen2.5-VL template for the layouts of WIRE §1.1 and §4.7.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rscovlm.data.conversation import Conversation, ImagePart, Message, TextPart
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import QA, Box, ImageRef, Instance, Record
from rscovlm.data.render import render
from rscovlm.formats import ZOOM_SYSTEM_PROMPT
from rscovlm.resolution import get_family

torch = pytest.importorskip("torch")

IM_START, IM_END, IMAGE_PAD = 151644, 151645, 151655
IGNORE = -100
FAMILY = get_family("qwen2_5_vl")
POLICY = RenderPolicy(
    family="qwen2_5_vl",
    defaults={"min_pixels": 4 * 28 * 28, "max_pixels": 64 * 28 * 28},
    tasks={
        "detection": {"random_resize_prob": 1.0, "box_kind": "quad"},
        "classification": {"classes": ["airport", "parking_lot", "sports_ground"]},
    },
    datasets={
        "det_hbb": {"box_kind": "hbb"},
        "paper_band": {"min_pixels": 64 * 28 * 28, "max_pixels": 1296 * 28 * 28},
    },
)


# --- the conversations --------------------------------------------------------------------------


def _hand_records() -> list[tuple[Record, str | None]]:
    img = [ImageRef(path="scene.png", width=640, height=480)]
    ship = Box(hbb=[100.0, 120.0, 180.0, 150.0])
    plane = Box(hbb=[300.0, 200.0, 420.0, 330.0])
    det = Record(
        id="det",
        source="hand",
        task="detection",
        images=img,
        objects=[Instance(class_name="ship", box=ship), Instance(class_name="plane", box=plane)],
        meta={"class_list": ["plane", "ship", "storage-tank"]},
    )
    empty = Record(
        id="empty",
        source="hand",
        task="detection",
        images=img,
        meta={"class_list": ["plane", "ship"]},
    )
    multi = Record(
        id="multi",
        source="hand",
        task="vqa",
        images=img,
        qa=[
            QA(question="How many ships are there?", answer="1", category="count"),
            QA(question="Is the plane white?", answer="Yes, it is white."),
            QA(question="Which one is larger?", answer="The plane."),
        ],
    )
    big = [ImageRef(path="large.tif", width=4096, height=4096)]
    zoom = Record(
        id="zoom",
        source="hand",
        task="vqa",
        images=big,
        qa=[QA(question="What is the color of the ship?", answer="white", category="color")],
        zoom=[Box(hbb=[953.0, 2368.0, 1401.0, 2796.0])],
    )
    mcq = Record(
        id="mcq",
        source="hand",
        task="vqa",
        images=big,
        qa=[
            QA(
                question="What color is the roof?",
                answer="B",
                choices=["(A) Yellow", "(B) Blue", "(C) Gray"],
                category="color",
            )
        ],
        zoom=[Box(hbb=[10.0, 20.0, 300.0, 200.0])],
    )
    scene = Record(id="cls", source="hand", task="classification", images=img, label="parking_lot")
    return [
        (det, None),
        (det, "det_hbb"),
        (empty, None),
        (multi, None),
        (zoom, "paper_band"),  # WIRE §4.3's example: 4096² shown at 1008²
        (mcq, None),
        (scene, None),
    ]


def _synthetic_records(root: Path) -> list[Record]:
    from rscovlm.data.sources.synthetic import iter_synthetic_records

    records = [r for r in iter_synthetic_records(root, n=3, size=256) if isinstance(r, Record)]
    tasks = {r.task for r in records}
    assert {"detection", "vqa", "classification"} <= tasks
    return records


def _part(w: int, h: int, name: str) -> ImagePart:
    return ImagePart(name, (w, h), (w, h))


def _hand_chats() -> list[Conversation]:
    """Chats render does not produce: several images, empty answers, own system, unicode."""
    a, b, c = _part(56, 84, "a.png"), _part(112, 56, "b.png"), _part(84, 84, "c.png")

    def chat(*messages: Message) -> Conversation:
        return Conversation(list(messages), FAMILY, {"uid": "hand"})

    def user(*parts: Any) -> Message:
        return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))

    def assistant(text: str) -> Message:
        return Message("assistant", (TextPart(text),))

    return [
        chat(user(a, b, "Compare the two images."), assistant("The second is wider.")),
        chat(
            user(a, "What is this?"),
            assistant("An airport."),
            user(c, "And this one?"),
            assistant("A harbour with three ships."),
            user("Thanks, anything else?"),
            assistant(""),
        ),
        chat(user("Say nothing."), assistant("")),
        chat(
            Message("system", (TextPart("You are a remote-sensing expert."),)),
            user(b, "Describe the image."),
            assistant("Dense residential blocks beside a river, 河流 and roads.\n"),
        ),
        chat(user("Count: 1 2 3"), assistant("  spaced answer  ")),
        chat(
            user(a, "find the ship"),
            assistant("10,20,30,40,50,60,70,80 ship\n"),
            user("again"),
            assistant("There are none."),
        ),
    ]


def _conversations(root: Path) -> list[Conversation]:
    convs = []
    for k, (record, dataset) in enumerate(_hand_records()):
        convs.append(render(record, np.random.default_rng(k), POLICY, dataset=dataset))
    for k, record in enumerate(_synthetic_records(root)):
        convs.append(render(record, np.random.default_rng(100 + k), POLICY, root=root))
    return convs + _hand_chats()


@pytest.fixture(scope="module")
def conversations(tmp_path_factory: pytest.TempPathFactory) -> list[Conversation]:
    convs = _conversations(tmp_path_factory.mktemp("parity"))
    variants = {c.meta.get("variant") for c in convs}
    assert {"zoom", "qa", "scene"} <= variants  # the tool-call chain, multi-turn QA, scenes
    assert any(len(c.image_parts()) >= 2 for c in convs)
    assert any(m.role == "system" for c in convs for m in c.messages)
    assert any(m.text == "" for c in convs for m in c.messages if m.role == "assistant")
    return convs


# --- the reference: template ids, expanded on ids; spans from the ids alone ---------------------


def _images(conv: Conversation, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (p.resized_size[1], p.resized_size[0], 3), dtype=np.uint8)
        for p in conv.image_parts()
    ]


def _template_ids(tokenizer: Any, conv: Conversation) -> list[int]:
    out = tokenizer.apply_chat_template(conv.to_messages(), tokenize=True)
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return [int(i) for i in ids]


def _expand(ids: list[int], counts: list[int]) -> list[int]:
    out: list[int] = []
    pending = iter(counts)
    for i in ids:
        out.extend([IMAGE_PAD] * next(pending) if i == IMAGE_PAD else [i])
    assert next(pending, None) is None, "fewer <|image_pad|> than images"
    return out


def _assistant_spans(ids: list[int], header: list[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of every assistant body plus its ``<|im_end|>``."""
    spans = []
    for i in range(len(ids) - len(header) + 1):
        if ids[i : i + len(header)] == header:
            start = i + len(header)
            end = ids.index(IM_END, start) + 1
            spans.append((start, end))
    return spans


def _runs(labels: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, lab in enumerate([*labels, IGNORE]):
        if lab != IGNORE and start is None:
            start = i
        elif lab == IGNORE and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_encode_ids_equal_the_chat_template_and_labels_are_assistant_spans(
    tiny_qwen25: Any, conversations: list[Conversation]
) -> None:
    from rscovlm.model.encoding import encode

    tokenizer = tiny_qwen25.tokenizer
    header = [IM_START, *tokenizer("assistant\n", add_special_tokens=False)["input_ids"]]
    checked_turns = 0
    for k, conv in enumerate(conversations):
        enc = encode(
            [conv],
            tokenizer,
            tiny_qwen25.image_processor,
            family="qwen2_5_vl",
            images=[_images(conv, k)],
            add_generation_prompt=False,
            labels=True,
            padding_side="right",
        )
        ids = enc.inputs["input_ids"][0].tolist()
        labels = enc.inputs["labels"][0].tolist()
        grid = enc.inputs.get("image_grid_thw")
        counts = [] if grid is None else [int(g.prod()) // 4 for g in grid]
        assert len(counts) == len(conv.image_parts())
        reference = _expand(_template_ids(tokenizer, conv), counts)
        where = f"conversation {k} ({conv.meta.get('uid')}, {conv.meta.get('variant')})"
        assert ids == reference, where

        spans = _assistant_spans(reference, header)
        answers = [m.text for m in conv.messages if m.role == "assistant"]
        assert len(spans) == len(answers), where
        expected = [IGNORE] * len(reference)
        for start, end in spans:
            expected[start:end] = reference[start:end]
        assert labels == expected, where
        runs = _runs(labels)
        assert runs == spans, where
        decoded = [tokenizer.decode(ids[s:e], skip_special_tokens=False) for s, e in runs]
        assert decoded == [a + "<|im_end|>" for a in answers], where
        checked_turns += len(answers)
    assert checked_turns > len(conversations)  # several multi-turn chats among them


def test_zoom_chain_supervises_both_assistant_turns(
    tiny_qwen25: Any, conversations: list[Conversation]
) -> None:
    from rscovlm.model.encoding import encode

    zoom = next(c for c in conversations if c.meta.get("uid") == "hand/zoom")
    enc = encode(
        [zoom],
        tiny_qwen25.tokenizer,
        tiny_qwen25.image_processor,
        images=[_images(zoom, 0)],
        add_generation_prompt=False,
        labels=True,
    )
    labels = enc.inputs["labels"][0].tolist()
    decoded = [tiny_qwen25.tokenizer.decode(labels[s:e]) for s, e in _runs(labels)]
    call = '<tool_call>\n{"name": "image_zoom_in", "arguments": {"bbox": [234, 582, 344, 688]}}'
    assert decoded == [call + "\n</tool_call><|im_end|>", "white<|im_end|>"]


def test_answer_starting_with_a_newline(tiny_qwen25: Any) -> None:
    """The one place segment-by-segment tokenisation (the original trainer's) would differ from
    the chat template: ``assistant\\n`` + ``\\n...`` merges into one ``\\n\\n`` token."""
    from rscovlm.model.encoding import encode

    conv = Conversation(
        [Message("user", (TextPart("q"),)), Message("assistant", (TextPart("\nanswer"),))],
        FAMILY,
    )
    enc = encode(
        [conv], tiny_qwen25.tokenizer, tiny_qwen25.image_processor, add_generation_prompt=False
    )
    assert enc.inputs["input_ids"][0].tolist() == _template_ids(tiny_qwen25.tokenizer, conv)
    enc = encode(
        [conv],
        tiny_qwen25.tokenizer,
        tiny_qwen25.image_processor,
        add_generation_prompt=False,
        labels=True,
        padding_side="right",
    )
    labelled = [t for t in enc.inputs["labels"][0].tolist() if t != -100]
    assert tiny_qwen25.tokenizer.decode(labelled) == "\n\nanswer<|im_end|>"


# --- the template against the documented official output (literal strings) -------------------


def test_chat_template_renders_the_documented_layouts() -> None:
    """WIRE §1.1 (default system, image item then text, no separators, string or list content,
    generation prompt) and §4.7 (the Zoom-in Chain), written out as literal strings."""
    from jinja2 import Environment

    from rscovlm.model.tokenizer import QWEN2_5_VL_CHAT_TEMPLATE

    template = Environment().from_string(QWEN2_5_VL_CHAT_TEMPLATE)

    def rendered(messages: list[dict[str, Any]], generation: bool = False) -> str:
        return template.render(messages=messages, add_generation_prompt=generation)

    detection = [
        {
            "role": "system",
            "content": "As an AI assistant, you specialize in accurate image object detection, "
            "delivering coordinates in plain text format 'x1,y1,x2,y2 object'.",
        },
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "a.png"},
                {"type": "text", "text": "find the ship"},
            ],
        },
        {"role": "assistant", "content": "98,196,147,227 ship\n"},
    ]
    assert rendered(detection) == (
        "<|im_start|>system\nAs an AI assistant, you specialize in accurate image object "
        "detection, delivering coordinates in plain text format 'x1,y1,x2,y2 object'.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>find the ship<|im_end|>\n"
        "<|im_start|>assistant\n98,196,147,227 ship\n<|im_end|>\n"
    )
    plain = [
        {
            "role": "user",
            "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "Q?"}],
        },
    ]
    assert rendered(plain, generation=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    two_images = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "a.png"},
                {"type": "image", "image": "b.png"},
                {"type": "text", "text": "Same place?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": ""}]},
    ]
    assert rendered(two_images) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|>Same place?<|im_end|>\n"
        "<|im_start|>assistant\n<|im_end|>\n"
    )
    question = "What is the color of the ship?"
    zoom = [
        {"role": "system", "content": ZOOM_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "full.png"},
                {
                    "type": "text",
                    "text": f"{question}\nZoom in to the region of interest and answer the "
                    "question.",
                },
            ],
        },
        {
            "role": "assistant",
            "content": '<tool_call>\n{"name": "image_zoom_in", "arguments": '
            '{"bbox": [234, 582, 344, 688]}}\n</tool_call>',
        },
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "crop.png"},
                {
                    "type": "text",
                    "text": "Here's the zoomed-in image. You can complete your task now.",
                },
            ],
        },
        {"role": "assistant", "content": "white"},
    ]
    assert ZOOM_SYSTEM_PROMPT.startswith("# Tools\n\n") and ZOOM_SYSTEM_PROMPT.endswith(
        "</tool_call>"
    )
    assert rendered(zoom) == (
        f"<|im_start|>system\n{ZOOM_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is the color of the "
        "ship?\nZoom in to the region of interest and answer the question.<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "image_zoom_in", "arguments": '
        '{"bbox": [234, 582, 344, 688]}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Here's the zoomed-in "
        "image. You can complete your task now.<|im_end|>\n"
        "<|im_start|>assistant\nwhite<|im_end|>\n"
    )
