"""Render a record into a conversation at fetch time: resolution, prompt variant, target text.

:func:`render` draws, in a fixed order from the ``rng`` it is given, the resized size of every
image (a random resize when the options ask for it, else ``smart_resize`` into the band) and the
prompt variant (plain / JSON, proxy template, spelling variations, open-ended), then writes the
targets in the drawn model coordinates through :class:`~rscovlm.resolution.CoordMap`. Every
string comes from :mod:`rscovlm.formats`; every coordinate goes through ``CoordMap``.

Per task (WIRE_FORMATS.md sections in brackets):

- ``detection`` [§2]: system prompt of the box kind and style, ``find the {classes}`` (or the
  JSON templates), answer lines ordered by (class, y1, x1) of the rescaled horizontal box with a
  stable sort; horizontal boxes keep the COCO rule (x1, y1 as read, x2, y2 truncated at original
  scale, then every value truncated after rescaling); quads clockwise from the top-most vertex;
  obbs fitted on the truncated quad and truncated; ``There are none.`` for no object.
- ``grounding`` [§3.1]: refGeo rules: values truncated at original scale and again after
  rescaling, quads counter-clockwise, the whole expression as the label.
- ``vqa`` [§4]: one or more question/answer turns, multiple choice built as in training, the
  configured answer suffix; one QA with exactly one zoom region becomes the Zoom-in Chain (tool
  call box on the overview, crop cut from the ORIGINAL image and resized on its own).
- ``caption`` / ``classification`` [§5]: ``Describe the image`` / the scene-class prompt.
- ``instruction`` [§3.4]: see :mod:`rscovlm.data._instruction`.

A conversation without a system message uses the chat template's default one.

Random draws, in order: the resized size (one ``random()`` and, when resizing at random, one
``uniform()``), then per task the answer style, open-ended, proxy template and its spelling
variations, each only when its probability is strictly between 0 and 1 (so the paper policy
draws nothing but the size). Probabilities compare with ``<``: the original's ``<=`` fired a
proxy with probability 2⁻⁵³ even at p = 0 (WIRE §2.6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rscovlm.data._instruction import render_instruction
from rscovlm.data.conversation import Conversation, ImagePart, Message, Part, TextPart
from rscovlm.data.policy import RenderOptions, RenderPolicy
from rscovlm.data.record import Record
from rscovlm.errors import InputError
from rscovlm.formats import (
    CAPTION_PROMPT,
    DET_JSON_PROXY_TEMPLATES_HBB,
    DET_JSON_PROXY_TEMPLATES_ORIENTED,
    DET_JSON_TEMPLATE_HBB,
    DET_JSON_TEMPLATE_ORIENTED,
    DET_USER_TEMPLATE,
    GROUNDING_JSON_PROXY_TEMPLATES_HBB,
    GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED,
    LRSVQA_ANSWER_SUFFIX,
    LRSVQA_COUNT_ANSWER_SUFFIX,
    VQA_SHORT_ANSWER_SUFFIX,
    ZOOM_FOLLOW_UP,
    ZOOM_SYSTEM_PROMPT,
    DetObject,
    bbox_to_bounding_box,
    categories_str,
    detection_system_prompt,
    encode_detections,
    encode_grounding,
    encode_zoom_call,
    get_classes,
    grounding_json_prompt,
    grounding_user_prompt,
    mcq_prompt,
    normalize_label,
    open_ended,
    oriented_to_rotated,
    scene_classes_str,
    scene_cls_prompt,
    zoom_user_prompt,
)
from rscovlm.geometry import quad_to_obb
from rscovlm.imaging import image_size
from rscovlm.resolution import CoordMap, ModelFamily

__all__ = ["SkipSampleError", "render", "render_record"]


class SkipSampleError(InputError):
    """The record renders to no sample under its options (e.g. empty detection, not kept)."""


@dataclass
class _Ctx:
    """What one render call draws from and writes with."""

    record: Record
    rng: np.random.Generator
    opts: RenderOptions
    family: ModelFamily
    root: Path | None

    def size(self, index: int) -> tuple[int, int]:
        """``(width, height)`` of image ``index``: from the record, else from its header."""
        ref = self.record.images[index]
        if ref.width is not None and ref.height is not None:
            return ref.width, ref.height
        if self.root is None:
            raise InputError(
                f"{self.record.uid}: size of {ref.path} unknown; give the data root or build "
                "the dataset first"
            )
        return image_size(self.root / ref.path)

    def coord_map(self, index: int, random_ok: bool) -> CoordMap:
        """Draw image ``index``'s resized size (random resize only where ``random_ok``)."""
        width, height = self.size(index)
        prob = self.opts.random_resize_prob if random_ok else 0.0
        return CoordMap.for_image(
            width, height, self.opts.band, self.family, self.rng, random_resize_prob=prob
        )

    def draw(self, prob: float) -> bool:
        """A Bernoulli draw; certain outcomes (0 or 1) consume no random number."""
        if prob <= 0.0:
            return False
        if prob >= 1.0:
            return True
        return bool(self.rng.random() < prob)

    def pick(self, n: int) -> int:
        """A uniform index in ``[0, n)``; a single choice consumes no random number."""
        return 0 if n <= 1 else int(self.rng.integers(n))


