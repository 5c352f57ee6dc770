"""ONE conversation builder per task, shared by training and inference.

Training (:func:`rscovlm.data.render.render`) draws the prompt variant and the resolution, then
calls a builder here WITH the answer; inference (tiled detection, the Zoom-in Chain agent,
chat, benchmarks) calls the same builder WITHOUT it. A prompt therefore cannot drift between
what a model was trained on and what it is asked: the inference conversation is the training
conversation minus its assistant turn(s) (``tests/data/test_tasks.py``). Every string comes
from :mod:`rscovlm.formats`.

The layouts (WIRE_FORMATS.md sections in brackets):

- detection [§2] and grounding [§3.1]: ``[system of the box kind and style?, user[image,
  text], assistant?]`` (:func:`boxes_messages`); HBB JSON has no system prompt (the chat
  template's default is used);
- a question — VQA, multiple choice, caption, scene class — [§4.4, §5]: ``[system?,
  user[image?, question], assistant?]`` and further ``user[question], assistant`` turns
  (:func:`question_messages`);
- the Zoom-in Chain [§4.3]: ``[system, user[overview, question + zoom instruction]]``
  (:func:`zoom_first_turn`), then per hop ``assistant[tool call], user[crop, follow-up]``
  (:func:`zoom_crop_turn`), then the answer (:func:`zoom_messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rscovlm.data.conversation import Conversation, ImagePart, Message, Part, TextPart
from rscovlm.errors import InputError
from rscovlm.formats import (
    CAPTION_PROMPT,
    LRSVQA_ANSWER_SUFFIX,
    LRSVQA_COUNT_ANSWER_SUFFIX,
    VQA_SHORT_ANSWER_SUFFIX,
    ZOOM_FOLLOW_UP,
    ZOOM_SYSTEM_PROMPT,
    detection_system_prompt,
    detection_user_prompt,
    grounding_user_prompt,
    mcq_prompt,
    scene_classes_str,
    scene_cls_prompt,
    zoom_user_prompt,
)
from rscovlm.geometry import BoxKind
from rscovlm.resolution import DEFAULT_FAMILY, get_family

__all__ = [
    "boxes_messages",
    "caption_question",
    "chat",
    "classification_question",
    "detection_conversation",
    "grounding_conversation",
    "question_conversation",
    "question_messages",
    "vqa_question",
    "zoom_crop_turn",
    "zoom_first_turn",
    "zoom_messages",
]


def chat(system: str | None, turns: Sequence[tuple[Sequence[Part], str | None]]) -> list[Message]:
    """``[system?] + (user parts, assistant text?)*``; an answer of ``None`` ends the prompt
    there (inference)."""
    out = [Message("system", (TextPart(system),))] if system is not None else []
    for user, answer in turns:
        out.append(Message("user", tuple(user)))
        if answer is not None:
            out.append(Message("assistant", (TextPart(answer),)))
    return out


# --- detection and grounding ----------------------------------------------------------------


def boxes_messages(
    image: ImagePart, user: str, kind: BoxKind, style: str = "plain", answer: str | None = None
) -> list[Message]:
    """A detection or grounding sample: the system prompt of ``kind`` / ``style``, the image and
    the user text, then the answer when training."""
    return chat(detection_system_prompt(kind, style), [([image, TextPart(user)], answer)])


def detection_conversation(
    image: ImagePart,
    classes: Sequence[str],
    kind: BoxKind = "quad",
    *,
    eval_mode: bool = True,
    family: str = DEFAULT_FAMILY,
    meta: dict[str, Any] | None = None,
) -> Conversation:
    """The plain detection prompt ``[system, user[image, "find the {classes}."]]``.

    Args:
        image: The image (or patch) part.
        classes: The class list (original or normalised spelling).
        kind: ``quad`` (oriented, the released detector), ``hbb`` or ``obb``.
        eval_mode: The official evaluation's trailing period (WIRE §2.7); ``False`` gives the
            trained text exactly.
        family: The model family.
        meta: Extra ``meta`` entries (``task`` and ``variant`` are set).
    """
    user = detection_user_prompt(classes, eval_mode=eval_mode)
    return Conversation(
        boxes_messages(image, user, kind),
        get_family(family),
        {"task": "detection", "variant": "plain", **(meta or {})},
    )


def grounding_conversation(
    image: ImagePart,
    expression: str,
    kind: BoxKind = "hbb",
    *,
    family: str = DEFAULT_FAMILY,
    meta: dict[str, Any] | None = None,
) -> Conversation:
    """The plain referring prompt ``[system, user[image, "find the {expression}"]]``."""
    return Conversation(
        boxes_messages(image, grounding_user_prompt(expression), kind),
        get_family(family),
        {"task": "grounding", "variant": "plain", **(meta or {})},
    )


# --- questions: VQA, multiple choice, captions, scene classes ------------------------------------


def vqa_question(
    text: str,
    choices: Sequence[str] | None = None,
    suffix: str = "none",
    category: str | None = None,
    *,
    training: bool = True,
) -> str:
    """The user text of a VQA question: multiple choice with its instruction, or the question
    with the configured answer suffix (``none``, ``short``, ``lrsvqa``: the count suffix for
    ``count`` questions), added once."""
    if choices:
        return mcq_prompt(text, choices, training=training)
    if suffix == "none":
        return text
    if suffix == "short":
        tail = VQA_SHORT_ANSWER_SUFFIX
    else:
        tail = LRSVQA_COUNT_ANSWER_SUFFIX if category == "count" else LRSVQA_ANSWER_SUFFIX
    return text if text.endswith(tail) else text + tail


def caption_question() -> str:
    """The caption prompt (WIRE §5)."""
    return CAPTION_PROMPT


def classification_question(classes: Sequence[str]) -> str:
    """The scene-classification prompt over ``classes`` (WIRE §5)."""
    return scene_cls_prompt(scene_classes_str(list(classes)))


def question_messages(
    image: ImagePart | None,
    questions: Sequence[str],
    answers: Sequence[str] | None = None,
    *,
    system: str | None = None,
) -> list[Message]:
    """``[system?, user[image?, q1], a1, user[q2], a2, …]``; without ``answers`` the prompt
    ends after the first question (what inference asks).

    Raises:
        InputError: No question, or answers that do not match the questions.
    """
    if not questions:
        raise InputError("a question conversation needs a question")
    if answers is not None and len(answers) != len(questions):
        raise InputError(f"{len(questions)} questions but {len(answers)} answers")
    turns: list[tuple[list[Part], str | None]] = []
    for k, question in enumerate(questions if answers is not None else questions[:1]):
        user: list[Part] = [TextPart(question)]
        if k == 0 and image is not None:
            user.insert(0, image)
        turns.append((user, answers[k] if answers is not None else None))
    return chat(system, turns)


def question_conversation(
    question: str,
    image: ImagePart | None = None,
    *,
    system: str | None = None,
    family: str = DEFAULT_FAMILY,
    meta: dict[str, Any] | None = None,
) -> Conversation:
    """``[system?, user[image?, question]]``: the single-turn prompt of chat and evaluation."""
    return Conversation(
        question_messages(image, [question], system=system), get_family(family), dict(meta or {})
    )


# --- the Zoom-in Chain ---------------------------------------------------------------------------


def zoom_first_turn(overview: ImagePart, question: str) -> list[Message]:
    """``[system, user[overview, question + zoom instruction]]``."""
    return chat(ZOOM_SYSTEM_PROMPT, [([overview, TextPart(zoom_user_prompt(question))], None)])


def zoom_crop_turn(call: str, crop: ImagePart) -> list[Message]:
    """``[assistant[call], user[crop, "Here's the zoomed-in image. …"]]``: one hop."""
    return [
        Message("assistant", (TextPart(call),)),
        Message("user", (crop, TextPart(ZOOM_FOLLOW_UP))),
    ]


def zoom_messages(
    overview: ImagePart,
    question: str,
    hops: Sequence[tuple[str, ImagePart]] = (),
    answer: str | None = None,
) -> list[Message]:
    """The whole chain: first turn, each ``(tool call, crop)`` hop, then the answer."""
    messages = zoom_first_turn(overview, question)
    for call, crop in hops:
        messages += zoom_crop_turn(call, crop)
    if answer is not None:
        messages.append(Message("assistant", (TextPart(answer),)))
    return messages
