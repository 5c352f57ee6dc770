"""Question-answering prompts: Zoom-in Chain, multiple choice, VQA, scene classes, captions.

Byte-exact copies of WIRE_FORMATS.md §4 and §5 (re-exported by :mod:`rscovlm.formats.prompts`).
The one deliberate change is the training MCQ cleanup: the original ``str.rstrip`` with a
*character set* ate the end of any question that did not end in ``?``; :func:`strip_mcq_suffix`
removes the known suffixes exactly and gives the same text for questions ending in ``?``.
"""

from __future__ import annotations

from collections.abc import Iterable

# --- Zoom-in Chain (WIRE §4.1, §4.2) ------------------------------------------------------------
_ZOOM_TOOL_JSON = (
    '{"type": "function", "function": {"name": "image_zoom_in", "description": "Zoom in to the '
    "region of interest on the given image. Input the bounding box of the region of interest and "
    'return the zoomed-in image to help to focus and view more clearly.", "parameters": {"name": '
    '"bbox", "type": "list[int]", "description": "The bounding box of the region of interest as '
    "an array [x1, y1, x2, y2], where (x1, y1) and (x2, y2) indicate the positions' absolute "
    'coordinates of the left top and right down corners, respectively.", "required": true}}}'
)
#: The Qwen function-calling system prompt declaring ``image_zoom_in`` (912 ASCII characters, no
#: leading or trailing newline; the tool JSON is a single line).
ZOOM_SYSTEM_PROMPT = (
    "# Tools\n"
    "\n"
    "You may call one or more functions to assist with the user query.\n"
    "\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n" + _ZOOM_TOOL_JSON + "\n</tools>\n"
    "\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call>"
)
ZOOM_USER_SUFFIX = "\nZoom in to the region of interest and answer the question."
#: The user text after the crop image item (straight ASCII apostrophe).
ZOOM_FOLLOW_UP = "Here's the zoomed-in image. You can complete your task now."

# --- multiple choice (WIRE §4.4) ----------------------------------------------------------------
MCQ_CHOICES_HEADER = " The choices are listed below: \n"
MCQ_INSTRUCTION = (
    "Select the best answer to the above multiple-choice question based on the image. Respond "
    "with only the letter (A, B, C, D, or E) of the correct option."
)
MCQ_ANSWER_CUE = "\nThe best answer is:"

# --- answer-format suffixes (WIRE §4.3, §4.5, §5) -----------------------------------------------
#: LRS-VQA non-count questions end with this; count questions with the next one.
LRSVQA_ANSWER_SUFFIX = "\n Answer the question using a single word or phrase."
LRSVQA_COUNT_ANSWER_SUFFIX = " \nAnswer the question using a single word or phrase."
#: [EVAL] GeoChat HRBEN/LRBEN and VRSBench VQA (note "a short phrase", leading space).
VQA_SHORT_ANSWER_SUFFIX = " Answer the question using a single word or a short phrase."
#: [EVAL] removed from VHM scene-classification questions.
VHM_CLS_SUFFIX = "Answer with one word or short phrase."
#: Answer-format sentences the training MCQ cleanup removes (each is made only of characters of
#: the original ``rstrip`` set, so the original removed them too).
MCQ_TRAIN_STRIP_SUFFIXES: tuple[str, ...] = (
    "Answer the question using a single word or phrase.",
    "Answer the question using a single word or a short phrase.",
    VHM_CLS_SUFFIX,
)

# --- scene classification and captions (WIRE §5.1, §5.5) ----------------------------------------
#: Followed directly by the class string: no space after the colon.
SCENE_CLS_PREFIX = "Classify the image within one of the given classes:"
CAPTION_PROMPT = "Describe the image"

_MCQ_SPACE = " \n"  # the whitespace of the original strip set; other whitespace is content


def zoom_user_prompt(question: str) -> str:
    """The first user text of a Zoom-in Chain sample: the question, then the zoom instruction.

    Examples:
        >>> zoom_user_prompt("Is it red?")
        'Is it red?\\nZoom in to the region of interest and answer the question.'
    """
    return question + ZOOM_USER_SUFFIX


def strip_mcq_suffix(text: str) -> str:
    """Remove a trailing answer-format sentence from an MCQ ``Text``, exactly (training).

    The original ``Text.rstrip('\\n Answer the question using a single word or phrase.')``
    strips a character set and stops at ``?``, so for questions ending in ``?`` this gives the
    same text; for any other question it keeps the words the original ate.

    Examples:
        >>> strip_mcq_suffix("Is it red?\\n Answer the question using a single word or phrase.")
        'Is it red?'
        >>> strip_mcq_suffix("Name the road")  # the original returned 'Nam'
        'Name the road'
    """
    out = text.rstrip(_MCQ_SPACE)
    for suffix in MCQ_TRAIN_STRIP_SUFFIXES:
        if out.endswith(suffix):
            return out[: -len(suffix)].rstrip(_MCQ_SPACE)
    return out


def mcq_prompt(text: str, choices: Iterable[str], *, training: bool = False) -> str:
    """A multiple-choice question with its choices and the letter instruction (WIRE §4.4).

    Args:
        text: The question (``Text`` field).
        choices: The choice strings as given, e.g. ``"(A) Yellow"``; each is followed by ``\\n``.
        training: Apply the training cleanup (:func:`strip_mcq_suffix`); evaluation used
            ``Text`` untouched.

    Examples:
        >>> mcq_prompt("Color?", ["(A) Red", "(B) Blue"])[:55]
        'Color? The choices are listed below: \\n(A) Red\\n(B) Blue\\n'
    """
    question = strip_mcq_suffix(text) if training else text
    listed = "".join(choice + "\n" for choice in choices)
    return question + MCQ_CHOICES_HEADER + listed + MCQ_INSTRUCTION + MCQ_ANSWER_CUE


def vqa_prompt(question: str) -> str:
    """[EVAL] A GeoChat / VRSBench VQA question with the short-answer suffix appended."""
    return question + VQA_SHORT_ANSWER_SUFFIX


def vhm_scene_cls_question(question: str) -> str:
    """[EVAL] A VHM scene-classification question without its answer-format sentence."""
    return question.replace(VHM_CLS_SUFFIX, "").strip()


def scene_classes_str(names: Iterable[str], *, sort: bool = True) -> str:
    """The class string of a scene-classification prompt: ``","``-joined, no spaces, final ``.``.

    ``sort=True`` is the ``cls_aid``/``cls_resisc`` form (sorted folder names); the ``_full`` and
    ``_timm`` benchmarks keep the given order.

    Examples:
        >>> scene_classes_str(["Viaduct", "Airport", "BareLand"])
        'Airport,BareLand,Viaduct.'
    """
    listed = sorted(names) if sort else list(names)
    return ",".join(listed) + "."


def scene_cls_prompt(class_string: str) -> str:
    """The scene-classification prompt: the prefix immediately followed by the class string.

    Examples:
        >>> scene_cls_prompt("Airport,Beach.")
        'Classify the image within one of the given classes:Airport,Beach.'
    """
    return SCENE_CLS_PREFIX + class_string
