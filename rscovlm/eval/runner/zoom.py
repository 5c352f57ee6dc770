"""UHR samples (``meta["zoom"]``) through the Zoom-in Chain, in one of two modes:

- ``ours``: :class:`rscovlm.pipelines.zoom.ZoomAgent` — per-sample state, the crop cut from the
  ORIGINAL raster and mapped with ``CoordMap``, one hop as trained, failed calls recorded;
- ``official``: the original loop (EVAL_SUITE.md §1.7) for paper comparisons — any output with
  ``<tool_call>`` is parsed with the original's character-set strips, the box (identity map)
  crops the RESIZED overview (PIL rounding, black padding outside), the crop is resized into
  the band, a failed call feeds the whole resized first image again, and every sample that
  calls is regenerated. The original has no depth limit; this one stops after
  :data:`OFFICIAL_MAX_HOPS` and says so in the trace. Its batch bookkeeping bug (a sample
  cropping another's image, §1.7.8) is not reproduced: the official script runs batch 1,
  where the bug cannot happen.

Samples without ``meta["zoom"]`` (plain variants, skipped categories) run as one plain turn.
Each zoom line carries its trace under ``zoom`` (hops with boxes, windows and fallbacks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from rscovlm.data.conversation import Conversation, ImagePart, TextPart
from rscovlm.data.tasks import zoom_crop_turn
from rscovlm.eval.runner.batching import ImageCache, Prepared
from rscovlm.eval.runner.worker import Outcome, Runner, generate_batch
from rscovlm.formats import TOOL_CALL_OPEN, parse_zoom_call_official
from rscovlm.formats.qa_prompts import ZOOM_USER_SUFFIX
from rscovlm.model.backends.base import Backend, Generation, GenerationParams, Usage
from rscovlm.pipelines.zoom import ZoomAgent, ZoomQuery
from rscovlm.resolution import CoordMap

__all__ = ["OFFICIAL_MAX_HOPS", "ZOOM_MODES", "zoom_runner"]

ZOOM_MODES = ("ours", "official")
OFFICIAL_MAX_HOPS = 8
"""The official loop recurses without limit; a model that calls forever stops here."""


def _question(conv: Conversation) -> str:
    """The question of a Zoom-in Chain first turn (its instruction suffix removed)."""
    user = next(m for m in conv.messages if m.role == "user")
    text = "".join(p.text for p in user.content if isinstance(p, TextPart))
    return text.removesuffix(ZOOM_USER_SUFFIX)


def _sum(values: Sequence[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _ours(backend: Backend, params: GenerationParams) -> Runner:
    agent = ZoomAgent(backend, params=params, skip_categories=())

    def run(items: Sequence[Prepared], cache: ImageCache) -> list[Outcome]:
        queries = []
        for item in items:
            assert item.conversation is not None
            part = item.conversation.image_parts()[0]
            path = Path(part.source)
            path = path if path.is_absolute() else item.job.root / path
            query = ZoomQuery(path, _question(item.conversation), None, item.job.sample.id)
            queries.append(query)
        outcomes = []
        for result in agent.run(queries):
            usage = Usage(
                _sum([h.prompt_tokens for h in result.hops]),
                _sum([h.completion_tokens for h in result.hops]),
                result.image_tokens,
            )
            trace = result.to_dict()
            trace.pop("image", None)
            outcomes.append(Outcome(Generation(result.answer, usage), extra={"zoom": trace}))
        return outcomes

    return run


@dataclass
class _Official:
    conversation: Conversation
    images: list[Any]
    overview: Image.Image
    hops: list[dict[str, Any]] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    last: Generation | None = None
    done: bool = False


def _official(backend: Backend, params: GenerationParams) -> Runner:
    family = backend.family

    def crop_part(state: _Official, output: str, n: int, source: str) -> None:
        bbox = parse_zoom_call_official(output)
        hop: dict[str, Any] = {"output": output, "bbox_model": bbox, "fallback": None}
        crop: Image.Image | None = None
        if bbox is not None:
            try:
                crop = state.overview.crop(tuple(bbox))  # PIL rounds, pads outside with black
            except (ValueError, SystemError) as exc:
                hop["fallback"] = f"crop failed: {exc}"
            if crop is not None and (crop.width < 1 or crop.height < 1):
                crop, hop["fallback"] = None, "empty crop"
        else:
            hop["fallback"] = "unreadable tool call"
        if crop is None:
            crop = state.overview  # the whole resized first image, as the original did
        cmap = CoordMap.for_image(crop.width, crop.height, backend.band, family)
        part = ImagePart(f"{source}#official-crop-{n}", cmap.orig_size, cmap.resized_size)
        pixels = crop.convert("RGB").resize(part.resized_size, Image.Resampling.BICUBIC)
        hop["crop_size"] = list(crop.size)
        state.hops.append(hop)
        state.images.append(pixels)
        state.conversation.messages.extend(zoom_crop_turn(output, part))

    def run(items: Sequence[Prepared], cache: ImageCache) -> list[Outcome]:
        states = []
        for item in items:
            assert item.conversation is not None
            conv = item.conversation
            images = cache.images(item)
            copy = Conversation(list(conv.messages), conv.family, dict(conv.meta))
            states.append(_Official(copy, list(images), images[0]))
        for depth in range(OFFICIAL_MAX_HOPS + 1):
            active = [s for s in states if not s.done]
            if not active:
                break
            gens = backend.generate(
                [s.conversation for s in active], params, [s.images for s in active]
            )
            for state, gen in zip(active, gens, strict=True):
                state.last = gen
                state.usage.append(gen.usage)
                if TOOL_CALL_OPEN not in gen.text or depth == OFFICIAL_MAX_HOPS:
                    state.done = True
                    if TOOL_CALL_OPEN in gen.text:
                        state.hops.append({"output": gen.text, "stop": "depth_limit"})
                    continue
                source = state.conversation.image_parts()[0].source
                crop_part(state, gen.text, len(state.hops) + 1, source)
        outcomes = []
        for state in states:
            assert state.last is not None
            usage = Usage(
                _sum([u.prompt_tokens for u in state.usage]),
                _sum([u.completion_tokens for u in state.usage]),
                _sum([u.image_tokens for u in state.usage]),
            )
            final = Generation(state.last.text, usage, state.last.finish_reason)
            outcomes.append(
                Outcome(final, extra={"zoom": {"mode": "official", "hops": state.hops}})
            )
        return outcomes

    return run


def zoom_runner(backend: Backend, params: GenerationParams, mode: str = "ours") -> Runner:
    """A batch runner that sends zoom samples through the chain and the rest through one
    plain ``generate`` (outcomes in the batch's order)."""
    if mode not in ZOOM_MODES:
        raise ValueError(f"zoom mode {mode!r}; choose one of {ZOOM_MODES}")
    plain = generate_batch(backend, params)
    chain = _ours(backend, params) if mode == "ours" else _official(backend, params)

    def run(items: Sequence[Prepared], cache: ImageCache) -> list[Outcome]:
        zoom = [i for i, item in enumerate(items) if item.job.sample.meta.get("zoom")]
        if not zoom:
            return plain(items, cache)
        rest = [i for i in range(len(items)) if i not in set(zoom)]
        out: list[Outcome | None] = [None] * len(items)
        for index, outcome in zip(zoom, chain([items[i] for i in zoom], cache), strict=True):
            out[index] = outcome
        if rest:
            for index, outcome in zip(rest, plain([items[i] for i in rest], cache), strict=True):
                out[index] = outcome
        return [o for o in out if o is not None]

    return run
