"""A deterministic scripted backend: tests drive the Zoom-in Chain with exact model outputs."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.model.backends.base import Generation, GenerationParams, ImageLists, Usage
from rscovlm.resolution import RSCOVLM_BAND, PixelBand, get_family
from rscovlm.safe_read import iter_jsonl_lines

__all__ = ["ReplayBackend"]

Script = Sequence[str] | Mapping[str, Sequence[str]] | Callable[[Conversation], str]


class ReplayBackend:
    """Replies from a script instead of a model.

    ``script`` is one of: a list of outputs served in order to whatever asks; a mapping from a
    conversation's ``meta[key]`` (default ``"id"``) to that sample's outputs in order (per-sample
    scripts make batched runs order-independent); or a function of the conversation. Every call
    is recorded in :attr:`calls` as ``(conversations, images)``; pass ``record_images=False``
    for long runs (a tiled pass over a huge raster would otherwise keep every patch in memory).

    Raises:
        InputError: A script runs out.
    """

    def __init__(
        self,
        script: Script,
        *,
        family: str = "qwen2_5_vl",
        band: PixelBand = RSCOVLM_BAND,
        key: str = "id",
        record_images: bool = True,
    ) -> None:
        self.family = family
        self.band = band
        self.key = key
        self.record_images = record_images
        self.name = "replay"
        self.calls: list[tuple[list[Conversation], list[Any]]] = []
        self._fn: Callable[[Conversation], str] | None = None
        self._queue: list[str] = []
        self._per_key: dict[str, list[str]] = {}
        if callable(script):
            self._fn = script
        elif isinstance(script, Mapping):
            self._per_key = {str(k): list(v) for k, v in script.items()}
        else:
            self._queue = list(script)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        family: str = "qwen2_5_vl",
        band: PixelBand = RSCOVLM_BAND,
    ) -> ReplayBackend:
        """Replies read from a predictions JSONL (``{"id", "output"}`` lines, e.g. an earlier
        run's): each conversation gets the output of its sample (``meta["sample_id"]``, or
        ``meta["id"]`` for the Zoom-in Chain agent's own conversations), as often as asked, so
        a batched, sharded or resumed run replays identically.

        A line may record a multi-turn chain: ``"turns": [first, second, ...]``, or the
        ``zoom`` trace of a run's line (its hops' outputs, then the final output). Turn ``k``
        (the conversation holds ``k`` assistant messages) gets the ``k``-th reply, the last one
        repeating, so replaying a Zoom-in Chain run reproduces its calls, crops and answers.
        An id the file lacks raises (the runner records it as an error); unreadable lines are
        skipped.

        Raises:
            InputError: The file cannot be read.
        """
        if not Path(path).is_file():
            raise InputError(f"replay file {path} not found")
        table: dict[str, list[str]] = {}
        for _, item, _reason in iter_jsonl_lines(path, "replay file"):
            ok = isinstance(item, dict) and isinstance(item.get("id"), str)
            if ok and isinstance(item.get("output"), str):
                table.setdefault(item["id"], _turns(item))

        def reply(conv: Conversation) -> str:
            sid = conv.meta.get("sample_id", conv.meta.get("id"))
            turns = table.get(sid) if isinstance(sid, str) else None
            if turns is None:
                raise InputError(f"replay file {Path(path).name} has no output for {sid}")
            k = sum(m.role == "assistant" for m in conv.messages)
            return turns[min(k, len(turns) - 1)]

        backend = cls(reply, family=family, band=band, record_images=False)
        backend.name = Path(path).name
        return backend

    def _next(self, conv: Conversation) -> str:
        if self._fn is not None:
            return self._fn(conv)
        if self._per_key:
            name = str(conv.meta.get(self.key))
            outputs = self._per_key.get(name)
            if not outputs:
                raise InputError(f"replay script for {name!r} is exhausted")
            return outputs.pop(0)
        if not self._queue:
            raise InputError("replay script is exhausted")
        return self._queue.pop(0)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """The next scripted output of each conversation (usage: only its image tokens, the
        one count a script can know)."""
        kept = list(images) if images is not None and self.record_images else []
        self.calls.append((list(conversations), kept))
        factor = get_family(self.family).factor
        return [
            Generation(
                self._next(c),
                Usage(image_tokens=sum(p.pad_tokens(factor) for p in c.image_parts())),
            )
            for c in conversations
        ]


def _turns(item: dict[str, Any]) -> list[str]:
    """The replies of one predictions line, turn by turn (see :meth:`ReplayBackend.from_file`)."""
    output: str = item["output"]
    turns = item.get("turns")
    if isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns):
        return list(turns)
    trace = item.get("zoom")
    hops = trace.get("hops") if isinstance(trace, dict) else None
    if isinstance(hops, list):
        said = [
            h["output"] for h in hops if isinstance(h, dict) and isinstance(h.get("output"), str)
        ]
        if not said or said[-1].strip() != output.strip():
            said.append(output)  # the official loop's final answer is not a hop
        return said
    return [output]