def _image(ctx: _Ctx, index: int, cmap: CoordMap) -> ImagePart:
    return ImagePart(ctx.record.images[index].path, cmap.orig_size, cmap.resized_size)


def _chat(system: str | None, turns: list[tuple[list[Part], str]]) -> list[Message]:
    """``[system?] + (user parts, assistant text)*``."""
    out = [Message("system", (TextPart(system),))] if system is not None else []
    for user, answer in turns:
        out += [Message("user", tuple(user)), Message("assistant", (TextPart(answer),))]
    return out


# --- detection ----------------------------------------------------------------------------------


def _class_list(record: Record, opts: RenderOptions) -> list[str]:
    spec = opts.classes or record.meta.get("class_list") or record.meta.get("classes")
    if isinstance(spec, str):
        return list(get_classes(spec))
    if isinstance(spec, list) and spec:
        return [str(c) for c in spec]
    raise InputError(f"{record.uid}: no class list (set meta.class_list or the classes option)")


def _detection_prompt(ctx: _Ctx, classes: list[str], style: str) -> tuple[str, str]:
    """(user text, variant) of a detection sample; draws open-ended, then proxy choices."""
    kind, p = ctx.opts.box_kind, ctx.opts.proxy_prob
    is_open = ctx.draw(ctx.opts.open_ended_prob)
    variant = style
    if style == "plain":
        template = DET_USER_TEMPLATE
    else:
        main, proxies = (
            (DET_JSON_TEMPLATE_HBB, DET_JSON_PROXY_TEMPLATES_HBB)
            if kind == "hbb"
            else (DET_JSON_TEMPLATE_ORIENTED, DET_JSON_PROXY_TEMPLATES_ORIENTED)
        )
        template = main
        if ctx.draw(p):
            index = ctx.pick(len(proxies))
            template, variant = proxies[index], f"json:proxy{index}"
            if ctx.draw(p):
                template = bbox_to_bounding_box(template)
            if kind != "hbb" and ctx.draw(p):
                template = oriented_to_rotated(template)
    if is_open:
        return open_ended(template), variant + ":open"
    return template.format(categories=categories_str(classes)), variant


