"""The Hugging Face ``transformers`` backend: batched, left-padded, greedy by default."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.extras import require, require_torch
from rscovlm.formats import strip_think
from rscovlm.formats.tokens import PAD_ID, STOP_IDS
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

__all__ = ["MAX_NEW_TOKENS_CAP", "HFBackend", "OnText", "ShouldStop"]

OnText = Callable[[int, str], None]
"""``on_text(index, text)``: the reply of conversation ``index`` so far (raw, cumulative)."""
ShouldStop = Callable[[int], bool]
"""``should_stop(index)``: whether to stop conversation ``index`` now (its client left)."""


def _stream_hooks(
    tokenizer: Any, offset: int, rows: int, on_text: OnText | None, should_stop: ShouldStop | None
) -> dict[str, Any]:
    """``generate`` keyword arguments that report each row's text after every decoding step
    and stop rows whose caller went away.

    Built only when asked for, so the plain path is the one the rest of the project measures.
    The streamer decodes the whole reply so far each step (not token by token), so the last
    text reported is exactly the final reply's decode, multi-byte characters included.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    torch = require_torch()
    kwargs: dict[str, Any] = {}
    if on_text is not None:
        tokens: list[list[int]] = [[] for _ in range(rows)]
        done = [False] * rows

        class _Streamer(BaseStreamer):  # type: ignore[misc]
            prompt_seen = False

            def put(self, value: Any) -> None:
                if not self.prompt_seen:  # the first call carries the prompt
                    self.prompt_seen = True
                    return
                for row, tok in enumerate(value.reshape(rows, -1)[:, -1].tolist()):
                    if done[row]:
                        continue
                    if tok in STOP_IDS:
                        done[row] = True
                        continue
                    tokens[row].append(int(tok))
                    text = tokenizer.decode(
                        tokens[row], skip_special_tokens=True, clean_up_tokenization_spaces=False
                    )
                    on_text(offset + row, text)

            def end(self) -> None:
                pass

        kwargs["streamer"] = _Streamer()
    if should_stop is not None:

        class _Cancelled(StoppingCriteria):  # type: ignore[misc]
            def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
                flags = [should_stop(offset + row) for row in range(input_ids.shape[0])]
                return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

        kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled()])
    return kwargs


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

    @property
    def max_new_tokens_limit(self) -> int:
        """The most tokens one reply may take: the model's context, at most 16384 (what a
        server caps a request's ``max_tokens`` at)."""
        config = self.lm.model.config
        text = getattr(config, "text_config", config)
        limit = getattr(text, "max_position_embeddings", None) or MAX_NEW_TOKENS_CAP
        return min(int(limit), MAX_NEW_TOKENS_CAP)

    def resolve(self, params: GenerationParams | None = None) -> GenerationParams:
        """``params`` (default: greedy) made explicit with this checkpoint's policy."""
        return (params or GenerationParams()).resolve(self.policy)

    def _max_new_tokens(self, params: GenerationParams) -> int:
        if params.max_new_tokens is not None:
            return params.max_new_tokens
        return self.max_new_tokens_limit

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
        *,
        on_text: OnText | None = None,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Greedy (or sampled) replies, decoded as WIRE §1.4 says, with their token counts.

        ``on_text`` streams each reply (raw, before ``<think>`` stripping) as it grows;
        ``should_stop`` ends a reply early (a server's client disconnected): both are for the
        server, and change nothing about the replies of conversations that run to the end.
        """
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
                    temperature=params.temperature, top_p=params.top_p, top_k=params.top_k
                )
                if params.seed is not None:
                    torch.manual_seed(params.seed)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            if on_text is not None or should_stop is not None:
                kwargs.update(
                    _stream_hooks(self.lm.tokenizer, start, len(chunk), on_text, should_stop)
                )
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
