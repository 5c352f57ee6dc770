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

The task renderers live in :mod:`rscovlm.data._render_det` (detection, grounding) and
:mod:`rscovlm.data._render_qa` (the others); the draws in :mod:`rscovlm.data._render_ctx`.

A conversation without a system message uses the chat template's default one.

Random draws, in order: the resized size (one ``random()`` and, when resizing at random, one
``uniform()``), then per task the answer style, open-ended, proxy template and its spelling
variations, each only when its probability is strictly between 0 and 1 (so the paper policy
draws nothing but the size). Probabilities compare with ``<``: the original's ``<=`` fired a
proxy with probability 2⁻⁵³ even at p = 0 (WIRE §2.6).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rscovlm.data import _render_det, _render_qa
from rscovlm.data._render_ctx import RenderContext, SkipSampleError
from rscovlm.data.conversation import Conversation, Message
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Record

__all__ = ["SkipSampleError", "render", "render_record"]


_RENDERERS: dict[str, Callable[[RenderContext], tuple[list[Message], str]]] = {
    "detection": _render_det.detection,
    "grounding": _render_det.grounding,
    "vqa": _render_qa.vqa,
    "caption": _render_qa.caption,
    "classification": _render_qa.classification,
    "instruction": _render_qa.instruction,
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
    ctx = RenderContext(record, rng, opts, family, Path(root) if root is not None else None)
    messages, variant = _RENDERERS[record.task](ctx)
    meta = {"uid": record.uid, "task": record.task, "dataset": dataset, "variant": variant}
    return Conversation(messages, family, meta)


#: The package-level name of :func:`render` (``rscovlm.data.render`` is this module).
render_record = render
