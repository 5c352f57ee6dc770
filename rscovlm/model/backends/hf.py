"""The Hugging Face ``transformers`` backend: batched, left-padded, greedy by default."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.extras import require, require_torch
from rscovlm.formats import strip_think
from rscovlm.formats.tokens import PAD_ID
from rscovlm.model.backends.base import (
    MAX_NEW_TOKENS_CAP,
    Generation,
    GenerationParams,
    GenerationPolicy,
    ImageLists,
    Usage,
    check_inputs,
)
from rscovlm.model.encoding import encode
from rscovlm.model.loading import LoadedModel, load_checkpoint, resolve_dtype
from rscovlm.resolution import PixelBand

__all__ = ["MAX_NEW_TOKENS_CAP", "HFBackend"]


class HFBackend:
    """A checkpoint run by ``transformers`` (extra ``[train]``).

    Args:
        model: A checkpoint directory, or an already loaded :class:`LoadedModel`.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        device: A torch device string.
        attn: ``sdpa`` (default), ``flash_attention_2``, ``eager`` or ``auto``.
        adapter: A PEFT adapter directory applied on top (extra ``[train]`` has peft).
        batch_size: Conversations per forward batch.
        band: The pixel band images are resized into. Default: the band the checkpoint was
            trained at (its ``rscovlm.json``, else ``preprocessor_config.json``; see
            :func:`rscovlm.model.manifest.checkpoint_band`); an explicit band overrides it.
        root: Directory image sources are resolved against.

    Decoding follows :attr:`policy` (the checkpoint's ``generation_config.json``, read once):
    every value ``transformers`` would otherwise take from the model's generation config is
    passed explicitly, as the other backends pass it.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | LoadedModel,
        *,
        dtype: str = "auto",
        device: str = "cpu",
        attn: str = "sdpa",
        adapter: str | os.PathLike[str] | None = None,
        batch_size: int = 8,
        band: PixelBand | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        require_torch()  # before any option is read: a core install fails here, in one line
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
        self.lm = (
            model
            if isinstance(model, LoadedModel)
            else load_checkpoint(model, dtype=resolve_dtype(model, dtype), device=device, attn=attn)
        )
        self.policy = GenerationPolicy.from_checkpoint(self.lm.path)
        if adapter is not None:
            peft = require("peft", "train")
            if not Path(adapter).is_dir():
                raise InputError(f"adapter directory not found: {adapter}")
            self.lm.model = peft.PeftModel.from_pretrained(self.lm.model, str(adapter)).eval()
        self.family = self.lm.family
        self.band = band or self.lm.band
        self.batch_size = batch_size
        self.root = root
        self.name = self.lm.path.name

    def resolve(self, params: GenerationParams | None = None) -> GenerationParams:
        """``params`` (default: greedy) made explicit with this checkpoint's policy."""
        return (params or GenerationParams()).resolve(self.policy)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """Greedy (or sampled) replies, decoded as WIRE §1.4 says, with their token counts."""
        torch = require_torch()
        params = self.resolve(params)
        check_inputs(conversations, images, self.family, backend="the hf backend")
        stop_ids = tuple(params.stop_token_ids or ())
        outputs: list[Generation] = []
        device = next(self.lm.model.parameters()).device
        for start in range(0, len(conversations), self.batch_size):
            chunk = list(conversations[start : start + self.batch_size])
            chunk_images = None if images is None else list(images[start : start + len(chunk)])
            batch = encode(
                chunk,
                self.lm.tokenizer,
                self.lm.image_processor,
                family=self.family,
                images=chunk_images,
                root=self.root,
                add_generation_prompt=True,
            )
            inputs = {k: v.to(device) for k, v in batch.inputs.items()}
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.lm.model.dtype)
            if not self.lm.wants_mm_token_type_ids:
                inputs.pop("mm_token_type_ids")
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "do_sample": not params.greedy,
                "pad_token_id": PAD_ID,
                "eos_token_id": list(stop_ids),
                "repetition_penalty": params.repetition_penalty,
            }
            if not params.greedy:
                kwargs.update(
                    temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None
                )
                if params.seed is not None:
                    torch.manual_seed(params.seed)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                generated = self.lm.model.generate(**inputs, **kwargs)
            width = inputs["input_ids"].shape[1]
            new = generated[:, width:]
            mask = inputs["attention_mask"]
            for row in range(new.shape[0]):
                tokens = new[row].tolist()
                stop = next((k for k, tok in enumerate(tokens) if tok in stop_ids), None)
                n_out = len(tokens) if stop is None else stop + 1
                text = self.lm.tokenizer.decode(
                    tokens[:n_out], skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
                usage = Usage(int(mask[row].sum()), n_out, batch.image_tokens[row])
                outputs.append(
                    Generation(
                        strip_think(text) if params.strip_think else text,
                        usage,
                        "stop" if stop is not None else "length",  # no stop token: budget spent
                    )
                )
        return outputs
