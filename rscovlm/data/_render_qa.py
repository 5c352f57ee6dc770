"""VQA and multiple choice [WIRE §4.4], the Zoom-in Chain [§4.3], captions and scene classes
[§5], instruction conversations [§3.4] (see :mod:`rscovlm.data.render`).

The draws and targets are here; the layouts are the builders of :mod:`rscovlm.data.tasks`,
which inference calls too."""

from __future__ import annotations

from rscovlm.data._instruction import render_instruction
from rscovlm.data._render_ctx import RenderContext, class_list, image_part
from rscovlm.data.conversation import ImagePart, Message
from rscovlm.data.tasks import (
    caption_question,
    classification_question,
    question_messages,
    vqa_question,
    zoom_messages,
)
from rscovlm.errors import InputError
from rscovlm.formats import encode_zoom_call

__all__ = ["caption", "classification", "instruction", "vqa"]


def vqa(ctx: RenderContext) -> tuple[list[Message], str]:
    rec, opts = ctx.record, ctx.opts
    if not rec.qa:
        raise InputError(f"{rec.uid}: vqa record without questions")
    qa = rec.qa[0]
    zoom = (
        opts.zoom
        and len(rec.qa) == 1
        and len(rec.zoom) == 1
        and qa.category not in opts.zoom_skip_categories
    )
    if zoom:
        return _zoom_chain(ctx), "zoom"
    cmap = ctx.coord_map(0, random_ok=True)
    questions = [
        vqa_question(q.question, q.choices, opts.answer_suffix, q.category) for q in rec.qa
    ]
    answers = [q.answer for q in rec.qa]
    messages = question_messages(image_part(ctx, 0, cmap), questions, answers)
    return messages, "mcq" if qa.choices else "qa"


def _zoom_chain(ctx: RenderContext) -> list[Message]:
    """The two-round Zoom-in Chain sample of WIRE §4.3 (never randomly resized)."""
    rec, opts = ctx.record, ctx.opts
    qa = rec.qa[0]
    cmap = ctx.coord_map(0, random_ok=False)
    region = rec.zoom[0].hbb
    call = encode_zoom_call([int(v) for v in cmap.to_model(region, "hbb")[0]])
    if len(rec.images) > 1:  # the crop was written by the LRS-VQA-Zoom builder
        crop_w, crop_h = ctx.size(1)
        resized_h, resized_w = opts.band.resize(crop_h, crop_w, ctx.family.factor)
        crop = ImagePart(rec.images[1].path, (crop_w, crop_h), (resized_w, resized_h))
    else:
        # PIL's crop rounds a float box, so the crop is the region rounded to whole pixels.
        x1, y1, x2, y2 = (round(v) for v in region)
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"{rec.uid}: zoom region {region} is empty")
        resized_h, resized_w = opts.band.resize(y2 - y1, x2 - x1, ctx.family.factor)
        window = (x1, y1, x2, y2)
        crop = ImagePart(rec.images[0].path, (x2 - x1, y2 - y1), (resized_w, resized_h), window)
    question = vqa_question(qa.question, qa.choices, opts.answer_suffix, qa.category)
    return zoom_messages(image_part(ctx, 0, cmap), question, [(call, crop)], qa.answer)


# --- captions, scene classes, instructions --------------------------------------------------------


def caption(ctx: RenderContext) -> tuple[list[Message], str]:
    rec = ctx.record
    if not rec.captions:
        raise InputError(f"{rec.uid}: caption record without captions")
    cmap = ctx.coord_map(0, random_ok=True)
    caption = rec.captions[ctx.pick(len(rec.captions))]
    return question_messages(image_part(ctx, 0, cmap), [caption_question()], [caption]), "caption"


def classification(ctx: RenderContext) -> tuple[list[Message], str]:
    rec = ctx.record
    if rec.label is None:
        raise InputError(f"{rec.uid}: classification record without a label")
    classes = class_list(rec, ctx.opts)
    cmap = ctx.coord_map(0, random_ok=True)
    prompt = classification_question(classes)
    return question_messages(image_part(ctx, 0, cmap), [prompt], [rec.label]), "scene"


def instruction(ctx: RenderContext) -> tuple[list[Message], str]:
    # SFT-style samples: the original drew a random size and discarded it (WIRE §7.3).
    cmaps = [ctx.coord_map(i, random_ok=False) for i in range(len(ctx.record.images))]
    parts = [image_part(ctx, i, c) for i, c in enumerate(cmaps)]
    messages = render_instruction(ctx.record, parts, cmaps[0], ctx.opts.instruction_style)
    return messages, ctx.opts.instruction_style
