"""Detection [WIRE §2] and grounding [WIRE §3.1] samples (see :mod:`rscovlm.data.render`).

The draws and the answer text are here; the layout is :func:`rscovlm.data.tasks.boxes_messages`,
the builder inference calls too."""

from __future__ import annotations

import numpy as np

from rscovlm.data._render_ctx import RenderContext, SkipSampleError, class_list, image_part
from rscovlm.data.conversation import Message
from rscovlm.data.tasks import boxes_messages
from rscovlm.errors import InputError
from rscovlm.formats import (
    DET_JSON_PROXY_TEMPLATES_HBB,
    DET_JSON_PROXY_TEMPLATES_ORIENTED,
    DET_JSON_TEMPLATE_HBB,
    DET_JSON_TEMPLATE_ORIENTED,
    DET_USER_TEMPLATE,
    GROUNDING_JSON_PROXY_TEMPLATES_HBB,
    GROUNDING_JSON_PROXY_TEMPLATES_ORIENTED,
    DetObject,
    bbox_to_bounding_box,
    categories_str,
    detection_user_prompt,
    encode_detections,
    encode_grounding,
    grounding_json_prompt,
    grounding_user_prompt,
    normalize_label,
    open_ended,
    oriented_to_rotated,
)
from rscovlm.geometry import clip_quads, obb_to_quad, quad_to_obb
from rscovlm.resolution import CoordMap

__all__ = ["detection", "grounding"]


def _detection_prompt(ctx: RenderContext, classes: list[str], style: str) -> tuple[str, str]:
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
    if style == "plain" and ctx.draw(ctx.opts.eval_prompt_prob):
        return detection_user_prompt(classes, eval_mode=True), variant + ":eval"
    return template.format(categories=categories_str(classes)), variant


def detection(ctx: RenderContext) -> tuple[list[Message], str]:
    rec, opts = ctx.record, ctx.opts
    cmap = ctx.coord_map(0, random_ok=True)
    classes = class_list(rec, opts)
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
            coords = quads.reshape(len(objs), 8) if kind == "quad" else _obb_ints(quads, cmap)
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
    return boxes_messages(image_part(ctx, 0, cmap), user, kind, style, answer), variant


def _obb_ints(quads_model: np.ndarray, cmap: CoordMap) -> np.ndarray:
    """OBBs ``(N, 5)`` fitted to model-space int quads, truncated toward zero (WIRE §2.5).

    The minimum-area rectangle of a general DOTA quad lying inside the image can still poke out
    of it (a corner at x=-13 for a slanted ship at the left edge of P0706), so a rectangle that
    leaves the image is clipped to it and shrunk back inside
    (:func:`rscovlm.geometry.clip_quads` with ``inside=True``): the model is never taught a box
    outside the pixels it sees.
    """
    obbs = quad_to_obb(quads_model)
    if len(obbs):
        extent = cmap.to_model([0, 0, *cmap.orig_size], "hbb")[0, 2:]
        fitted, frac = clip_quads(obb_to_quad(obbs), (0, 0, *extent), inside=True)
        moved = (frac > 0) & (frac < 1)
        obbs[moved] = quad_to_obb(fitted[moved])
    return np.trunc(obbs).astype(np.int64)


# --- grounding ----------------------------------------------------------------------------------


def grounding(ctx: RenderContext) -> tuple[list[Message], str]:
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
        coords = quad.reshape(8) if kind == "quad" else _obb_ints(quad, cmap)[0]
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
    return boxes_messages(image_part(ctx, 0, cmap), user, kind, style, answer), variant
