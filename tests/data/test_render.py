"""Byte identity of rendered conversations with WIRE_FORMATS.md, per task and format.

Expected texts are literals copied from the spec (or derived from its written rules in the test),
never produced by the code under test.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.conversation import chat_text
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import QA, Box, Instance, Record, Referring
from rscovlm.data.render import SkipSampleError, render
from rscovlm.errors import InputError

WIRE = Path(
    os.environ.get(
        "RSCOVLM_WIRE_FORMATS",
        Path(__file__).resolve().parents[3] / "shared" / "WIRE_FORMATS.md",
    )
)

SYS_QUAD = (
    "As an AI assistant, you specialize in accurate oriented object detection, delivering "
    "coordinates of the polygon vertices in plain text format 'x1,y1,x2,y2,x3,y3,x4,y4 object'."
)
SYS_HBB = (
    "As an AI assistant, you specialize in accurate image object detection, delivering "
    "coordinates in plain text format 'x1,y1,x2,y2 object'."
)
SYS_OBB = (
    "As an AI assistant, you specialize in accurate oriented object detection, delivering "
    "coordinates in plain text format 'x,y,w,h,a object'."
)
DOTA_CATS = (
    "baseball diamond, basketball court, bridge, ground track field, harbor, helicopter, large "
    "vehicle, plane, roundabout, ship, small vehicle, soccer ball field, storage tank, swimming "
    "pool, tennis court"
)
IMG = "<|vision_start|><|image_pad|><|vision_end|>"
DEFAULT_SYS = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"

# WIRE §2.9: DOTA 512×512 tile, GT polygon of class small-vehicle.
POLY = [[150.2, 230.7], [100.5, 230.7], [100.5, 200.0], [150.2, 200.0]]


def chat(system: str | None, user: str, answer: str) -> str:
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system is not None else DEFAULT_SYS
    return (
        head + f"<|im_start|>user\n{IMG}{user}<|im_end|>\n"
        f"<|im_start|>assistant\n{answer}<|im_end|>\n"
    )


def det_record(objects: list[Instance], size: int = 512) -> Record:
    return Record(
        id="P0001",
        source="dota",
        task="detection",
        images=[{"path": "images/P0001.png", "width": size, "height": size}],
        objects=objects,
        meta={"class_list": "dota1.0"},
    )


def fixed(**task: object) -> RenderPolicy:
    """The paper policy without random resize (the §2.9 example is 'not randomly resized')."""
    return RenderPolicy(
        tasks={
            "detection": {"random_resize_prob": 0.0, **task},
            "grounding": {"random_resize_prob": 0.0, **task},
        }
    )


def rendered(record: Record, policy: RenderPolicy, seed: int = 0) -> str:
    return chat_text(render(record, np.random.default_rng(seed), policy))


# --- detection -------------------------------------------------------------------------------


def test_worked_example_plain_quad() -> None:
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    expected = chat(
        SYS_QUAD, f"find the {DOTA_CATS}", "98,196,147,196,147,227,98,227 small vehicle\n"
    )
    assert rendered(rec, fixed(box_kind="quad")) == expected


def test_worked_example_obb() -> None:
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    expected = chat(SYS_OBB, f"find the {DOTA_CATS}", "122,211,49,31,0 small vehicle\n")
    assert rendered(rec, fixed(box_kind="obb")) == expected


def test_hbb_follows_the_coco_rule() -> None:
    # x1, y1 as read; x2 = int(x + w), y2 = int(y + h); then int(v * 504 / 512) (WIRE §2.2).
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    x1, y1 = int(100.5 * 504 / 512), int(200.0 * 504 / 512)
    x2, y2 = int(int(150.2) * 504 / 512), int(int(230.7) * 504 / 512)
    assert (x1, y1, x2, y2) == (98, 196, 147, 226)
    expected = chat(SYS_HBB, f"find the {DOTA_CATS}", f"{x1},{y1},{x2},{y2} small vehicle\n")
    assert rendered(rec, fixed(box_kind="hbb")) == expected


def test_instances_ordered_by_class_then_y_then_x_stably() -> None:
    def obj(cls: str, x: float, y: float) -> Instance:
        return Instance(class_name=cls, box=Box.from_hbb([x, y, x + 20, y + 10]))

    rec = det_record(
        [
            obj("small-vehicle", 300, 100),
            obj("plane", 10, 400),
            obj("small-vehicle", 100, 100),
            obj("baseball-diamond", 50, 50),
            obj("small-vehicle", 5, 300),
            obj("small-vehicle", 100.4, 100),  # ties with (100, 100) after truncation: kept 2nd
        ]
    )
    answer = rendered(rec, fixed(box_kind="hbb")).split("<|im_start|>assistant\n")[1]
    lines = answer.removesuffix("<|im_end|>\n").splitlines()
    labels = [line.split(" ", 1)[1] for line in lines]
    assert labels == ["baseball diamond", "plane", *["small vehicle"] * 4]
    assert lines[2:4] == ["98,98,118,108 small vehicle"] * 2
    assert lines[4].startswith("295,98,")
    assert lines[5].startswith("4,295,")


def test_empty_image_is_there_are_none_without_newline() -> None:
    expected = chat(SYS_QUAD, f"find the {DOTA_CATS}", "There are none.")
    assert rendered(det_record([]), fixed()) == expected


def test_empty_image_skipped_when_not_kept() -> None:
    with pytest.raises(SkipSampleError, match="keep_empty"):
        rendered(det_record([]), fixed(keep_empty=False))


def test_json_hbb_has_no_system_and_the_json_layout() -> None:
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    user = (
        "Locate every item from the category list in the image and output the coordinates in "
        f"JSON format. The category set includes {DOTA_CATS}."
    )
    answer = '```json\n[\n\t{"bbox_2d": [98, 196, 147, 226], "label": "small vehicle"}\n]\n```'
    assert rendered(rec, fixed(box_kind="hbb", json_prob=1.0)) == chat(None, user, answer)


def test_json_quad_system_and_oriented_template() -> None:
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    system = (
        "You are an AI assistant specializing in oriented object detection. Represent objects "
        "with quadrant bbox: the corrdinates of each vertices of the oriented bounding boxes in "
        "clock-wise order."
    )
    user = (
        "Locate every item from the category list in the image and output the oriented bbox "
        f"coordinates in JSON format. The category set includes {DOTA_CATS}."
    )
    answer = (
        '```json\n[\n\t{"quadrant bbox": [98, 196, 147, 196, 147, 227, 98, 227], '
        '"label": "small vehicle"}\n]\n```'
    )
    assert rendered(rec, fixed(box_kind="quad", json_prob=1.0)) == chat(system, user, answer)


def test_json_proxy_templates_and_variations_are_drawn() -> None:
    rec = det_record([Instance(class_name="plane", box=Box.from_hbb([1, 2, 30, 40]))])
    policy = fixed(box_kind="quad", json_prob=1.0, proxy_prob=0.5)
    users = set()
    for seed in range(400):
        conv = render(rec, np.random.default_rng(seed), policy)
        users.add(conv.messages[1].text)
    proxies = [
        "Give me the oriented bboxes and names of {c} using JSON format",
        "Give me the oriented bounding boxes and names of {c} using JSON format",
        "Give me the rotated bounding boxes and names of {c} using JSON format",
        "Locate {c} in the given image and provide the rotated bboxes using JSON format",
        "Please provide the oriented bbox coordinates of the following objects: {c}",
    ]
    for proxy in proxies:
        assert proxy.format(c=DOTA_CATS) in users
    assert len(users) <= 1 + 5 * 4


def test_open_ended_prompt() -> None:
    rec = det_record([Instance(class_name="plane", box=Box.from_hbb([1, 2, 30, 40]))])
    conv = render(rec, np.random.default_rng(0), fixed(box_kind="hbb", open_ended_prob=1.0))
    assert conv.messages[1].text == "find all the visible remote sensing objects"
    assert conv.messages[2].text == "0,1,29,39 plane\n"


def test_eval_prompt_prob_renders_the_official_evaluation_text() -> None:
    """Both user texts, each with the same answer: the period-less training text and the
    evaluation's text with its trailing period (what ``eval run`` asks)."""
    rec = det_record([Instance(class_name="plane", box=Box.from_hbb([1, 2, 30, 40]))])
    seen = {}
    for seed in range(20):
        conv = render(rec, np.random.default_rng(seed), fixed(box_kind="hbb", eval_prompt_prob=0.5))
        seen[conv.messages[1].text] = (conv.messages[2].text, conv.meta["variant"])
    train, evaluation = f"find the {DOTA_CATS}", f"find the {DOTA_CATS}."
    assert seen == {
        train: ("0,1,29,39 plane\n", "plain"),
        evaluation: ("0,1,29,39 plane\n", "plain:eval"),
    }
    never = render(rec, np.random.default_rng(0), fixed(box_kind="hbb"))
    assert never.messages[1].text == train


