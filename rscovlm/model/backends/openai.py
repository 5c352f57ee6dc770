"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM serve, ``rscovlm serve``, …).

Images are read and resized into the backend's pixel band first (dynamic resolution, exactly as
the local backends feed them) and sent as lossless PNG base64 data URLs, so a server that
resizes with ``smart_resize`` leaves them as they are. Requests run concurrently up to a limit,
each with a timeout, retried with exponential backoff on connection errors, 408, 429 and 5xx.
The API key is read from an environment variable named by the caller, never from code or
arguments. Standard library only (``urllib``).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from rscovlm.data.conversation import Conversation, ImagePart, TextPart, VideoPart
from rscovlm.errors import InputError, RscovlmError
from rscovlm.formats import strip_think
from rscovlm.model.backends.base import (
    Generation,
    GenerationParams,
    GenerationPolicy,
    ImageLists,
    Usage,
    check_image_lists,
)
from rscovlm.model.encoding import load_part_image, prepare_image
from rscovlm.model.loading import detect_family
from rscovlm.model.manifest import checkpoint_band
from rscovlm.resolution import DEFAULT_FAMILY, RSCOVLM_BAND, PixelBand, get_family

__all__ = ["BackendRequestError", "OpenAIBackend", "image_data_url", "to_openai_messages"]

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class BackendRequestError(RscovlmError):
    """The endpoint refused a request, or kept failing after every retry."""


def image_data_url(image: Image.Image) -> str:
    """A PNG base64 data URL of ``image`` (lossless, so the server sees the same pixels)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(
    conversation: Conversation, images: Sequence[Image.Image]
) -> list[dict[str, Any]]:
    """The chat as OpenAI messages: text-only content as a string, else a list of parts with
    ``image_url`` data URLs (``images``: one resized image per image part, in order)."""
    pending = iter(images)
    out: list[dict[str, Any]] = []
    for msg in conversation.messages:
        if all(isinstance(p, TextPart) for p in msg.content):
            out.append({"role": msg.role, "content": msg.text})
            continue
        parts: list[dict[str, Any]] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                url = image_data_url(next(pending))
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif isinstance(part, VideoPart):
                raise InputError("video parts cannot be sent to an OpenAI-compatible endpoint")
        out.append({"role": msg.role, "content": parts})
    return out


class OpenAIBackend:
    """Client of an OpenAI-compatible chat endpoint.

    Args:
        base_url: The API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: The served model name.
        api_key_env: Name of the environment variable holding the key (``None``: no key).
        family: The served model's family (box coordinates follow it). Default: the
            ``checkpoint``'s, else Qwen2.5-VL.
        band: Pixel band images are resized into before sending. Default: the band the
            ``checkpoint`` was trained at, else RSCoVLM's 224²–1008²; an explicit band
            overrides it.
        checkpoint: A local directory of the served checkpoint (the endpoint cannot say how
            its model was trained): ``family`` and ``band`` default to what it records, and
            its :class:`GenerationPolicy` (repetition penalty, ``top_k``) is sent with every
            request, as the local backends apply it.
        concurrency: Requests in flight at most.
        timeout: Seconds per request attempt.
        retries: Extra attempts after a retryable failure.
        backoff: First retry delay in seconds; doubled on every further retry.
        root: Directory image sources are resolved against.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        family: str | None = None,
        band: PixelBand | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        concurrency: int = 4,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"base_url must be an http(s) URL, got {base_url!r}")
        if concurrency < 1 or retries < 0 or timeout <= 0 or backoff < 0:
            raise InputError("concurrency ≥ 1, retries ≥ 0, timeout > 0 and backoff ≥ 0 needed")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.policy = GenerationPolicy()
        if checkpoint is not None:
            family = family or detect_family(checkpoint)
            band = band or checkpoint_band(checkpoint)
            self.policy = GenerationPolicy.from_checkpoint(checkpoint)
        self.family = family or DEFAULT_FAMILY
        self.band = band or RSCOVLM_BAND
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.root = Path(root) if root is not None else None
        self._api_key = os.environ.get(api_key_env) if api_key_env else None

    def _payload(
        self, conv: Conversation, images: Sequence[Any] | None, params: GenerationParams
    ) -> dict[str, Any]:
        parts = conv.image_parts()
        if images is None:
            loaded = [load_part_image(p, self.root) for p in parts]
        else:
            if len(images) != len(parts):
                raise InputError(f"{len(images)} images for {len(parts)} image parts")
            loaded = [prepare_image(img, p) for img, p in zip(images, parts, strict=True)]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(conv, loaded),
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.max_new_tokens is not None:
            body["max_tokens"] = params.max_new_tokens
        if params.seed is not None:
            body["seed"] = params.seed
        # vLLM's and rscovlm's servers read these extensions; sent only when they change
        # anything, so a plain OpenAI endpoint never sees an unknown field for nothing.
        if params.repetition_penalty not in (None, 1.0):
            body["repetition_penalty"] = params.repetition_penalty
        if not params.greedy and params.top_k:
            body["top_k"] = params.top_k
        return body

    def resolve(self, params: GenerationParams | None = None) -> GenerationParams:
        """``params`` (default: greedy) with the served checkpoint's policy, when known.

        The token budget stays unset unless the caller set it: the server knows its model's
        context, this client does not."""
        params = params or GenerationParams()
        return dataclasses.replace(
            params.resolve(self.policy), max_new_tokens=params.max_new_tokens
        )

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = f"{self.base_url}/chat/completions"
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:500]
                last = f"HTTP {exc.code}: {detail}"
                if exc.code not in RETRY_STATUS:
                    raise BackendRequestError(f"{url} refused the request: {last}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            except json.JSONDecodeError as exc:
                last = f"the reply is not JSON: {exc}"
        raise BackendRequestError(f"{url} failed after {self.retries + 1} attempts: {last}")

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: ImageLists | None = None,
    ) -> list[Generation]:
        """One request per conversation, ``concurrency`` at a time, replies (with the usage the
        endpoint reports) in order."""
        params = self.resolve(params)
        check_image_lists(conversations, images)
        bodies = [
            self._payload(c, None if images is None else images[i], params)
            for i, c in enumerate(conversations)
        ]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            replies = list(pool.map(self._post, bodies))
        factor = get_family(self.family).factor
        outputs = []
        for conv, reply in zip(conversations, replies, strict=True):
            try:
                choice = reply["choices"][0]
                text = choice["message"]["content"] or ""
            except (KeyError, IndexError, TypeError) as exc:
                raise BackendRequestError(f"malformed completion: {str(reply)[:200]}") from exc
            info = reply.get("usage") or {}
            usage = Usage(
                _count(info.get("prompt_tokens")),
                _count(info.get("completion_tokens")),
                sum(p.pad_tokens(factor) for p in conv.image_parts()),
            )
            finish = choice.get("finish_reason")
            outputs.append(
                Generation(
                    strip_think(text) if params.strip_think else text,
                    usage,
                    finish if finish in ("stop", "length") else None,
                )
            )
        return outputs


def _count(value: Any) -> int | None:
    """A token count from a reply (``None`` unless a non-negative int: servers differ)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None
