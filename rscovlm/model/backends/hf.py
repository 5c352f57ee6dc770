"""The Hugging Face ``transformers`` backend: batched, left-padded, greedy by default."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.extras import require, require_torch
from rscovlm.formats import strip_think
from rscovlm.model.backends.base import GenerationParams, ImageLists, Usage, check_image_lists
from rscovlm.model.encoding import PAD_TOKEN_ID, encode
from rscovlm.model.loading import LoadedModel, load_checkpoint
from rscovlm.resolution import RSCOVLM_BAND, PixelBand

__all__ = ["HFBackend", "checkpoint_band"]

IM_END_ID = 151645
MAX_NEW_TOKENS_CAP = 16384


def checkpoint_band(path: str | os.PathLike[str]) -> PixelBand:
    """The pixel band in the checkpoint's ``preprocessor_config.json`` (WIRE §7.1), else
    RSCoVLM's 224²–1008²."""
    config = Path(path) / "preprocessor_config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return RSCOVLM_BAND
    lo, hi = data.get("min_pixels"), data.get("max_pixels")
    size = data.get("size") or {}
    lo = lo if isinstance(lo, int) else size.get("shortest_edge")
    hi = hi if isinstance(hi, int) else size.get("longest_edge")
    if isinstance(lo, int) and isinstance(hi, int) and 0 < lo <= hi:
        return PixelBand(lo, hi)
    return RSCOVLM_BAND


class HFBackend:
    """A checkpoint run by ``transformers`` (extra ``[train]``).

    Args:
        model: A checkpoint directory, or an already loaded :class:`LoadedModel`.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        device: A torch device string.
        attn: ``sdpa`` (default), ``flash_attention_2``, ``eager`` or ``auto``.
        adapter: A PEFT adapter directory applied on top (extra ``[train]`` has peft).
        batch_size: Conversations per forward batch.
        band: The pixel band; default the checkpoint's.
        root: Directory image sources are resolved against.
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
            else load_checkpoint(model, dtype=dtype, device=device, attn=attn)
        )
        if adapter is not None:
            peft = require("peft", "train")
            if not Path(adapter).is_dir():
                raise InputError(f"adapter directory not found: {adapter}")
            self.lm.model = peft.PeftModel.from_pretrained(self.lm.model, str(adapter)).eval()
        self.family = self.lm.family
        self.band = band or checkpoint_band(self.lm.path)
        self.batch_size = batch_size
        self.root = root
        self.name = self.lm.path.name
        self.last_usage: list[Usage] = []

    def _max_new_tokens(self, params: GenerationParams) -> int:
        if params.max_new_tokens is not None:
            return params.max_new_tokens
        config = self.lm.model.config
        text = getattr(config, "text_config", config)
        limit = getattr(text, "max_position_embeddings", None) or MAX_NEW_TOKENS_CAP
        return min(int(limit), MAX_NEW_TOKENS_CAP)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[str]:
        """Greedy (or sampled) replies, decoded as WIRE §1.4 says."""
        torch = require_torch()
        params = params or GenerationParams()
        check_image_lists(conversations, images)
        outputs: list[str] = []
        usage: list[Usage] = []
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
                "max_new_tokens": self._max_new_tokens(params),
                "do_sample": not params.greedy,
                "pad_token_id": PAD_TOKEN_ID,
                "eos_token_id": [IM_END_ID, PAD_TOKEN_ID],
            }
            if not params.greedy:
                kwargs.update(temperature=params.temperature, top_p=params.top_p)
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
                n_out = len(tokens)
                for k, tok in enumerate(tokens):
                    if tok in (IM_END_ID, PAD_TOKEN_ID):
                        n_out = k + 1
                        break
                text = self.lm.tokenizer.decode(
                    tokens[:n_out], skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
                outputs.append(strip_think(text) if params.strip_think else text)
                usage.append(Usage(int(mask[row].sum()), n_out, batch.image_tokens[row]))
        self.last_usage = usage
        return outputs
