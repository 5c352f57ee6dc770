"""Every prompt string, byte for byte against literals copied from WIRE_FORMATS.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rscovlm.errors import InputError
from rscovlm.formats import DOTA_V1_0, RSAR, prompts
from rscovlm.formats import prompts as p

WIRE = Path(
    os.environ.get(
        "RSCOVLM_WIRE_FORMATS",
        Path(__file__).resolve().parents[3] / "shared" / "WIRE_FORMATS.md",
    )
)

# Literal copies (WIRE §1.1, §2.3, §2.6, §3.1, §3.2, §4, §5).
LITERALS = {
    "DEFAULT_SYSTEM_PROMPT": "You are a helpful assistant.",
    "NO_OBJECTS": "There are none.",
    "DET_SYSTEM_PROMPT_HBB": "As an AI assistant, you specialize in accurate image object "
    "detection, delivering coordinates in plain text format 'x1,y1,x2,y2 object'.",
    "DET_SYSTEM_PROMPT_OBB": "As an AI assistant, you specialize in accurate oriented object "
    "detection, delivering coordinates in plain text format 'x,y,w,h,a object'.",
    "DET_SYSTEM_PROMPT_QUAD": "As an AI assistant, you specialize in accurate oriented object "
    "detection, delivering coordinates of the polygon vertices in plain text format "
    "'x1,y1,x2,y2,x3,y3,x4,y4 object'.",
    "DET_JSON_SYSTEM_PROMPT_OBB": "You are an AI assistant specializing in oriented object "
    "detection. Represent objects with: center (x,y), width (w), height (h), and rotation angle.",
    "DET_JSON_SYSTEM_PROMPT_QUAD": "You are an AI assistant specializing in oriented object "
    "detection. Represent objects with quadrant bbox: the corrdinates of each vertices of the "
    "oriented bounding boxes in clock-wise order.",
    "DET_JSON_TEMPLATE_HBB": "Locate every item from the category list in the image and output "
    "the coordinates in JSON format. The category set includes {categories}.",
    "DET_JSON_TEMPLATE_ORIENTED": "Locate every item from the category list in the image and "
    "output the oriented bbox coordinates in JSON format. The category set includes {categories}.",
    "OPEN_ENDED_PHRASE": "all the visible remote sensing objects",
    "GROUNDING_JSON_TEMPLATE_HBB": "Locate the {prompt}, output the bbox coordinates using JSON "
    "format",
    "GROUNDING_JSON_TEMPLATE_ORIENTED": "Locate the {prompt}, output the oriented bbox "
    "coordinates using JSON format",
    "SEG_SYSTEM_PROMPT": "As an AI assistant, you specialize in segmentation, delivering "
    "segmentation results as Row-wise RLE format. Each row is represented as '<value>*<count>', "
    "and rows are separated by ';'. The last row ends with a semicolon. For example, "
    "'0*1,1*2;0*3;' represents the mask.",
    "SEG_TEMPLATE": "Locate the {prompt}, output the segmentation mask",
    "ZOOM_USER_SUFFIX": "\nZoom in to the region of interest and answer the question.",
    "ZOOM_FOLLOW_UP": "Here's the zoomed-in image. You can complete your task now.",
    "MCQ_CHOICES_HEADER": " The choices are listed below: \n",
    "MCQ_INSTRUCTION": "Select the best answer to the above multiple-choice question based on the "
    "image. Respond with only the letter (A, B, C, D, or E) of the correct option.",
    "MCQ_ANSWER_CUE": "\nThe best answer is:",
    "LRSVQA_ANSWER_SUFFIX": "\n Answer the question using a single word or phrase.",
    "LRSVQA_COUNT_ANSWER_SUFFIX": " \nAnswer the question using a single word or phrase.",
    "VQA_SHORT_ANSWER_SUFFIX": " Answer the question using a single word or a short phrase.",
    "VHM_CLS_SUFFIX": "Answer with one word or short phrase.",
    "SCENE_CLS_PREFIX": "Classify the image within one of the given classes:",
    "CAPTION_PROMPT": "Describe the image",
}

DET_PROXIES_HBB = (
    "Please output bbox coordinates and names of {categories} in JSON format.Give me the bboxes "
    "and names of {categories} using JSON format",
    "Output the category names and bboxes of the {categories} in the image using JSON format.",
    "From this image, provide the bboxes and categories for {categories} using JSON format",
    "Please provide the bbox coordinates of the following objects: {categories}.",
    "Locate {categories} in the given image and provide the bboxes using JSON format",
)
DET_PROXIES_ORIENTED = (
    "Give me the oriented bboxes and names of {categories} using JSON format",
    "Output the category names and oriented bboxes of the {categories} in the image using JSON "
    "format.",
    "From this image, provide the oriented bboxes and categories for {categories} using JSON "
    "format",
    "Please provide the oriented bbox coordinates of the following objects: {categories}",
    "Locate {categories} in the given image and provide the oriented bboxes using JSON format",
)
GROUNDING_PROXIES_HBB = (
    "Give me the bbox of {prompt} using JSON format",
    "Output the bbox of the {prompt} in the image using JSON format.",
    "From this image, provide the bbox for {prompt} using JSON format",
    "Please provide the bbox coordinate of the region this sentence describes: {prompt}",
    "Locate {prompt} in the given image and provide the bbox using JSON format",
)
GROUNDING_PROXIES_ORIENTED = (
    "Give me the oriented bounding box of {prompt} using JSON format",
    "Output the oriented bounding box of the {prompt} in the image using JSON format.",
    "From this image, provide the oriented bounding box for {prompt} using JSON format",
    "Please provide the oriented bounding box coordinate of the region this sentence describes: "
    "{prompt}",
    "Locate {prompt} in the given image and provide the oriented bounding box using JSON format",
)
SEG_PROXIES = (
    "Give me the segmentation mask of {prompt}",
    "Output the segmentation mask of the {prompt} in the image",
    "From this image, provide the segmentation mask for {prompt}",
    "Please provide the segmentation mask of the region this sentence describes: {prompt}",
    "Locate {prompt} in the given image and provide the segmentation mask",
    "Segment the {prompt} in the given image",
)
ZOOM_SYSTEM = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "image_zoom_in", "description": "Zoom in to the '
    "region of interest on the given image. Input the bounding box of the region of interest and "
    'return the zoomed-in image to help to focus and view more clearly.", "parameters": '
    '{"name": "bbox", "type": "list[int]", "description": "The bounding box of the region of '
    "interest as an array [x1, y1, x2, y2], where (x1, y1) and (x2, y2) indicate the positions' "
    'absolute coordinates of the left top and right down corners, respectively.", '
    '"required": true}}}\n</tools>\n\nFor each function call, return a json object with function '
    "name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
MME_EXAMPLE = (
    "What color is the roof of the square building in the lower right area of the picture? The "
    "choices are listed below: \n(A) Yellow\n(B) Blue\n(C) Gray\n(D) White\n(E) The image does "
    "not feature the color.\nSelect the best answer to the above multiple-choice question based "
    "on the image. Respond with only the letter (A, B, C, D, or E) of the correct option.\nThe "
    "best answer is:"
)
MME_CHOICES = [
    "(A) Yellow",
    "(B) Blue",
    "(C) Gray",
    "(D) White",
    "(E) The image does not feature the color.",
]


@pytest.mark.parametrize("name", sorted(LITERALS))
def test_constant_is_byte_exact(name: str) -> None:
    assert getattr(p, name) == LITERALS[name]


def test_template_lists_are_byte_exact() -> None:
    assert p.DET_JSON_PROXY_TEMPLATES_HBB == DET_PROXIES_HBB  # five entries: the merged one
    assert p.DET_JSON_PROXY_TEMPLATES_ORIENTED == DET_PROXIES_ORIENTED
    assert p.GROUNDING_JSON_PROXY_TEMPLATES_HBB == GROUNDING_PROXIES_HBB
    assert p.GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED == GROUNDING_PROXIES_ORIENTED
    assert p.SEG_PROXY_TEMPLATES == SEG_PROXIES


def test_zoom_system_prompt_is_912_ascii_chars() -> None:
    assert p.ZOOM_SYSTEM_PROMPT == ZOOM_SYSTEM
    assert len(p.ZOOM_SYSTEM_PROMPT) == 912
    assert p.ZOOM_SYSTEM_PROMPT.isascii()
    assert p.ZOOM_SYSTEM_PROMPT.startswith("# Tools\n\n")
    assert p.ZOOM_SYSTEM_PROMPT.endswith("</tool_call>")


def test_all_strings_are_ascii() -> None:
    for name in prompts.__all__:
        value = getattr(p, name)
        if isinstance(value, str):
            assert value.isascii(), name


def test_detection_user_prompts() -> None:
    dota = (
        "baseball diamond, basketball court, bridge, ground track field, harbor, helicopter, "
        "large vehicle, plane, roundabout, ship, small vehicle, soccer ball field, storage tank, "
        "swimming pool, tennis court"
    )
    assert p.detection_user_prompt(DOTA_V1_0) == "find the " + dota
    # WIRE §2.7 rendered example, with the eval-only trailing period.
    assert p.detection_user_prompt(DOTA_V1_0, eval_mode=True) == "find the " + dota + "."
    assert p.open_ended(p.DET_USER_TEMPLATE) == "find all the visible remote sensing objects"
    assert p.open_ended(DET_PROXIES_HBB[3]) == (
        "Please provide the bbox coordinates of the following objects: all the visible remote "
        "sensing objects."
    )


def test_detection_system_prompt_table() -> None:
    assert p.detection_system_prompt("quad") == LITERALS["DET_SYSTEM_PROMPT_QUAD"]
    assert p.detection_system_prompt("hbb", "json") is None  # default system prompt
    assert p.detection_system_prompt("obb", "json") == LITERALS["DET_JSON_SYSTEM_PROMPT_OBB"]
    with pytest.raises(InputError, match="no detection system prompt"):
        p.detection_system_prompt("hbb", "xml")


def test_json_prompts_and_variations() -> None:
    cats = "aircraft, bridge, car, harbor, ship, tank"
    assert p.detection_json_prompt(RSAR, "hbb") == (
        "Locate every item from the category list in the image and output the coordinates in "
        f"JSON format. The category set includes {cats}."
    )
    assert p.detection_json_prompt(RSAR, "hbb", proxy_index=0, bounding_box=True) == (
        f"Please output bounding box coordinates and names of {cats} in JSON format.Give me the "
        f"bounding boxes and names of {cats} using JSON format"
    )
    assert p.detection_json_prompt(
        RSAR, "quad", proxy_index=3, bounding_box=True, rotated=True
    ) == (f"Please provide the rotated bounding box coordinates of the following objects: {cats}")
    # The variations touch the template only, never the filled-in text.
    assert p.grounding_json_prompt("oriented bbox tower", "quad", rotated=True) == (
        "Locate the oriented bbox tower, output the rotated bbox coordinates using JSON format"
    )
    assert p.grounding_json_prompt("red car", proxy_index=1, bounding_box=True) == (
        "Output the bounding box of the red car in the image using JSON format."
    )
    with pytest.raises(InputError, match="proxy_index"):
        p.detection_json_prompt(RSAR, "obb", proxy_index=5)


def test_grounding_and_segmentation_prompts() -> None:
    assert p.grounding_user_prompt("red car on the left") == "find the red car on the left"
    assert p.vrsbench_referring_prompt("{normal_caption}") == (
        "find the {normal_caption}, delivering coordinates in plain text format 'x1,y1,x2,y2 "
        "object'"
    )
    assert p.geochat_referring_prompt("{question}") == (
        "Find all {question}, delivering each oriented coordinates in plain text format "
        "'x1,y1,x2,y2,x3,y3,x4,y4 object'"
    )
    assert p.geochat_referring_prompt("{question}", "json") == (
        "Represent all {question} with quadrant bbox coordinates in a JSON format, represent "
        "objects with quadrant bbox: the corrdinates of each"
    )
    assert p.geochat_region_caption_prompt("{question}") == (
        "[identify] What is the object present at {question}"
    )
    assert p.segmentation_prompt("pond") == "Locate the pond, output the segmentation mask"
    assert p.segmentation_prompt("pond", proxy_index=5) == "Segment the pond in the given image"


def test_question_prompts() -> None:
    assert p.zoom_user_prompt("{question}") == (
        "{question}\nZoom in to the region of interest and answer the question."
    )
    assert p.mcq_prompt(MME_EXAMPLE.split(" The choices")[0], MME_CHOICES) == MME_EXAMPLE
    assert p.vqa_prompt("is there a road?") == (
        "is there a road? Answer the question using a single word or a short phrase."
    )
    assert p.scene_cls_prompt(p.scene_classes_str(["Viaduct", "Airport", "BareLand"])) == (
        "Classify the image within one of the given classes:Airport,BareLand,Viaduct."
    )
    assert p.scene_classes_str(["b", "a"], sort=False) == "b,a."
    assert p.vhm_scene_cls_question("What is it? Answer with one word or short phrase.") == (
        "What is it?"
    )


ORIGINAL_STRIP_SET = "\n Answer the question using a single word or phrase."
SUFFIX_FORMS = [
    "",
    "\n Answer the question using a single word or phrase.",
    " \nAnswer the question using a single word or phrase.",
    " Answer the question using a single word or a short phrase.",
    "\nAnswer with one word or short phrase.",
    " ",
    "\n",
]


@given(
    body=st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r"), max_size=40),
    suffix=st.sampled_from(SUFFIX_FORMS),
)
def test_training_mcq_cleanup_equals_original_for_questions_ending_in_question_mark(
    body: str, suffix: str
) -> None:
    text = body + "?" + suffix
    assert p.strip_mcq_suffix(text) == text.rstrip(ORIGINAL_STRIP_SET)


def test_training_mcq_cleanup_fixes_the_char_set_bug() -> None:
    text = "Name the colour of the road"
    assert text.rstrip(ORIGINAL_STRIP_SET) == "Name the colour of"
    assert p.strip_mcq_suffix(text + LITERALS["LRSVQA_ANSWER_SUFFIX"]) == text
    training = p.mcq_prompt(
        "Is it red?" + LITERALS["LRSVQA_ANSWER_SUFFIX"], ["(A) yes"], training=True
    )
    assert training.startswith("Is it red? The choices are listed below: \n(A) yes\nSelect")
    evaluation = p.mcq_prompt("Is it red?\n", ["(A) yes"])
    assert evaluation.startswith("Is it red?\n The choices")  # eval keeps Text untouched


def _wire_spans(text: str) -> set[str]:
    return set(re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text))


def _escaped(value: str) -> str:
    return value.replace("\n", "\\n").replace("\t", "\\t")


def test_strings_appear_verbatim_in_the_wire_spec() -> None:
    """Cross-check against the spec file itself, so a typo in a literal above cannot hide."""
    if not WIRE.is_file():
        pytest.skip(f"{WIRE} not found (set RSCOVLM_WIRE_FORMATS)")
    text = WIRE.read_text(encoding="utf-8")
    spans = _wire_spans(text)
    values = [v for v in LITERALS.values() if not v.startswith(("\n", " \n"))]
    values += [*DET_PROXIES_HBB, *DET_PROXIES_ORIENTED, *GROUNDING_PROXIES_HBB]
    values += [*GROUNDING_PROXIES_ORIENTED, *SEG_PROXIES, MME_EXAMPLE]
    values += ["?" + LITERALS["LRSVQA_ANSWER_SUFFIX"], "?" + LITERALS["LRSVQA_COUNT_ANSWER_SUFFIX"]]
    values += [p.zoom_user_prompt("{question}"), p.detection_user_prompt(DOTA_V1_0, eval_mode=True)]
    values += [p.DET_USER_TEMPLATE.format(categories="{categories_str}")]
    for value in values:
        esc = _escaped(value)
        assert esc in spans or any(esc in span for span in spans), value
    block = text.split("### 4.1", 1)[1].split("```\n", 1)[1].split("\n```", 1)[0]
    assert block == p.ZOOM_SYSTEM_PROMPT