def _detection(ctx: _Ctx) -> tuple[list[Message], str]:
    rec, opts = ctx.record, ctx.opts
    cmap = ctx.coord_map(0, random_ok=True)
    classes = _class_list(rec, opts)
    objs = [o for o in rec.objects if not (opts.drop_difficult and o.difficult)]
    if not objs and not opts.keep_empty:
        raise SkipSampleError(f"{rec.uid}: no objects and keep_empty is off")
    style = "json" if ctx.draw(opts.json_prob) else "plain"
    user, variant = _detection_prompt(ctx, classes, style)
    kind = opts.box_kind
    answer_objs: list[DetObject] = []
    if objs:
        hbb = np.array([o.box.hbb for o in objs], dtype=np.float64)
        # COCO rule (WIRE §2.2): x1, y1 as read; x2 = int(x + w), y2 = int(y + h); then every
        # value int(v · resized / original).
        hbb_model = cmap.to_model(hbb, "hbb")
        hbb_model[:, 2:] = cmap.to_model(hbb, "hbb", pre_truncate=True)[:, 2:]
        if kind == "hbb":
            coords = hbb_model
        else:
            quads = cmap.to_model(np.stack([o.box.quad_array() for o in objs]), "quad")
            # OBB: minAreaRect of the truncated quad, every value truncated (WIRE §2.5).
            coords = quads.reshape(len(objs), 8) if kind == "quad" else _obb_ints(quads)
        labels = [normalize_label(o.class_name) for o in objs]
        # Stable sort by (class, y1, x1) of the rescaled horizontal box (WIRE §2.2 step 4).
        order = sorted(
            range(len(objs)), key=lambda i: (labels[i], hbb_model[i, 1], hbb_model[i, 0])
        )
        answer_objs = [
            DetObject(labels[i], kind, tuple(int(v) for v in coords[i]), objs[i].class_name)
            for i in order
        ]
    answer = encode_detections(answer_objs, kind, style=style, clockwise=True, sort=False)
    image = _image(ctx, 0, cmap)
    system = detection_system_prompt(kind, style)
    return _chat(system, [([image, TextPart(user)], answer)]), variant


def _obb_ints(quads_model: np.ndarray) -> np.ndarray:
    """OBBs ``(N, 5)`` fitted to model-space int quads, truncated toward zero (WIRE §2.5)."""
    return np.trunc(quad_to_obb(quads_model)).astype(np.int64)


# --- grounding ----------------------------------------------------------------------------------


def _grounding(ctx: _Ctx) -> tuple[list[Message], str]:
    rec, opts = ctx.record, ctx.opts
    if not rec.referring:
        raise InputError(f"{rec.uid}: grounding record without referring expressions")
    cmap = ctx.coord_map(0, random_ok=True)
    ref = rec.referring[ctx.pick(len(rec.referring))]
    kind = opts.box_kind
    style = "json" if ctx.draw(opts.json_prob) else "plain"
    # refGeo truncates at original scale and again after rescaling (WIRE §3.1).
    if kind == "hbb":
        coords = cmap.to_model(ref.box.hbb, "hbb", pre_truncate=True)[0]
    else:
        quad = cmap.to_model(ref.box.quad_array(), "quad", pre_truncate=True)
        coords = quad.reshape(8) if kind == "quad" else _obb_ints(quad)[0]
    expression = ref.expression
    variant = style
    if style == "plain":
        user = grounding_user_prompt(expression)
    else:
        proxy_index = None
        bounding_box = rotated = False
        if ctx.draw(opts.proxy_prob):
            proxies = (
                GROUNDING_JSON_PROXY_TEMPLATES_HBB
                if kind == "hbb"
                else GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED
            )
            proxy_index = ctx.pick(len(proxies))
            variant = f"json:proxy{proxy_index}"
            bounding_box = ctx.draw(opts.proxy_prob)
            rotated = kind != "hbb" and ctx.draw(opts.proxy_prob)
        user = grounding_json_prompt(
            expression, kind, proxy_index=proxy_index, bounding_box=bounding_box, rotated=rotated
        )
    answer = encode_grounding([int(v) for v in coords], expression, kind, style, clockwise=False)
    image = _image(ctx, 0, cmap)
    system = detection_system_prompt(kind, style)
    return _chat(system, [([image, TextPart(user)], answer)]), variant


# --- question answering, Zoom-in Chain ----------------------------------------------------------


def _question(text: str, choices: list[str] | None, suffix: str, category: str | None) -> str:
    if choices:
        return mcq_prompt(text, choices, training=True)
    if suffix == "none":
        return text
    if suffix == "short":
        tail = VQA_SHORT_ANSWER_SUFFIX
    else:
        tail = LRSVQA_COUNT_ANSWER_SUFFIX if category == "count" else LRSVQA_ANSWER_SUFFIX
    return text if text.endswith(tail) else text + tail


