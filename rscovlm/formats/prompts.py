"""Every prompt string the released RSCoVLM checkpoints were trained on or evaluated with.

The strings are byte-exact copies of WIRE_FORMATS.md, typos and all ("corrdinates", "each
vertices", the merged HBB proxy template): the checkpoints learned them, so a fix would only move
the prompts away from what the weights expect. Items marked [EVAL] in the spec are the original
benchmark wordings; they are kept for reproducing the paper's numbers, not because they are good.
Box answers and tool calls are written by :mod:`rscovlm.formats.boxes` and
:mod:`rscovlm.formats.tool_calls`; the question-answering prompts live in
:mod:`rscovlm.formats.qa_prompts` and are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rscovlm.errors import InputError
from rscovlm.formats.classes import categories_str
from rscovlm.formats.qa_prompts import (
    CAPTION_PROMPT,
    LRSVQA_ANSWER_SUFFIX,
    LRSVQA_COUNT_ANSWER_SUFFIX,
    MCQ_ANSWER_CUE,
    MCQ_CHOICES_HEADER,
    MCQ_INSTRUCTION,
    MCQ_TRAIN_STRIP_SUFFIXES,
    SCENE_CLS_PREFIX,
    VHM_CLS_SUFFIX,
    VQA_SHORT_ANSWER_SUFFIX,
    ZOOM_FOLLOW_UP,
    ZOOM_SYSTEM_PROMPT,
    ZOOM_USER_SUFFIX,
    mcq_prompt,
    scene_classes_str,
    scene_cls_prompt,
    strip_mcq_suffix,
    vhm_scene_cls_question,
    vqa_prompt,
    zoom_user_prompt,
)
from rscovlm.formats.tokens import IM_END, IM_START, IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START
from rscovlm.geometry import BoxKind

__all__ = [
    "CAPTION_PROMPT",
    "CHAT_IMAGE_PAD",
    "CHAT_IM_END",
    "CHAT_IM_START",
    "CHAT_VIDEO_PAD",
    "CHAT_VISION_END",
    "CHAT_VISION_START",
    "DEFAULT_SYSTEM_PROMPT",
    "DET_JSON_PROXY_TEMPLATES_HBB",
    "DET_JSON_PROXY_TEMPLATES_ORIENTED",
    "DET_JSON_SYSTEM_PROMPT_OBB",
    "DET_JSON_SYSTEM_PROMPT_QUAD",
    "DET_JSON_TEMPLATE_HBB",
    "DET_JSON_TEMPLATE_ORIENTED",
    "DET_SYSTEM_PROMPT_HBB",
    "DET_SYSTEM_PROMPT_OBB",
    "DET_SYSTEM_PROMPT_QUAD",
    "DET_USER_TEMPLATE",
    "GEOCHAT_REGION_CAPTION_TEMPLATE",
    "GROUNDING_JSON_PROXY_TEMPLATES_HBB",
    "GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED",
    "GROUNDING_JSON_TEMPLATE_HBB",
    "GROUNDING_JSON_TEMPLATE_ORIENTED",
    "GROUNDING_USER_TEMPLATE",
    "LRSVQA_ANSWER_SUFFIX",
    "LRSVQA_COUNT_ANSWER_SUFFIX",
    "MCQ_ANSWER_CUE",
    "MCQ_CHOICES_HEADER",
    "MCQ_INSTRUCTION",
    "MCQ_TRAIN_STRIP_SUFFIXES",
    "NO_OBJECTS",
    "OPEN_ENDED_PHRASE",
    "SCENE_CLS_PREFIX",
    "SEG_PROXY_TEMPLATES",
    "SEG_SYSTEM_PROMPT",
    "SEG_TEMPLATE",
    "TEOCHAT_CATEGORY_REMOVALS",
    "TEOCHAT_USER_REPLACEMENTS",
    "VHM_CLS_SUFFIX",
    "VQA_SHORT_ANSWER_SUFFIX",
    "ZOOM_FOLLOW_UP",
    "ZOOM_SYSTEM_PROMPT",
    "ZOOM_USER_SUFFIX",
    "bbox_to_bounding_box",
    "bracket_box",
    "detection_json_prompt",
    "detection_system_prompt",
    "detection_user_prompt",
    "geochat_referring_prompt",
    "geochat_region_caption_prompt",
    "grounding_json_prompt",
    "grounding_user_prompt",
    "mcq_prompt",
    "open_ended",
    "oriented_to_rotated",
    "scene_classes_str",
    "scene_cls_prompt",
    "segmentation_prompt",
    "strip_mcq_suffix",
    "vhm_scene_cls_question",
    "vqa_prompt",
    "vrsbench_referring_prompt",
    "zoom_user_prompt",
]

#: The Qwen2.5-VL template inserts this system turn when a conversation has none (WIRE §1.1).
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
#: The answer to a detection prompt for an image without objects, plain and JSON alike.
NO_OBJECTS = "There are none."

# --- dense detection, plain text (WIRE §2.3; the only trained box format) -----------------------
DET_SYSTEM_PROMPT_HBB = (
    "As an AI assistant, you specialize in accurate image object detection, delivering "
    "coordinates in plain text format 'x1,y1,x2,y2 object'."
)
DET_SYSTEM_PROMPT_OBB = (
    "As an AI assistant, you specialize in accurate oriented object detection, delivering "
    "coordinates in plain text format 'x,y,w,h,a object'."
)
DET_SYSTEM_PROMPT_QUAD = (
    "As an AI assistant, you specialize in accurate oriented object detection, delivering "
    "coordinates of the polygon vertices in plain text format 'x1,y1,x2,y2,x3,y3,x4,y4 object'."
)
DET_USER_TEMPLATE = "find the {categories}"

# --- dense detection, JSON (WIRE §2.6; code path only, never in the official mix) ---------------
DET_JSON_SYSTEM_PROMPT_OBB = (
    "You are an AI assistant specializing in oriented object detection. Represent objects with: "
    "center (x,y), width (w), height (h), and rotation angle."
)
DET_JSON_SYSTEM_PROMPT_QUAD = (
    "You are an AI assistant specializing in oriented object detection. Represent objects with "
    "quadrant bbox: the corrdinates of each vertices of the oriented bounding boxes in clock-wise "
    "order."
)
DET_JSON_TEMPLATE_HBB = (
    "Locate every item from the category list in the image and output the coordinates in JSON "
    "format. The category set includes {categories}."
)
DET_JSON_TEMPLATE_ORIENTED = (
    "Locate every item from the category list in the image and output the oriented bbox "
    "coordinates in JSON format. The category set includes {categories}."
)
#: Five entries, not six: a missing comma in the original merged the first two (WIRE §9).
DET_JSON_PROXY_TEMPLATES_HBB: tuple[str, ...] = (
    "Please output bbox coordinates and names of {categories} in JSON format."
    "Give me the bboxes and names of {categories} using JSON format",
    "Output the category names and bboxes of the {categories} in the image using JSON format.",
    "From this image, provide the bboxes and categories for {categories} using JSON format",
    "Please provide the bbox coordinates of the following objects: {categories}.",
    "Locate {categories} in the given image and provide the bboxes using JSON format",
)
DET_JSON_PROXY_TEMPLATES_ORIENTED: tuple[str, ...] = (
    "Give me the oriented bboxes and names of {categories} using JSON format",
    "Output the category names and oriented bboxes of the {categories} in the image using JSON "
    "format.",
    "From this image, provide the oriented bboxes and categories for {categories} using JSON "
    "format",
    "Please provide the oriented bbox coordinates of the following objects: {categories}",
    "Locate {categories} in the given image and provide the oriented bboxes using JSON format",
)
#: Replaces ``(the )?{categories}`` in the open-ended mode (dead code in the original, §2.6).
OPEN_ENDED_PHRASE = "all the visible remote sensing objects"

# --- grounding (WIRE §3.1, §3.2) ----------------------------------------------------------------
GROUNDING_USER_TEMPLATE = "find the {prompt}"
GROUNDING_JSON_TEMPLATE_HBB = "Locate the {prompt}, output the bbox coordinates using JSON format"
GROUNDING_JSON_PROXY_TEMPLATES_HBB: tuple[str, ...] = (
    "Give me the bbox of {prompt} using JSON format",
    "Output the bbox of the {prompt} in the image using JSON format.",
    "From this image, provide the bbox for {prompt} using JSON format",
    "Please provide the bbox coordinate of the region this sentence describes: {prompt}",
    "Locate {prompt} in the given image and provide the bbox using JSON format",
)
GROUNDING_JSON_TEMPLATE_ORIENTED = (
    "Locate the {prompt}, output the oriented bbox coordinates using JSON format"
)
GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED: tuple[str, ...] = (
    "Give me the oriented bounding box of {prompt} using JSON format",
    "Output the oriented bounding box of the {prompt} in the image using JSON format.",
    "From this image, provide the oriented bounding box for {prompt} using JSON format",
    "Please provide the oriented bounding box coordinate of the region this sentence describes: "
    "{prompt}",
    "Locate {prompt} in the given image and provide the oriented bounding box using JSON format",
)
_VRSBENCH_REFERRING = (
    "find the {prompt}, delivering coordinates in plain text format 'x1,y1,x2,y2 object'"
)
_GEOCHAT_REFERRING_PLAIN = (
    "Find all {prompt}, delivering each oriented coordinates in plain text format "
    "'x1,y1,x2,y2,x3,y3,x4,y4 object'"
)
# Truncated mid-sentence in the original source; kept as evaluated (WIRE §3.2).
_GEOCHAT_REFERRING_JSON = (
    "Represent all {prompt} with quadrant bbox coordinates in a JSON format, represent objects "
    "with quadrant bbox: the corrdinates of each"
)
GEOCHAT_REGION_CAPTION_TEMPLATE = "[identify] What is the object present at {prompt}"

# --- referring segmentation, RLE (WIRE §3.1; not in the official mix) ---------------------------
SEG_SYSTEM_PROMPT = (
    "As an AI assistant, you specialize in segmentation, delivering segmentation results as "
    "Row-wise RLE format. Each row is represented as '<value>*<count>', and rows are separated by "
    "';'. The last row ends with a semicolon. For example, '0*1,1*2;0*3;' represents the mask."
)
SEG_TEMPLATE = "Locate the {prompt}, output the segmentation mask"
SEG_PROXY_TEMPLATES: tuple[str, ...] = (
    "Give me the segmentation mask of {prompt}",
    "Output the segmentation mask of the {prompt} in the image",
    "From this image, provide the segmentation mask for {prompt}",
    "Please provide the segmentation mask of the region this sentence describes: {prompt}",
    "Locate {prompt} in the given image and provide the segmentation mask",
    "Segment the {prompt} in the given image",
)


# --- chat layout of Qwen2/2.5-VL (WIRE §1.1) ----------------------------------------------------
CHAT_IM_START = IM_START
CHAT_IM_END = IM_END
CHAT_VISION_START = VISION_START
CHAT_VISION_END = VISION_END
CHAT_IMAGE_PAD = IMAGE_PAD
CHAT_VIDEO_PAD = VIDEO_PAD

# --- TEOChatlas / GeoChat-from-TEOChatlas instruction cleanup (WIRE §3.4) -----------------------
#: Applied in order to every user text item of a TEOChatlas-style sample, then ``.strip()``.
TEOCHAT_USER_REPLACEMENTS: tuple[tuple[str, str], ...] = ((". ?", "."), (".. ", "."))
#: Removed (as literal strings, in order) from the last user text to derive the label of a
#: box-only grounding answer; then digits, ``"all "``, ``"?"`` go and ``"  "`` becomes ``" "``.
TEOCHAT_CATEGORY_REMOVALS: tuple[str, ...] = (
    "This is a satellite image:",
    "<video>",
    "<image>",
    "Identify",
    "the location of",
    "Include bounding boxes of the form [x_min, y_min, x_max, y_max] for each identified object "
    "in your response",
    "Include a bounding box of the form [x_min, y_min, x_max, y_max] for each identified "
    "building in your response.",
    "If there are no such buildings, do not output a bounding box",
    "What is ",
)


def bracket_box(coords: Iterable[int]) -> str:
    """An in-text box as TEOChatlas / GeoChat training text writes it: ``[x1, y1, x2, y2]``.

    The values are model-space ints (WIRE §3.4: re-emitted as ``[`` + values joined by ``, ``
    + ``]``).

    Examples:
        >>> bracket_box([12, 3, 40, 56])
        '[12, 3, 40, 56]'
    """
    return "[" + ", ".join(str(int(v)) for v in coords) + "]"


def bbox_to_bounding_box(template: str) -> str:
    """Spell out ``bbox`` (also inside ``bboxes``), the proxy-prompt variation of WIRE §2.6.

    Apply it to a template before filling it, as the original did, so class names and referring
    expressions are never rewritten.
    """
    return template.replace("bbox", "bounding box")


def oriented_to_rotated(template: str) -> str:
    """Replace ``oriented`` by ``rotated``, the second proxy-prompt variation (template only)."""
    return template.replace("oriented", "rotated")


def open_ended(template: str) -> str:
    """Turn a category template into the open-ended form (``(the )?{categories}`` replaced).

    Examples:
        >>> open_ended(DET_USER_TEMPLATE)
        'find all the visible remote sensing objects'
    """
    return re.sub(r"(the )?\{categories\}", OPEN_ENDED_PHRASE, template)


def detection_system_prompt(kind: BoxKind, style: str = "plain") -> str | None:
    """The system prompt of a detection sample; ``None`` means "use the default" (HBB JSON).

    Raises:
        InputError: Unknown kind or style.
    """
    table = {
        ("hbb", "plain"): DET_SYSTEM_PROMPT_HBB,
        ("obb", "plain"): DET_SYSTEM_PROMPT_OBB,
        ("quad", "plain"): DET_SYSTEM_PROMPT_QUAD,
        ("hbb", "json"): None,
        ("obb", "json"): DET_JSON_SYSTEM_PROMPT_OBB,
        ("quad", "json"): DET_JSON_SYSTEM_PROMPT_QUAD,
    }
    if (kind, style) not in table:
        raise InputError(f"no detection system prompt for kind={kind!r}, style={style!r}")
    return table[(kind, style)]


def detection_user_prompt(classes: Iterable[str], *, eval_mode: bool = False) -> str:
    """The plain detection user text: ``find the {categories}``.

    Args:
        classes: All classes of the dataset, original or normalised spelling.
        eval_mode: Add the trailing period of the original evaluation prompt (WIRE §2.7, §8);
            training never had it.

    Examples:
        >>> detection_user_prompt(["ship", "small-vehicle"], eval_mode=True)
        'find the ship, small vehicle.'
    """
    text = DET_USER_TEMPLATE.format(categories=categories_str(classes))
    return text + "." if eval_mode else text


def _pick(main: str, proxies: tuple[str, ...], proxy_index: int | None) -> str:
    if proxy_index is None:
        return main
    if not 0 <= proxy_index < len(proxies):
        raise InputError(f"proxy_index must be in [0, {len(proxies)}), got {proxy_index}")
    return proxies[proxy_index]


def _vary(template: str, bounding_box: bool, rotated: bool) -> str:
    template = bbox_to_bounding_box(template) if bounding_box else template
    return oriented_to_rotated(template) if rotated else template


def detection_json_prompt(
    classes: Iterable[str],
    kind: BoxKind,
    *,
    proxy_index: int | None = None,
    bounding_box: bool = False,
    rotated: bool = False,
) -> str:
    """A JSON detection user prompt: main template or proxy ``proxy_index``, then variations.

    The caller draws the template and the variations (seeded); this function only spells them.
    ``rotated`` is ignored for HBB, whose templates never say "oriented".

    Raises:
        InputError: ``proxy_index`` out of range.
    """
    if kind == "hbb":
        template = _pick(DET_JSON_TEMPLATE_HBB, DET_JSON_PROXY_TEMPLATES_HBB, proxy_index)
    else:
        template = _pick(DET_JSON_TEMPLATE_ORIENTED, DET_JSON_PROXY_TEMPLATES_ORIENTED, proxy_index)
    return _vary(template, bounding_box, rotated).format(categories=categories_str(classes))


def grounding_user_prompt(expression: str) -> str:
    """The trained plain referring prompt ``find the {expression}`` (no period, WIRE §3.1)."""
    return GROUNDING_USER_TEMPLATE.format(prompt=expression)


def grounding_json_prompt(
    expression: str,
    kind: BoxKind = "hbb",
    *,
    proxy_index: int | None = None,
    bounding_box: bool = False,
    rotated: bool = False,
) -> str:
    """A JSON referring prompt (main or proxy template, then the variations), WIRE §3.1."""
    if kind == "hbb":
        template = _pick(
            GROUNDING_JSON_TEMPLATE_HBB, GROUNDING_JSON_PROXY_TEMPLATES_HBB, proxy_index
        )
    else:
        template = _pick(
            GROUNDING_JSON_TEMPLATE_ORIENTED, GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED, proxy_index
        )
    return _vary(template, bounding_box, rotated).format(prompt=expression)


def vrsbench_referring_prompt(expression: str) -> str:
    """[EVAL] The untrained no-system prompt of ``vrsbench_referring`` (and grounding ICL)."""
    return _VRSBENCH_REFERRING.format(prompt=expression)


def geochat_referring_prompt(expression: str, style: str = "plain") -> str:
    """[EVAL] The ``geochat_referring`` prompt; the JSON form is truncated as in the original."""
    template = _GEOCHAT_REFERRING_JSON if style == "json" else _GEOCHAT_REFERRING_PLAIN
    return template.format(prompt=expression)


def geochat_region_caption_prompt(region: str) -> str:
    """[EVAL] ``geochat_region_captioning``: the benchmark's region string, unconverted."""
    return GEOCHAT_REGION_CAPTION_TEMPLATE.format(prompt=region)


def segmentation_prompt(expression: str, *, proxy_index: int | None = None) -> str:
    """The RLE referring-segmentation user prompt (main or one of six proxies)."""
    return _pick(SEG_TEMPLATE, SEG_PROXY_TEMPLATES, proxy_index).format(prompt=expression)
