"""An OpenAI-compatible HTTP server over a backend: ``/v1/chat/completions`` and ``/v1/models``.

Standard library only (``http.server.ThreadingHTTPServer``); the ``[serve]`` extra adds nothing
this module needs beyond the backend's own (``[train]`` for ``hf``). Requests are served one
generation at a time (a lock around ``generate``: one model in memory, and seeded sampling
draws from torch's global generator, so two concurrent requests would change each other's
samples). The reply's ``usage`` and ``finish_reason`` are the returned
:class:`~rscovlm.model.backends.base.Generation`'s own. Every bad request gets a 4xx JSON error
``{"error": {"message", "type", "code"}}`` while the server keeps serving:

- 400 bad JSON, wrong fields, unsupported options (``stream``, ``n > 1``), remote image URLs
  (only ``data:`` URLs: the server never fetches), undecodable images, too many images;
- 401 missing or wrong API key (when one is configured, from an environment variable);
- 404 unknown model or path; 411 no ``Content-Length``; 413 body or image too large;
- 500 the backend failed (the message says why).

Images are resized into the backend's pixel band (``smart_resize``) exactly as the local
backends do; an image already inside the band at a multiple of the factor is left as sent.
Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from rscovlm.data.conversation import Conversation, ImagePart, Message, Part, TextPart
from rscovlm.errors import InputError
from rscovlm.model.backends.base import Backend, GenerationParams
from rscovlm.resolution import CoordMap, get_family

__all__ = ["ApiError", "ServerConfig", "make_server", "parse_chat_request", "serve"]


_DRAIN_LIMIT = 256 * 1024 * 1024


class ApiError(Exception):
    """A request error with its HTTP status."""

    def __init__(self, status: int, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ServerConfig:
    """Server options.

    Attributes:
        model_name: The id ``/v1/models`` lists and requests must name.
        host: Bind address (loopback by default).
        port: TCP port (0 picks a free one).
        api_key_env: Name of the environment variable holding the key clients must send as
            ``Authorization: Bearer …``; ``None`` or an unset variable means no key.
        max_body_bytes: Largest request body.
        max_images: Images per request at most.
        max_image_pixels: Pixels per decoded image at most (checked from the header first).
        max_new_tokens: Cap on ``max_tokens`` (and the default when a request gives none).
    """

    model_name: str
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: str | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    max_images: int = 8
    max_image_pixels: int = 8192 * 8192
    max_new_tokens: int = 4096


def _decode_image(url: str, limit: int) -> Image.Image:
    if not url.startswith("data:"):
        raise ApiError(400, "only data: image URLs are accepted (the server fetches nothing)")
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise ApiError(400, "image data URLs must be base64-encoded")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"image data URL is not valid base64: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width * height > limit:
                raise ApiError(
                    413, f"image of {width}×{height} pixels exceeds {limit}", "image_too_large"
                )
            image.load()
    except ApiError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise ApiError(400, f"cannot decode image: {exc}") from exc
    return image


def _content_parts(
    content: Any, backend: Backend, config: ServerConfig, images: list[Image.Image]
) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise ApiError(400, "message content must be a string or a list of parts")
    family = get_family(backend.family)
    parts: list[Part] = []
    for item in content:
        if not isinstance(item, dict):
            raise ApiError(400, "content parts must be objects")
        kind = item.get("type")
        if kind == "text":
            if not isinstance(item.get("text"), str):
                raise ApiError(400, "a text part needs a string 'text'")
            parts.append(TextPart(item["text"]))
        elif kind == "image_url":
            ref = item.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str):
                raise ApiError(400, "an image_url part needs a url")
            if len(images) >= config.max_images:
                raise ApiError(400, f"too many images: at most {config.max_images} per request")
            image = _decode_image(url, config.max_image_pixels)
            try:
                cmap = CoordMap.for_image(image.width, image.height, backend.band, family)
            except InputError as exc:
                raise ApiError(400, f"image cannot be resized: {exc}") from exc
            images.append(image)
            parts.append(ImagePart(f"request:{len(images) - 1}", cmap.orig_size, cmap.resized_size))
        else:
            raise ApiError(400, f"unsupported content part type {kind!r}")
    return tuple(parts)


def parse_chat_request(
    body: Any, backend: Backend, config: ServerConfig
) -> tuple[Conversation, list[Image.Image], GenerationParams]:
    """A chat-completions request as a conversation, its images and the decoding parameters.

    Raises:
        ApiError: The request is malformed or over a limit.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if model != config.model_name:
        raise ApiError(404, f"unknown model {model!r}; this server serves {config.model_name!r}",
                       "model_not_found")  # fmt: skip
    if body.get("stream"):
        raise ApiError(400, "stream=true is not supported")
    if body.get("n", 1) != 1:
        raise ApiError(400, "only n=1 is supported")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list")
    images: list[Image.Image] = []
    parsed: list[Message] = []
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "user", "assistant"):
            raise ApiError(400, "each message needs a role of system, user or assistant")
        parsed.append(Message(msg["role"], _content_parts(msg.get("content"), backend, config,
                                                          images)))  # fmt: skip
    if parsed[-1].role != "user":
        raise ApiError(400, "the last message must be a user message")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = config.max_new_tokens
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    seed = body.get("seed")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(400, "max_tokens must be a positive integer")
    for name, value in (("temperature", temperature), ("top_p", top_p)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ApiError(400, f"{name} must be a number")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ApiError(400, "seed must be an integer")
    try:
        params = GenerationParams(
            max_new_tokens=min(max_tokens, config.max_new_tokens),
            temperature=float(temperature),
            top_p=float(top_p),
            seed=seed,
        )
    except InputError as exc:
        raise ApiError(400, str(exc)) from exc
    conv = Conversation(parsed, get_family(backend.family), {"request": True})
    return conv, images, params


def make_server(backend: Backend, config: ServerConfig) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server; call ``serve_forever`` (``server_address`` has
    the bound port)."""
    lock = threading.Lock()
    api_key = os.environ.get(config.api_key_env) if config.api_key_env else None

    class Handler(BaseHTTPRequestHandler):
        server_version = "rscovlm"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet; errors go back to the client

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, err: ApiError) -> None:
            kind = "invalid_request_error" if err.status < 500 else "server_error"
            self._send(err.status, {"error": {"message": err.message, "type": kind,
                                              "code": err.code}})  # fmt: skip

        def _authorised(self) -> bool:
            if not api_key:
                return True
            return self.headers.get("Authorization", "") == f"Bearer {api_key}"

        def do_GET(self) -> None:
            if not self._authorised():
                self._error(ApiError(401, "missing or wrong API key", "invalid_api_key"))
            elif self.path.rstrip("/") == "/v1/models":
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": config.model_name, "object": "model", "owned_by": "rscovlm"}
                        ],
                    },
                )
            elif self.path.rstrip("/") == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._error(ApiError(404, f"no route {self.path}", "not_found"))

        def do_POST(self) -> None:
            try:
                self._post()
            except ApiError as err:
                self.close_connection = True
                self._error(err)

        def _drain(self, length: int) -> None:
            # Read (and drop) a refused body so the client can read the error, up to a bound.
            left = min(max(length, 0), _DRAIN_LIMIT)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)

        def _post(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                raise ApiError(404, f"no route {self.path}", "not_found")
            if not self._authorised():
                raise ApiError(401, "missing or wrong API key", "invalid_api_key")
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                raise ApiError(411, "a Content-Length header is required", "length_required")
            try:
                length = int(length_text)
            except ValueError as exc:
                raise ApiError(400, "Content-Length is not an integer") from exc
            if length < 0 or length > config.max_body_bytes:
                self._drain(length)
                raise ApiError(413, f"request body of {length} bytes exceeds "
                                    f"{config.max_body_bytes}", "body_too_large")  # fmt: skip
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ApiError(400, f"the body is not valid JSON: {exc}", "bad_json") from exc
            conv, images, params = parse_chat_request(body, backend, config)
            try:
                with lock:  # one generation at a time (see the module docstring)
                    generation = backend.generate([conv], params, images=[images])[0]
            except InputError as exc:
                raise ApiError(400, str(exc)) from exc
            except Exception as exc:  # the server must survive a failing generation
                raise ApiError(500, f"generation failed: {type(exc).__name__}: {exc}",
                               "generation_failed") from exc  # fmt: skip
            usage = generation.usage
            prompt = usage.prompt_tokens or 0  # the OpenAI schema has no "unknown"
            done = usage.completion_tokens or 0
            finish = generation.finish_reason or "stop"
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": config.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant",
                                                     "content": generation.text},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": done,
                          "total_tokens": prompt + done},
            })  # fmt: skip

    server = ThreadingHTTPServer((config.host, config.port), Handler)
    server.daemon_threads = True
    return server


def serve(backend: Backend, config: ServerConfig) -> None:
    """Serve until interrupted."""
    server = make_server(backend, config)
    try:
        server.serve_forever()
    finally:
        server.server_close()
