"""The :class:`Backend` protocol every inference backend implements, its parameters, the one
generation policy they share, and the input checks they share.

Backends must give the same answer for the same conversation. Two things made them drift:

- *Implicit decoding defaults.* ``transformers`` silently applies ``repetition_penalty`` (and,
  when sampling, ``top_k``) from a checkpoint's ``generation_config.json``; vLLM with explicit
  ``SamplingParams`` does not. :class:`GenerationPolicy` reads those values once from the
  checkpoint, and :meth:`GenerationParams.resolve` turns a caller's params into fully explicit
  ones that every backend passes as they are (and a run manifest records, :meth:`~
  GenerationParams.to_dict`).
- *Different input checks.* :func:`check_inputs` refuses, with one line and before any engine
  runs, what one backend would reject and another would silently change (a size that is not a
  multiple of the family's factor, a video part, too many images, an extreme aspect ratio).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from rscovlm.data.conversation import Conversation, VideoPart
from rscovlm.errors import InputError
from rscovlm.formats.tokens import STOP_IDS
from rscovlm.resolution import MAX_ASPECT_RATIO, PixelBand, get_family

__all__ = [
    "MAX_NEW_TOKENS_CAP",
    "Backend",
    "FinishReason",
    "Generation",
    "GenerationParams",
    "GenerationPolicy",
    "ImageLists",
    "Usage",
    "check_image_lists",
    "check_inputs",
    "texts",
]

MAX_NEW_TOKENS_CAP = 16384
"""The original evaluation's budget: ``min(max_position_embeddings, 16384)`` (WIRE §1.4)."""


ImageLists = Sequence[Sequence[Any] | None]
"""Per conversation, one in-memory image per image part (``None``: load the parts' sources)."""


@dataclass(frozen=True)
class GenerationParams:
    """How to decode. The default is the evaluation's greedy decoding (WIRE §1.4).

    Attributes:
        max_new_tokens: Tokens to generate at most; ``None`` is the original's
            ``min(max_position_embeddings, 16384)``.
        temperature: 0 is greedy; > 0 samples.
        top_p: Nucleus mass when sampling.
        seed: Sampling seed (ignored when greedy).
        strip_think: Remove a leading ``<think>…</think>`` and strip (WIRE §1.4 step 4).
    """

    max_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    strip_think: bool = True
    repetition_penalty: float | None = None
    """``None``: the checkpoint's (:class:`GenerationPolicy`); 1.0 is none."""
    top_k: int | None = None
    """When sampling, the ``k`` most likely tokens only; ``None``: the checkpoint's, 0: off."""
    stop_token_ids: tuple[int, ...] | None = None
    """Ids that end the reply; ``None``: the checkpoint's (``<|im_end|>``, ``<|endoftext|>``)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise InputError(f"temperature must be ≥ 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise InputError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.top_k is not None and self.top_k < 0:
            raise InputError(f"top_k must be ≥ 0 (0: off), got {self.top_k}")
        if self.stop_token_ids is not None:
            object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))

    @property
    def greedy(self) -> bool:
        """Whether decoding is greedy."""
        return self.temperature == 0

    def resolve(self, policy: GenerationPolicy | None = None) -> GenerationParams:
        """These params with every unset field taken from ``policy`` (default: no checkpoint
        values), so nothing is left for a backend's library to fill in on its own.

        >>> p = GenerationParams().resolve(GenerationPolicy(repetition_penalty=1.05))
        >>> p.repetition_penalty, p.top_k, p.stop_token_ids == STOP_IDS, p.max_new_tokens
        (1.05, 0, True, 16384)
        """
        policy = policy or GenerationPolicy()
        return replace(
            self,
            max_new_tokens=self.max_new_tokens or policy.max_new_tokens,
            repetition_penalty=(
                policy.repetition_penalty
                if self.repetition_penalty is None
                else self.repetition_penalty
            ),
            top_k=policy.top_k if self.top_k is None else self.top_k,
            stop_token_ids=self.stop_token_ids or policy.stop_token_ids,
        )

    def to_dict(self) -> dict[str, Any]:
        """The params as JSON values (what a run manifest stores; resolve them first)."""
        data = asdict(self)
        if data["stop_token_ids"] is not None:
            data["stop_token_ids"] = list(data["stop_token_ids"])
        return data


_GENERATION_CONFIG = "generation_config.json"


@dataclass(frozen=True)
class GenerationPolicy:
    """What a checkpoint says about decoding beyond the caller's params, read once and passed
    explicitly to every backend.

    Temperature and ``top_p`` stay the caller's (the evaluation is greedy, WIRE §1.4, whatever
    the checkpoint suggests for chatting); these are the values ``transformers`` would apply
    behind the caller's back and vLLM would not.

    Attributes:
        repetition_penalty: ``generation_config.json``'s (1.0 when it has none).
        top_k: Its ``top_k`` (0: off), used only when sampling.
        stop_token_ids: ``<|im_end|>`` and ``<|endoftext|>``, plus its ``eos_token_id`` values.
        max_new_tokens: ``min(max_position_embeddings, 16384)`` from ``config.json``.
    """

    repetition_penalty: float = 1.0
    top_k: int = 0
    stop_token_ids: tuple[int, ...] = STOP_IDS
    max_new_tokens: int = MAX_NEW_TOKENS_CAP

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> GenerationPolicy:
        """The policy of the checkpoint directory ``path`` (defaults for what it lacks).

        Raises:
            InputError: ``generation_config.json`` exists but is not a JSON object, or holds
                a value of the wrong type.
        """
        directory = Path(path)
        generation = _json_object(directory / _GENERATION_CONFIG)
        config = _json_object(directory / "config.json")
        try:
            penalty = float(generation.get("repetition_penalty") or 1.0)
            top_k = int(generation.get("top_k") or 0)
            eos = generation.get("eos_token_id")
            extra = [eos] if isinstance(eos, int) else list(eos or [])
            stops = tuple(dict.fromkeys([*STOP_IDS, *(int(t) for t in extra)]))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{directory / _GENERATION_CONFIG}: {exc}") from None
        text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
        limit = text.get("max_position_embeddings") or config.get("max_position_embeddings")
        budget = min(int(limit), MAX_NEW_TOKENS_CAP) if isinstance(limit, int) else None
        return cls(penalty, top_k, stops, budget or MAX_NEW_TOKENS_CAP)

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON values."""
        return {**asdict(self), "stop_token_ids": list(self.stop_token_ids)}