def test_grid1000_family_writes_grid_units() -> None:
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    policy = RenderPolicy(family="qwen2_vl", tasks={"detection": {"random_resize_prob": 0.0}})
    answer = render(rec, np.random.default_rng(0), policy).messages[2].text
    xs, ys = (int(100.5 * 1000 / 512), int(150.2 * 1000 / 512)), (int(200 * 1000 / 512),)
    assert answer.startswith(f"{xs[0]},{ys[0]},{xs[1]},{ys[0]},")


# --- grounding --------------------------------------------------------------------------------


def ref_record(quad: bool) -> Record:
    box = Box.from_quad(POLY) if quad else Box.from_hbb([100.5, 200.0, 150.2, 230.7])
    return Record(
        id="r1",
        source="refgeo",
        task="grounding",
        images=[{"path": "a.png", "width": 512, "height": 512}],
        referring=[Referring(expression="the small car near the road", box=box)],
    )


def test_refgeo_hbb_truncates_twice() -> None:
    v = [int(int(x) * 504 / 512) for x in (100.5, 200.0, 150.2, 230.7)]
    assert v == [98, 196, 147, 226]
    expected = chat(
        SYS_HBB,
        "find the the small car near the road",
        "98,196,147,226 the small car near the road\n",
    )
    assert rendered(ref_record(False), fixed(box_kind="hbb")) == expected


