"""The vLLM backend (extra ``[vllm]``, GPU): several images per prompt, greedy by default.

It gives the HF backend's answers, because everything that decides an answer is fixed here
rather than left to vLLM's defaults:

- **Prompt and pixels.** The prompt is the same :func:`~rscovlm.data.conversation.chat_text`
  (one ``<|image_pad|>`` per image, which vLLM expands) and each image is resized into the
  backend's band by the same :func:`~rscovlm.model.encoding.prepare_image` the HF encoder uses.
  vLLM's image processor is told not to resize again (``do_resize: False`` and the band as its
  size): with a ``band=`` other than the checkpoint's it would otherwise shrink 1512×700 to
  1456×672, shifting every box by ~4 % and changing the image-token count.
- **Decoding.** :class:`~rscovlm.model.backends.base.GenerationPolicy` (repetition penalty,
  ``top_k``, stop ids, token budget) is read from the checkpoint once and passed in
  ``SamplingParams``, where vLLM would use 1.0, no ``top_k`` and its own stop ids.
- **Inputs.** :func:`~rscovlm.model.backends.base.check_inputs` refuses what HF refuses
  (sizes off the factor, video parts, extreme aspect ratios, too many images) before vLLM sees
  it; video is disabled in the engine (``limit_mm_per_prompt``).
- **Weights.** ``dtype="auto"`` is made explicit (:func:`~rscovlm.model.loading.resolve_dtype`):
  vLLM's own ``auto`` runs an fp32 checkpoint in bf16/fp16 while HF keeps fp32. A PEFT
  ``adapter`` runs through vLLM's LoRA support (``LoRARequest``).

Data parallelism cannot live inside one vLLM process (0.34 refuses ``data_parallel_size > 1``):
run one engine per GPU on a shard of the work (README, "vLLM on many GPUs").
``tests/model/test_vllm_real.py`` drives this class against the real vLLM with only the engine
faked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation, chat_text
from rscovlm.errors import InputError
from rscovlm.extras import require
from rscovlm.formats import strip_think
from rscovlm.model.backends.base import (
    Generation,
    GenerationParams,
    GenerationPolicy,
    ImageLists,
    Usage,
    check_inputs,
)
from rscovlm.model.encoding import load_part_image, prepare_image
from rscovlm.model.loading import detect_family, resolve_dtype
from rscovlm.model.manifest import checkpoint_band
from rscovlm.resolution import PixelBand, get_family

__all__ = ["HF_ONLY_OPTIONS", "VLLMBackend", "processor_kwargs"]

HF_ONLY_OPTIONS = {
    "device": "vLLM places the model itself: choose GPUs with CUDA_VISIBLE_DEVICES",
    "attn": "vLLM picks its own attention kernels",
    "batch_size": "vLLM schedules its own batches (max_num_seqs= sets the ceiling)",
}
"""Options of :class:`~rscovlm.model.backends.hf.HFBackend` that mean nothing to vLLM, and
why: refused by name instead of reaching ``vllm.LLM`` as a ``TypeError``."""


def processor_kwargs(band: PixelBand) -> dict[str, Any]:
    """vLLM's ``mm_processor_kwargs``: the images arrive resized into ``band`` already, so the
    processor must neither resize them nor believe in another band (both spellings of the band
    is stated as ``size``, which the transformers 5 processors read)."""
    lo, hi = band.min_pixels, band.max_pixels
    return {"do_resize": False, "size": {"shortest_edge": lo, "longest_edge": hi}}


def _adapter_rank(adapter: Path) -> int:
    """The LoRA rank of a PEFT adapter directory (vLLM sizes its LoRA slots by it)."""
    config = adapter / "adapter_config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a PEFT adapter: {config} cannot be read ({exc})") from exc
    rank = data.get("r") if isinstance(data, dict) else None
    if not isinstance(rank, int) or rank < 1:
        raise InputError(f"{config}: no LoRA rank 'r' (vLLM runs LoRA adapters only)")
    return rank


class VLLMBackend:
    """A checkpoint run by vLLM.

    Args:
        model: Checkpoint directory.
        max_images: Images per prompt at most (vLLM's ``limit_mm_per_prompt``; video: 0).
        dtype: ``auto`` (the stored dtype, as HF keeps it), ``float32``, ``bfloat16`` or
            ``float16``.
        band: Pixel band images are resized into. Default: the band the checkpoint was
            trained at (:func:`rscovlm.model.manifest.checkpoint_band`); an explicit band
            overrides it, and vLLM does not resize again.
        adapter: A PEFT LoRA adapter directory, applied through vLLM's LoRA support.
        root: Directory image sources are resolved against.
        llm_kwargs: Extra ``vllm.LLM`` arguments (``tensor_parallel_size``, …). The HF-only
            options (:data:`HF_ONLY_OPTIONS`) are refused.

    Raises:
        InputError: An HF-only option, a bad dtype, or an adapter that is not a LoRA directory.
        MissingExtraError: vLLM is not installed (extra ``[vllm]``).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        max_images: int = 4,
        dtype: str = "auto",
        band: PixelBand | None = None,
        adapter: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        **llm_kwargs: Any,
    ) -> None:
        for name, why in HF_ONLY_OPTIONS.items():
            if name in llm_kwargs:
                raise InputError(f"the vllm backend takes no {name}= ({why})")
        vllm = require("vllm", "vllm")  # before the checkpoint is read: one line naming the extra
        if max_images < 1:
            raise InputError(f"max_images must be ≥ 1, got {max_images}")
        self.family = detect_family(model)
        self.band = band or checkpoint_band(model)
        self.dtype = resolve_dtype(model, dtype)
        self.policy = GenerationPolicy.from_checkpoint(model)
        self.max_images = max_images
        self.root = Path(root) if root is not None else None
        self.name = Path(model).name
        self.adapter = None if adapter is None else Path(adapter)
        if self.adapter is not None:
            if not self.adapter.is_dir():
                raise InputError(f"adapter directory not found: {self.adapter}")
            llm_kwargs.setdefault("enable_lora", True)
            llm_kwargs.setdefault("max_lora_rank", _adapter_rank(self.adapter))
        self._vllm = vllm
        self._lora = None
        if self.adapter is not None:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest(self.adapter.name, 1, str(self.adapter))
        self._llm = vllm.LLM(
            model=str(model),
            dtype=self.dtype,
            limit_mm_per_prompt={"image": max_images, "video": 0},
            mm_processor_kwargs=processor_kwargs(self.band),
            **llm_kwargs,
        )

    def resolve(self, params: GenerationParams | None = None) -> GenerationParams:
        """``params`` (default: greedy) made explicit with this checkpoint's policy."""
        return (params or GenerationParams()).resolve(self.policy)

    def sampling_params(self, params: GenerationParams) -> Any:
        """vLLM's ``SamplingParams`` for resolved ``params``: every field that decides the
        answer is set, none left to vLLM's defaults."""
        greedy = params.greedy
        return self._vllm.SamplingParams(
            temperature=params.temperature,
            top_p=1.0 if greedy else params.top_p,
            top_k=0 if greedy else (params.top_k or 0),
            repetition_penalty=params.repetition_penalty,
            seed=params.seed,
            max_tokens=params.max_new_tokens,
            stop_token_ids=list(params.stop_token_ids or ()),
            skip_special_tokens=True,
            spaces_between_special_tokens=True,
        )

    def prompts(
        self, conversations: Sequence[Conversation], images: ImageLists | None = None
    ) -> list[dict[str, Any]]:
        """vLLM's prompt dicts: chat text plus the images, resized into the band."""
        family = get_family(self.family)
        out: list[dict[str, Any]] = []
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
            out.append(prompt)
        return out

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """Replies and their usage from one batched ``LLM.generate`` call."""
        params = self.resolve(params)
        check_inputs(
            conversations,
            images,
            self.family,
            max_images=self.max_images,
            backend="the vllm backend",
        )
        family = get_family(self.family)
        prompts = self.prompts(conversations, images)
        extra: dict[str, Any] = {} if self._lora is None else {"lora_request": self._lora}
        results = self._llm.generate(prompts, self.sampling_params(params), **extra)
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
