"""The vLLM backend (extra ``[vllm]``, GPU): several images per prompt, greedy by default.

Not runnable on a CPU-only machine; it is typed and import-guarded, and builds its prompts with
the same :func:`~rscovlm.data.conversation.chat_text` (one ``<|image_pad|>`` per image, which
vLLM expands) and the same resized images as the other backends.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation, chat_text
from rscovlm.extras import require
from rscovlm.formats import strip_think
from rscovlm.model.backends.base import (
    Generation,
    GenerationParams,
    ImageLists,
    Usage,
    check_image_lists,
)
from rscovlm.model.backends.hf import MAX_NEW_TOKENS_CAP
from rscovlm.model.encoding import load_part_image, prepare_image
from rscovlm.model.loading import detect_family
from rscovlm.model.manifest import checkpoint_band
from rscovlm.resolution import PixelBand, get_family

__all__ = ["VLLMBackend"]


class VLLMBackend:
    """A checkpoint run by vLLM.

    Args:
        model: Checkpoint directory.
        max_images: Images per prompt at most (vLLM's ``limit_mm_per_prompt``).
        dtype: vLLM dtype (``auto``, ``bfloat16``, …).
        band: Pixel band images are resized into. Default: the band the checkpoint was
            trained at (:func:`rscovlm.model.manifest.checkpoint_band`); an explicit band
            overrides it.
        root: Directory image sources are resolved against.
        llm_kwargs: Extra ``vllm.LLM`` arguments (``tensor_parallel_size``, …).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        max_images: int = 4,
        dtype: str = "auto",
        band: PixelBand | None = None,
        root: str | os.PathLike[str] | None = None,
        **llm_kwargs: Any,
    ) -> None:
        vllm = require("vllm", "vllm")
        self.family = detect_family(model)
        self.band = band or checkpoint_band(model)
        self.root = Path(root) if root is not None else None
        self._vllm = vllm
        self._llm = vllm.LLM(
            model=str(model),
            dtype=dtype,
            limit_mm_per_prompt={"image": max_images},
            **llm_kwargs,
        )

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """Replies and their usage from one batched ``LLM.generate`` call."""
        params = params or GenerationParams()
        check_image_lists(conversations, images)
        family = get_family(self.family)
        prompts: list[dict[str, Any]] = []
        for i, conv in enumerate(conversations):
            parts = conv.image_parts()
            given = None if images is None else images[i]
            if given is None:
                loaded = [load_part_image(p, self.root) for p in parts]
            else:
                loaded = [prepare_image(img, p) for img, p in zip(given, parts, strict=True)]
            text = chat_text(
                conv, add_generation_prompt=True, default_system=family.name != "qwen3_vl"
            )
            prompt: dict[str, Any] = {"prompt": text}
            if loaded:
                prompt["multi_modal_data"] = {"image": loaded}
            prompts.append(prompt)
        sampling = self._vllm.SamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            max_tokens=params.max_new_tokens or MAX_NEW_TOKENS_CAP,
        )
        results = self._llm.generate(prompts, sampling)
        outputs = []
        for conv, result in zip(conversations, results, strict=True):
            completion = result.outputs[0]
            usage = Usage(
                len(result.prompt_token_ids or []),
                len(completion.token_ids),
                sum(p.pad_tokens(family.factor) for p in conv.image_parts()),
            )
            finish = getattr(completion, "finish_reason", None)
            text = strip_think(completion.text) if params.strip_think else completion.text
            outputs.append(
                Generation(text, usage, finish if finish in ("stop", "length") else None)
            )
        return outputs