def test_refgeo_quad_is_counter_clockwise() -> None:
    # astype(int), then (v * 504 / 512).astype(int); counter-clockwise from the top-most vertex.
    answer = "98,196,98,226,147,226,147,196 the small car near the road\n"
    expected = chat(SYS_QUAD, "find the the small car near the road", answer)
    assert rendered(ref_record(True), fixed(box_kind="quad")) == expected


def test_refgeo_json_answer_and_proxy() -> None:
    expr = "the small car near the road"
    conv = render(ref_record(False), np.random.default_rng(0), fixed(box_kind="hbb", json_prob=1))
    assert (
        conv.messages[0].text == f"Locate the {expr}, output the bbox coordinates using JSON format"
    )
    assert conv.messages[1].text == (
        f'```json\n[\n\t{{"bbox_2d": [98, 196, 147, 226], "label": "{expr}"}}\n]\n```'
    )
    texts = set()
    for seed in range(40):
        policy = fixed(box_kind="quad", json_prob=1.0, proxy_prob=0.5)
        texts.add(render(ref_record(True), np.random.default_rng(seed), policy).messages[1].text)
    assert f"Give me the oriented bounding box of {expr} using JSON format" in texts
    assert f"Give me the rotated bounding box of {expr} using JSON format" in texts


# --- question answering -------------------------------------------------------------------------


def vqa_record(question: str, answer: str, **extra: object) -> Record:
    return Record(
        id="q1",
        source="vqa",
        task="vqa",
        images=[{"path": "a.png", "width": 800, "height": 600}],
        qa=[QA(question=question, answer=answer, **extra)],
    )


def test_mcq_training_question() -> None:
    choices = ["(A) Yellow", "(B) Blue", "(C) Gray", "(D) White"]
    choices.append("(E) The image does not feature the color.")
    question = (
        "What color is the roof of the square building in the lower right area of the picture?"
    )
    rec = vqa_record(question + "\n Answer the question using a single word or phrase.", "A")
    rec.qa[0].choices = choices
    user = (
        "What color is the roof of the square building in the lower right area of the picture? "
        "The choices are listed below: \n(A) Yellow\n(B) Blue\n(C) Gray\n(D) White\n(E) The image "
        "does not feature the color.\nSelect the best answer to the above multiple-choice "
        "question based on the image. Respond with only the letter (A, B, C, D, or E) of the "
        "correct option.\nThe best answer is:"
    )
    assert user in WIRE.read_text(encoding="utf-8").replace("\\n", "\n")
    assert rendered(rec, RenderPolicy()) == chat(None, user, "A")


