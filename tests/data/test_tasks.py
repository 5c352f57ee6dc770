"""One builder per task: the inference prompt IS the training conversation minus its answers.

Each test renders a record as training does (``render``, random draws and all), then builds the
inference prompt with the builder the pipelines and chat call, from the same image part, and
asserts equality of the messages; a drift in either path breaks it.
"""

from __future__ import annotations

import numpy as np

from rscovlm.data import tasks
from rscovlm.data.conversation import Conversation, ImagePart, Message, chat_text
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import QA, Box, Instance, Record, Referring
from rscovlm.data.render import render
from rscovlm.formats import DOTA_V1_0
from rscovlm.model.encoding import question_conversation
from rscovlm.pipelines.detect import detection_conversation as pipeline_detection

POLICY = RenderPolicy(
    tasks={t: {"random_resize_prob": 0.0} for t in ("detection", "grounding", "vqa", "caption")}
)


def _prompt(conv: Conversation) -> list[Message]:
    """The training conversation without its assistant turns."""
    return [m for m in conv.messages if m.role != "assistant"]


def _first_image(conv: Conversation) -> ImagePart:
    return conv.image_parts()[0]


def _train(record: Record, policy: RenderPolicy = POLICY) -> Conversation:
    return render(record, np.random.default_rng(3), policy)


def test_detection_prompt_is_the_training_prompt() -> None:
    record = Record(
        id="P0001",
        source="dota",
        task="detection",
        images=[{"path": "images/P0001.png", "width": 900, "height": 700}],
        objects=[Instance(class_name="ship", box=Box.from_hbb([10, 20, 60, 90]))],
        meta={"class_list": "dota1.0"},
    )
    for kind in ("quad", "hbb", "obb"):
        policy = RenderPolicy(tasks={"detection": {"random_resize_prob": 0.0, "box_kind": kind}})
        train = _train(record, policy)
        assert [m.role for m in train.messages] == ["system", "user", "assistant"]
        part = _first_image(train)
        infer = tasks.detection_conversation(part, DOTA_V1_0, kind, eval_mode=False)
        assert infer.messages == _prompt(train)
    # The evaluation prompt (what `rscovlm detect` sends) differs by its trailing period only.
    train = _train(record)
    evaluation = pipeline_detection(_first_image(train), DOTA_V1_0, "quad")
    assert evaluation.messages[0] == train.messages[0]
    assert evaluation.messages[1].text == train.messages[1].text + "."


def test_grounding_prompt_is_the_training_prompt() -> None:
    expression = "the small car near the road"
    record = Record(
        id="r1",
        source="refgeo",
        task="grounding",
        images=[{"path": "a.png", "width": 512, "height": 512}],
        referring=[Referring(expression=expression, box=Box.from_hbb([100, 200, 150, 230]))],
    )
    for kind in ("hbb", "quad"):
        policy = RenderPolicy(tasks={"grounding": {"random_resize_prob": 0.0, "box_kind": kind}})
        train = _train(record, policy)
        infer = tasks.grounding_conversation(_first_image(train), expression, kind)
        assert infer.messages == _prompt(train)


def test_question_prompts_are_the_training_prompts() -> None:
    image = [{"path": "a.png", "width": 800, "height": 600}]
    cases = [
        (
            Record(
                id="q", source="vqa", task="vqa", images=image,
                qa=[QA(question="Is it?", answer="yes")],
            ),
            tasks.vqa_question("Is it?"),
        ),
        (
            Record(
                id="m", source="vqa", task="vqa", images=image,
                qa=[QA(question="Colour?", answer="A", choices=["(A) red", "(B) blue"])],
            ),
            tasks.vqa_question("Colour?", ["(A) red", "(B) blue"]),
        ),
        (
            Record(id="c", source="ucm", task="caption", images=image, captions=["planes."]),
            tasks.caption_question(),
        ),
        (
            Record(
                id="s", source="aid", task="classification", images=image, label="Airport",
                meta={"classes": ["Viaduct", "Airport"]},
            ),
            tasks.classification_question(["Viaduct", "Airport"]),
        ),
    ]  # fmt: skip
    for record, question in cases:
        train = _train(record)
        infer = question_conversation(question, _first_image(train))
        assert infer.messages == _prompt(train), record.task
        assert chat_text(train).startswith(chat_text(infer))


def test_zoom_chain_turns_are_the_training_turns() -> None:
    record = Record(
        id="z1",
        source="lrs_vqa_zoom",
        task="vqa",
        images=[{"path": "big/15565.tif", "width": 4096, "height": 4096}],
        qa=[QA(question="What color is the car?", answer="red", category="object color")],
        zoom=[Box.from_hbb([953, 2368, 1401, 2796])],
    )
    train = _train(record, RenderPolicy())
    roles = [m.role for m in train.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    overview, crop = train.image_parts()
    question = tasks.vqa_question("What color is the car?")
    # What the agent sends first, then what it appends after the model's tool call.
    first = tasks.zoom_first_turn(overview, question)
    hop = tasks.zoom_crop_turn(train.messages[2].text, crop)
    assert first + hop == train.messages[:4]
    assert (
        tasks.zoom_messages(overview, question, [(train.messages[2].text, crop)])
        == (train.messages[:4])
    )