def _json_object(file: Path) -> dict[str, Any]:
    """``file``'s JSON object; ``{}`` when it does not exist."""
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{file} does not hold a JSON object")
    return data


@dataclass(frozen=True)
class Usage:
    """Token counts of one generation (``None`` where the backend cannot tell)."""

    prompt_tokens: int | None = None
    """Tokens of the prompt as the model saw it (pads expanded; padding of a batch not
    counted)."""
    completion_tokens: int | None = None
    """Tokens generated, the stop token included."""
    image_tokens: int | None = None
    """Visual tokens among the prompt tokens."""


FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One reply and what it cost: returned together, so a caller never has to ask the backend
    afterwards (which would race between concurrent callers).

    Attributes:
        text: The reply, decoded as WIRE §1.4 says (``<think>`` stripped when asked).
        usage: Its token counts.
        finish_reason: ``stop`` (a stop token), ``length`` (the token budget ran out) or
            ``None`` when the backend cannot tell.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | None = None


def texts(generations: Sequence[Generation]) -> list[str]:
    """The reply texts of ``generations``, in order (for callers that need no usage)."""
    return [g.text for g in generations]


@runtime_checkable
class Backend(Protocol):
    """Generates one reply per conversation, batched.

    Attributes:
        family: The model family (``qwen2_5_vl`` …): box coordinates and image sizes follow it.
        band: The pixel band images are resized into before they are sent (a checkpoint's
            own band by default, see :func:`rscovlm.model.manifest.checkpoint_band`).
    """

    family: str
    band: PixelBand

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """The reply to each conversation with its usage, in order.

        Args:
            conversations: Chats ending in a user turn.
            params: Decoding parameters (default: greedy, WIRE §1.4).
            images: Per conversation, in-memory images (one per image part) instead of
                reading the parts' sources.
        """
        ...


def check_image_lists(conversations: Sequence[Conversation], images: ImageLists | None) -> None:
    """Every backend takes optional pre-loaded images, one list per conversation."""
    if images is not None and len(images) != len(conversations):
        raise InputError(f"{len(images)} image lists for {len(conversations)} conversations")


def check_inputs(
    conversations: Sequence[Conversation],
    images: ImageLists | None,
    family: str,
    *,
    max_images: int | None = None,
    backend: str = "this backend",
) -> None:
    """Refuse, before anything runs, inputs that the backends would treat differently.

    A size that is not a multiple of the family's factor is resized again by vLLM but refused
    by the HF encoder; a video part fails deep inside vLLM; more images than the engine was
    sized for, or a resized aspect ratio above 200 (rounding can push a 199:1 image over),
    make vLLM raise where HF would run. One message, on every local backend.

    Raises:
        InputError: The first such input, naming the conversation.
    """
    check_image_lists(conversations, images)
    factor = get_family(family).factor
    for index, conv in enumerate(conversations):
        if any(isinstance(p, VideoPart) for m in conv.messages for p in m.content):
            raise InputError(f"conversation {index}: video parts are not supported by {backend}")
        parts = conv.image_parts()
        given = None if images is None else images[index]
        if given is not None and len(given) != len(parts):
            raise InputError(
                f"conversation {index}: {len(given)} images for {len(parts)} image parts"
            )
        if max_images is not None and len(parts) > max_images:
            raise InputError(
                f"conversation {index}: {len(parts)} images, but {backend} takes at most "
                f"{max_images} per prompt (raise max_images)"
            )
        for part in parts:
            w, h = part.resized_size
            if w % factor or h % factor:
                raise InputError(
                    f"conversation {index}: image resized_size {part.resized_size} is not a "
                    f"multiple of {factor} ({family})"
                )
            if max(w, h) / min(w, h) > MAX_ASPECT_RATIO:
                raise InputError(
                    f"conversation {index}: image resized to {w}×{h} has aspect ratio above "
                    f"{MAX_ASPECT_RATIO}; Qwen-VL models refuse it (crop or pad it first)"
                )