@pytest.mark.parametrize(
    ("suffix", "category", "tail"),
    [
        ("none", None, ""),
        ("short", None, " Answer the question using a single word or a short phrase."),
        ("lrsvqa", "color", "\n Answer the question using a single word or phrase."),
        ("lrsvqa", "count", " \nAnswer the question using a single word or phrase."),
    ],
)
def test_vqa_answer_suffixes(suffix: str, category: str | None, tail: str) -> None:
    rec = vqa_record("Is there a bridge?", "yes", category=category)
    policy = RenderPolicy(tasks={"vqa": {"answer_suffix": suffix}})
    assert rendered(rec, policy) == chat(None, "Is there a bridge?" + tail, "yes")
    rec.qa[0].question += tail  # already carrying the suffix: not appended twice
    assert rendered(rec, policy) == chat(None, "Is there a bridge?" + tail, "yes")


def test_several_questions_are_several_turns_image_first() -> None:
    rec = vqa_record("Is it rural?", "no")
    rec.qa.append(QA(question="How many roads?", answer="3"))
    expected = (
        DEFAULT_SYS + f"<|im_start|>user\n{IMG}Is it rural?<|im_end|>\n"
        "<|im_start|>assistant\nno<|im_end|>\n<|im_start|>user\nHow many roads?<|im_end|>\n"
        "<|im_start|>assistant\n3<|im_end|>\n"
    )
    assert rendered(rec, RenderPolicy()) == expected


def _zoom_system_prompt_from_spec() -> str:
    spec = WIRE.read_text(encoding="utf-8")
    section = spec.split("### 4.1", 1)[1]
    return re.search(r"```\n(.*?)\n```", section, re.DOTALL).group(1)


def zoom_record(zoom: list[list[float]], category: str = "object color") -> Record:
    return Record(
        id="z1",
        source="lrs_vqa_zoom",
        task="vqa",
        images=[{"path": "big/15565.tif", "width": 4096, "height": 4096}],
        qa=[QA(question="What color is the car?", answer="red", category=category)],
        zoom=[Box.from_hbb(z) for z in zoom],
    )


def test_zoom_chain_matches_the_spec_example() -> None:
    # WIRE §4.3: 4096² -> 1008²; crop_hbox [953, 2368, 1401, 2796] -> call [234, 582, 344, 688];
    # the 448×428 crop is fed at 448×420 (w×h). §4.7 gives the rendered chain.
    system = _zoom_system_prompt_from_spec()
    assert len(system) == 912
    conv = render(zoom_record([[953, 2368, 1401, 2796]]), np.random.default_rng(0), RenderPolicy())
    n, m = 36 * 36, 15 * 16
    expected = (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<|vision_start|>"
        + "<|image_pad|>" * n
        + "<|vision_end|>What color is the car?\nZoom in to the region of interest and answer the "
        "question.<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
        '{"name": "image_zoom_in", "arguments": {"bbox": [234, 582, 344, 688]}}\n'
        "</tool_call><|im_end|>\n<|im_start|>user\n<|vision_start|>"
        + "<|image_pad|>"
        * m
        + "<|vision_end|>Here's the zoomed-in image. You can complete your task now.<|im_end|>\n"
        "<|im_start|>assistant\nred<|im_end|>\n"
    )
    assert chat_text(conv, expand_pads=True) == expected
    full, crop = conv.image_parts()
    assert (full.orig_size, full.resized_size, full.window) == ((4096, 4096), (1008, 1008), None)
    assert crop.source == full.source
    assert (crop.orig_size, crop.resized_size) == ((448, 428), (448, 420))
    assert crop.window == (953, 2368, 1401, 2796)


