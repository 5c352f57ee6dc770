"""The Zoom-in Chain agent over any backend, for images of any size (WIRE §4).

The conversation is built turn by turn by the Zoom-in Chain builders training uses
(:func:`rscovlm.data.tasks.zoom_first_turn`, :func:`~rscovlm.data.tasks.zoom_crop_turn`).
For each question: the overview (the whole image resized into the band, read by decimated
windowed reads) → the model answers or calls ``image_zoom_in`` → the call is parsed robustly
(:func:`rscovlm.formats.parse_zoom_call`) → its box, on the image the model saw, is mapped to
ORIGINAL pixels with :class:`~rscovlm.resolution.CoordMap` → the crop is read from the
full-resolution raster (native pixels, then resized into the band like any image) → the model
gets ``[crop, "Here's the zoomed-in image. …"]`` → the answer.

Fixes over the original loop (WIRE §4.6, §9): every sample keeps its own state (images,
coordinate maps, conversation) so batches cannot crop the wrong image; the crop comes from the
original raster, not the downsized image; the number of hops is limited (default 1, as trained);
a call that cannot be followed (unreadable, degenerate, outside the image) is *recorded* with
its reason and answered with the current image again, as the original did silently; categories
in ``skip_categories`` (``count``) get the plain single-turn prompt. Every run ends with an
answer and a trace (boxes per hop, token counts) that :func:`draw_trace` draws over the
overview.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from rscovlm.data.conversation import Conversation, ImagePart
from rscovlm.data.tasks import question_messages, zoom_crop_turn, zoom_first_turn
from rscovlm.errors import InputError
from rscovlm.formats import parse_zoom_call
from rscovlm.imaging import image_size
from rscovlm.model.backends.base import Backend, GenerationParams
from rscovlm.model.encoding import load_part_image
from rscovlm.resolution import CoordMap, get_family

__all__ = [
    "DEFAULT_SKIP_CATEGORIES",
    "Hop",
    "ZoomAgent",
    "ZoomQuery",
    "ZoomResult",
    "draw_trace",
]

DEFAULT_SKIP_CATEGORIES = ("count",)
"""LRS-VQA categories answered without zooming (WIRE §4.5)."""

_CALL_BLOCK = re.compile(r"<tool_call>.*?(</tool_call>|$)", re.DOTALL)


@dataclass(frozen=True)
class ZoomQuery:
    """One question about one image.

    Attributes:
        image: Path of the image or raster (PNG/JPEG/TIFF/GeoTIFF of any size).
        question: The question text (with any answer-format suffix it carries).
        category: The benchmark category; categories the agent skips get no zoom.
        id: A name for the sample (kept in the result and the conversation's ``meta``).
    """

    image: str | Path
    question: str
    category: str | None = None
    id: str | None = None


@dataclass
class Hop:
    """One model turn of the chain.

    Attributes:
        output: The raw model output of this turn.
        bbox_model: The zoom box as the model wrote it (on the image it saw), or ``None``.
        window: The crop in ORIGINAL pixels ``(x1, y1, x2, y2)`` fed next, or ``None``.
        fallback: Why the call could not be followed (the current image was fed again), or
            ``None``.
        image_tokens: Visual tokens of the conversation this turn was generated from.
        prompt_tokens: Prompt tokens, when the backend reports them.
        completion_tokens: Generated tokens, when the backend reports them.
    """

    output: str
    bbox_model: tuple[float, ...] | None = None
    window: tuple[int, int, int, int] | None = None
    fallback: str | None = None
    image_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class ZoomResult:
    """The answer and the trace of one query.

    Attributes:
        id: The query's id.
        answer: The final answer text (never ``None``).
        stop: ``answered`` (a turn without a call), ``depth_limit`` (the model still called
            after the last allowed hop; the answer is its text outside the call) or
            ``skipped`` (a skip category: one plain turn).
        hops: Every model turn, in order.
        orig_size: ``(w, h)`` of the image.
        overview_size: ``(w, h)`` of the overview the model saw first.
    """

    id: str | None
    answer: str
    stop: str
    hops: list[Hop]
    orig_size: tuple[int, int]
    overview_size: tuple[int, int]
    image: str = ""
    overview: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def windows(self) -> list[tuple[int, int, int, int]]:
        """The crops fed, in original pixels."""
        return [h.window for h in self.hops if h.window is not None]

    @property
    def image_tokens(self) -> int:
        """Visual tokens the chain spent over all turns (each turn re-reads its images)."""
        return sum(h.image_tokens or 0 for h in self.hops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready trace (no pixels)."""
        out = asdict(self)
        out.pop("overview")
        return out


@dataclass
class _State:
    query: ZoomQuery
    conversation: Conversation
    images: list[Image.Image]
    parts: list[ImagePart]
    result: ZoomResult
    hops_done: int = 0
    done: bool = False


class ZoomAgent:
    """Runs the Zoom-in Chain over a backend.

    Args:
        backend: Any :class:`~rscovlm.model.backends.Backend`; its ``band`` and ``family``
            decide the image sizes and coordinate convention.
        max_hops: Zoom calls followed per question (default 1, as trained).
        skip_categories: Query categories answered without zooming.
        params: Decoding parameters.
        min_crop: Smallest crop side in original pixels; smaller boxes are grown around their
            centre (a 1-pixel box would exceed the aspect-ratio limit of ``smart_resize``).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_hops: int = 1,
        skip_categories: Sequence[str] = DEFAULT_SKIP_CATEGORIES,
        params: GenerationParams | None = None,
        min_crop: int = 28,
    ) -> None:
        if max_hops < 0:
            raise InputError(f"max_hops must be ≥ 0, got {max_hops}")
        self.backend = backend
        self.max_hops = max_hops
        self.skip_categories = {c.lower() for c in skip_categories}
        self.params = params or GenerationParams()
        self.min_crop = max(1, min_crop)
        self.family = get_family(backend.family)

    def _part(self, path: str, size: tuple[int, int], window: Any = None) -> ImagePart:
        cmap = CoordMap.for_image(size[0], size[1], self.backend.band, self.family)
        return ImagePart(path, cmap.orig_size, cmap.resized_size, window)

    def _start(self, query: ZoomQuery) -> _State:
        path = str(query.image)
        orig = image_size(path)
        part = self._part(path, orig)
        overview = load_part_image(part)
        skip = (query.category or "").lower() in self.skip_categories
        meta = {"id": query.id, "task": "zoom", "variant": "plain" if skip else "zoom"}
        if skip:
            msgs = question_messages(part, [query.question])
        else:
            msgs = zoom_first_turn(part, query.question)
        result = ZoomResult(query.id, "", "answered", [], orig, part.resized_size, path, overview)
        conv = Conversation(msgs, self.family, meta)
        state = _State(query, conv, [overview], [part], result)
        if skip:
            result.stop = "skipped"
        return state

    def _window(
        self, state: _State, bbox: tuple[float, ...]
    ) -> tuple[tuple[int, int, int, int] | None, str | None]:
        """The crop in original pixels for a box on the last image shown, or a reason."""
        last = state.parts[-1]
        ox, oy = (last.window[0], last.window[1]) if last.window else (0, 0)
        local = last.coord_map(self.family).to_original([bbox], "hbb")[0]
        x1, y1, x2, y2 = (float(v) for v in local)
        x1, x2 = x1 + ox, x2 + ox
        y1, y2 = y1 + oy, y2 + oy
        width, height = state.result.orig_size
        cx1, cy1 = max(0.0, x1), max(0.0, y1)
        cx2, cy2 = min(float(width), x2), min(float(height), y2)
        if cx2 <= cx1 or cy2 <= cy1:
            return None, f"bbox {list(bbox)} lies outside the image"
        wx1, wy1 = int(cx1), int(cy1)  # floor: the box is covered, never cut
        wx2, wy2 = min(width, int(-(-cx2 // 1))), min(height, int(-(-cy2 // 1)))
        wx1, wx2 = _grow(wx1, wx2, self.min_crop, width)
        wy1, wy2 = _grow(wy1, wy2, self.min_crop, height)
        return (wx1, wy1, wx2, wy2), None

    def _step(self, state: _State, output: str, hop: Hop) -> None:
        state.result.hops.append(hop)
        parse = parse_zoom_call(output)
        if state.result.stop == "skipped" or not parse.has_call:
            state.result.answer = output.strip()
            state.done = True
            return
        if state.hops_done >= self.max_hops:
            state.result.answer = _CALL_BLOCK.sub("", output).strip()
            state.result.stop = "depth_limit"
            state.done = True
            return
        state.hops_done += 1
        hop.bbox_model = parse.bbox
        window, reason = (None, parse.reason)
        if parse.bbox is not None:
            window, reason = self._window(state, parse.bbox)
        if window is None:
            hop.fallback = reason or "unreadable tool call"
            part, image = state.parts[-1], state.images[-1]
        else:
            hop.window = window
            size = (window[2] - window[0], window[3] - window[1])
            part = self._part(str(state.query.image), size, window)
            image = load_part_image(part)
        state.parts.append(part)
        state.images.append(image)
        state.conversation.messages.extend(zoom_crop_turn(output, part))

    def run(self, queries: Sequence[ZoomQuery]) -> list[ZoomResult]:
        """Answer every query; active samples are generated together in one batch per round.

        Raises:
            InputError: An image cannot be read.
        """
        states = [self._start(q) for q in queries]
        while True:
            active = [s for s in states if not s.done]
            if not active:
                break
            generations = self.backend.generate(
                [s.conversation for s in active], self.params, images=[s.images for s in active]
            )
            for state, generation in zip(active, generations, strict=True):
                hop = Hop(
                    generation.text,
                    image_tokens=sum(p.pad_tokens(self.family.factor) for p in state.parts),
                    prompt_tokens=generation.usage.prompt_tokens,
                    completion_tokens=generation.usage.completion_tokens,
                )
                self._step(state, generation.text, hop)
        return [s.result for s in states]

    def ask(self, image: str | Path, question: str, category: str | None = None) -> ZoomResult:
        """One question about one image."""
        return self.run([ZoomQuery(image, question, category)])[0]


def _grow(lo: int, hi: int, minimum: int, limit: int) -> tuple[int, int]:
    """``[lo, hi)`` grown around its centre to at least ``minimum`` (within ``[0, limit)``)."""
    if hi - lo >= minimum or limit <= minimum:
        return (lo, hi) if hi - lo >= minimum else (0, limit)
    centre = (lo + hi) // 2
    lo = max(0, min(centre - minimum // 2, limit - minimum))
    return lo, lo + minimum


def draw_trace(result: ZoomResult, out: str | Path, overview: Image.Image | None = None) -> Path:
    """Draw each hop's crop (original pixels mapped onto the overview) and save a PNG.

    Hop k is labelled ``k``; fallbacks are listed in the corner.
    """
    base = overview or result.overview
    if base is None:
        part = ImagePart(result.image, result.orig_size, result.overview_size)
        base = load_part_image(part)
    canvas = base.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    cmap = CoordMap(result.orig_size, canvas.size)
    colours = ((255, 60, 60), (60, 160, 255), (255, 210, 0), (120, 255, 120))
    for k, hop in enumerate(result.hops):
        if hop.window is None:
            continue
        x1, y1, x2, y2 = cmap.to_resized([hop.window], "hbb")[0].tolist()
        colour = colours[k % len(colours)]
        draw.rectangle((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)), outline=colour, width=3)
        draw.text((x1 + 3, y1 + 2), str(k + 1), fill=colour)
    notes = [f"hop {k + 1}: {h.fallback}" for k, h in enumerate(result.hops) if h.fallback]
    notes.append(f"stop: {result.stop}")
    draw.text((4, 4), "\n".join(notes), fill=(255, 255, 255))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