def _vqa(ctx: _Ctx) -> tuple[list[Message], str]:
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
    turns: list[tuple[list[Part], str]] = []
    for k, item in enumerate(rec.qa):
        text = TextPart(_question(item.question, item.choices, opts.answer_suffix, item.category))
        user: list[Part] = [_image(ctx, 0, cmap), text] if k == 0 else [text]
        turns.append((user, item.answer))
    return _chat(None, turns), "mcq" if qa.choices else "qa"


def _zoom_chain(ctx: _Ctx) -> list[Message]:
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
    question = _question(qa.question, qa.choices, opts.answer_suffix, qa.category)
    return [
        Message("system", (TextPart(ZOOM_SYSTEM_PROMPT),)),
        Message("user", (_image(ctx, 0, cmap), TextPart(zoom_user_prompt(question)))),
        Message("assistant", (TextPart(call),)),
        Message("user", (crop, TextPart(ZOOM_FOLLOW_UP))),
        Message("assistant", (TextPart(qa.answer),)),
    ]


# --- captions, scene classes, instructions --------------------------------------------------------


def _caption(ctx: _Ctx) -> tuple[list[Message], str]:
    rec = ctx.record
    if not rec.captions:
        raise InputError(f"{rec.uid}: caption record without captions")
    cmap = ctx.coord_map(0, random_ok=True)
    caption = rec.captions[ctx.pick(len(rec.captions))]
    return _chat(None, [([_image(ctx, 0, cmap), TextPart(CAPTION_PROMPT)], caption)]), "caption"


def _classification(ctx: _Ctx) -> tuple[list[Message], str]:
    rec = ctx.record
    if rec.label is None:
        raise InputError(f"{rec.uid}: classification record without a label")
    classes = _class_list(rec, ctx.opts)
    cmap = ctx.coord_map(0, random_ok=True)
    prompt = scene_cls_prompt(scene_classes_str(classes))
    return _chat(None, [([_image(ctx, 0, cmap), TextPart(prompt)], rec.label)]), "scene"


def _instruction(ctx: _Ctx) -> tuple[list[Message], str]:
    # SFT-style samples: the original drew a random size and discarded it (WIRE §7.3).
    cmaps = [ctx.coord_map(i, random_ok=False) for i in range(len(ctx.record.images))]
    parts = [_image(ctx, i, c) for i, c in enumerate(cmaps)]
    messages = render_instruction(ctx.record, parts, cmaps[0], ctx.opts.instruction_style)
    return messages, ctx.opts.instruction_style


_RENDERERS: dict[str, Callable[[_Ctx], tuple[list[Message], str]]] = {
    "detection": _detection,
    "grounding": _grounding,
    "vqa": _vqa,
    "caption": _caption,
    "classification": _classification,
    "instruction": _instruction,
}


def render(
    record: Record,
    rng: np.random.Generator,
    policy: RenderPolicy | None = None,
    *,
    root: str | Path | None = None,
    dataset: str | None = None,
) -> Conversation:
    """Render ``record`` into a conversation, drawing resolution and prompt variant from ``rng``.

    Args:
        record: A validated record (targets in original pixels).
        rng: The sample's generator; the same state gives the same conversation.
        policy: Layered render options and model family (default: the paper's).
        root: Data root, needed only when the record lacks image sizes.
        dataset: The mixture entry the record was drawn for (selects its options).

    Returns:
        The conversation; ``meta`` holds ``uid``, ``task``, ``dataset`` and ``variant``.

    Raises:
        SkipSampleError: The options exclude the record (e.g. an empty detection, ``keep_empty``
            off).
        InputError: The record cannot be rendered (missing targets, classes or sizes, a box
            that maps to nothing).
    """
    policy = policy if policy is not None else RenderPolicy.paper()
    opts = policy.options_for(record, dataset)
    family = policy.model_family
    ctx = _Ctx(record, rng, opts, family, Path(root) if root is not None else None)
    messages, variant = _RENDERERS[record.task](ctx)
    meta = {"uid": record.uid, "task": record.task, "dataset": dataset, "variant": variant}
    return Conversation(messages, family, meta)


#: The package-level name of :func:`render` (``rscovlm.data.render`` is this module).
render_record = render