def test_zoom_is_never_randomly_resized() -> None:
    policy = RenderPolicy(defaults={"random_resize_prob": 1.0})
    for seed in range(5):
        conv = render(zoom_record([[953, 2368, 1401, 2796]]), np.random.default_rng(seed), policy)
        assert conv.image_parts()[0].resized_size == (1008, 1008)


def test_several_regions_or_count_give_a_single_turn() -> None:
    two = zoom_record([[0, 0, 500, 500], [900, 900, 1400, 1400]])
    count = zoom_record([[0, 0, 500, 500]], category="count")
    for rec in (two, count):
        assert rendered(rec, RenderPolicy()) == chat(None, "What color is the car?", "red")


def test_zoom_mcq_question_then_zoom_suffix() -> None:
    rec = zoom_record([[953, 2368, 1401, 2796]])
    rec.qa[0].choices = ["(A) red", "(B) blue"]
    rec.qa[0].answer = "A"
    user = render(rec, np.random.default_rng(0), RenderPolicy()).messages[1].text
    assert user.endswith(
        "The best answer is:\nZoom in to the region of interest and answer the question."
    )


# --- captions and scene classification ---------------------------------------------------------


def test_caption_and_scene_classification() -> None:
    cap = Record(
        id="c",
        source="ucm",
        task="caption",
        images=[{"path": "a.png", "width": 256, "height": 256}],
        captions=["many planes are parked."],
    )
    assert rendered(cap, RenderPolicy()) == chat(
        None, "Describe the image", "many planes are parked."
    )
    cls = Record(
        id="s",
        source="aid",
        task="classification",
        images=[{"path": "a.png", "width": 600, "height": 600}],
        label="Airport",
        meta={"classes": ["Viaduct", "Airport", "BareLand"]},
    )
    user = "Classify the image within one of the given classes:Airport,BareLand,Viaduct."
    assert rendered(cls, RenderPolicy()) == chat(None, user, "Airport")
    cls.meta = {}
    with pytest.raises(InputError, match="no class list"):
        rendered(cls, RenderPolicy())


# --- determinism and sizes ------------------------------------------------------------------------


def test_same_seed_same_conversation_and_sizes_differ_across_seeds() -> None:
    rec = det_record([Instance(class_name="small-vehicle", box=Box.from_quad(POLY))])
    policy = RenderPolicy()
    a = render(rec, np.random.default_rng(7), policy)
    b = render(rec, np.random.default_rng(7), policy)
    assert chat_text(a) == chat_text(b) and a.image_parts() == b.image_parts()
    sizes = {
        render(rec, np.random.default_rng(s), policy).image_parts()[0].resized_size
        for s in range(20)
    }
    assert len(sizes) > 5
    assert a.meta == {"uid": "dota/P0001", "task": "detection", "dataset": None, "variant": "plain"}


def test_missing_size_needs_a_root(tmp_path: Path) -> None:
    from PIL import Image

    rec = det_record([])
    rec.images[0].width = rec.images[0].height = None
    with pytest.raises(InputError, match=r"size of images/P0001\.png unknown"):
        rendered(rec, fixed())
    (tmp_path / "images").mkdir()
    Image.new("RGB", (300, 200)).save(tmp_path / "images" / "P0001.png")
    conv = render(rec, np.random.default_rng(0), fixed(), root=tmp_path)
    assert conv.image_parts()[0].orig_size == (300, 200)


def test_chat_layout_options_and_message_dicts() -> None:
    rec = ref_record(False)
    conv = render(rec, np.random.default_rng(0), fixed(box_kind="hbb"))
    assert chat_text(conv, add_generation_prompt=True).endswith(
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    no_system = render(vqa_record("Q?", "A"), np.random.default_rng(0), RenderPolicy())
    assert chat_text(no_system, default_system=False).startswith("<|im_start|>user\n")
    msgs = conv.to_messages()
    assert msgs[1]["content"][0] == {
        "type": "image",
        "image": "a.png",
        "resized_width": 504,
        "resized_height": 504,
    }
    assert msgs[2] == {
        "role": "assistant",
        "content": [{"type": "text", "text": conv.messages[2].text}],
    }
    with pytest.raises(InputError, match="0 images for 1 image parts"):
        conv.to_messages([])
