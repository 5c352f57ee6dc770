"""An OpenAI-compatible HTTP server over any backend: ``/v1/chat/completions`` (plain and
``stream=true`` server-sent events), ``/v1/models`` and ``/v1/models/{id}``.

Standard library only (``http.server``); the backend brings its own stack. How it behaves under
load, and why:

- **Startup checks first.** :func:`bind_server` binds the address and reads the API-key
  variable before any model loads, so a port in use, a bad host or an unset key variable is one
  line after a second, not a traceback after a 20 s load. A non-loopback bind without a key is
  warned about loudly. Keys are compared with :func:`hmac.compare_digest`.
- **Dynamic batching, one generation at a time.** Requests go to an admission queue (bounded:
  full → 429 with ``Retry-After``); one scheduler thread takes the oldest request and gathers
  waiting requests with the same decoding parameters (up to ``max_batch``, waiting at most
  ``batch_wait`` s, and up to ``arrival_wait`` s while other requests are still being read
  and decoded — so a lone client pays no wait, while clients that send together, as an
  evaluation harness does, share one call) into one ``generate`` call. ``batch_wait`` is 20 ms:
  clients that send again as soon as their reply arrives come back within a few ms of each
  other, and 20 ms is under 2 % of a 7B model's reply, while 5 ms gathered only half of 8 such
  clients (``benchmarks/serve_load.py``). Greedy and unseeded sampled requests batch;
  a **seeded** sampled request always runs alone, because the ``hf`` backend seeds torch's
  global generator per call, so sharing a batch would change its samples.
- **Streaming.** Backends that take ``on_text`` (``hf``) stream token by token; the others
  stream their reply as one delta. The deltas add up to exactly the non-streamed reply
  (:func:`rscovlm.formats.stable_reply_prefix` holds back what ``<think>`` stripping could
  still change).
- **Cancellation.** A client that disconnects (while queued or generating) has its request
  dropped or its rows stopped (``should_stop``).
- **Bounded memory.** Images are decoded one at a time, each reduced at decode where the format
  allows (JPEG draft) and resized into the backend's pixel band right away, so a request holds
  only band-sized images. Decoding takes pixels from a server-wide budget (``max_decode_pixels``
  across concurrent requests); a request's images may total ``max_request_pixels`` at most
  (over → 413 with the numbers).
- ``max_tokens`` defaults to ``default_max_tokens`` and is capped at the model's own limit.
- A real listen backlog, per-socket read timeouts, one access-log line per request.

Every bad request gets a JSON error ``{"error": {"message", "type", "code"}}`` (400 bad JSON or
fields, non-finite numbers, remote image URLs — the server fetches nothing —, undecodable
images; 401 key; 404 model or path; 408 read timeout; 411; 413 body or pixels; 429 queue full;
500 the backend failed; 503 decoding budget busy) and the server keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import hmac
import inspect
import ipaddress
import json
import math
import os
import queue
import select
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from rscovlm.data.conversation import Conversation, ImagePart, Message, Part, TextPart
from rscovlm.errors import InputError
from rscovlm.formats import stable_reply_prefix
from rscovlm.imaging import decode_reduced, draft_size, open_image_bytes
from rscovlm.model.backends.base import Backend, Generation, GenerationParams
from rscovlm.resolution import CoordMap, get_family

__all__ = [
    "ApiError",
    "ChatRequest",
    "PixelBudget",
    "Scheduler",
    "ServerConfig",
    "bind_server",
    "make_server",
    "parse_chat_request",
    "serve",
    "served_model_name",
    "token_cap",
]

_DRAIN_LIMIT = 256 * 1024 * 1024
_POLL = 0.2  # seconds between checks that a waiting client is still there
_GENERIC_DIRS = {"final", "last", "latest", "best", "model", "export", "hf"}


class ApiError(Exception):
    """A request error with its HTTP status (and, for 429, when to retry)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str = "invalid_request",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class ServerConfig:
    """Server options.

    Attributes:
        model_name: The id ``/v1/models`` lists and requests must name.
        host: Bind address (loopback by default).
        port: TCP port (0 picks a free one).
        api_key_env: Name of the environment variable holding the key clients must send as
            ``Authorization: Bearer …``; named but unset refuses to start.
        max_body_bytes: Largest request body.
        max_images: Images per request at most.
        max_image_pixels: Pixels of one image at most (by its header, before decoding).
        max_request_pixels: Header pixels of all of a request's images together at most.
        max_decode_pixels: Pixels being decoded at once across all requests (memory bound).
        max_new_tokens: Cap on ``max_tokens``; ``None``: the backend's own limit (the model's
            context, for ``hf``), else 4096.
        default_max_tokens: ``max_tokens`` of a request that gives none (within the cap).
        max_batch: Requests per ``generate`` call at most (1: the old one-at-a-time server).
        batch_wait: Seconds the scheduler waits for more requests to join a batch.
        arrival_wait: Seconds it keeps waiting, at most, while requests that could join are
            still being read or decoded (counted from the first request's turn).
        max_queue: Requests waiting for generation at most; more get 429.
        backlog: The listen backlog (connections the kernel holds before ``accept``).
        read_timeout: Seconds a socket may stay silent while a request is read.
        decode_wait: Seconds a request waits for room in the decoding budget (then 503).
        access_log: One line per request on stderr.
    """

    model_name: str
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: str | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    max_images: int = 8
    max_image_pixels: int = 8192 * 8192
    max_request_pixels: int = 8 * 8192 * 8192
    max_decode_pixels: int = 2 * 8192 * 8192
    max_new_tokens: int | None = None
    default_max_tokens: int = 512
    max_batch: int = 8
    batch_wait: float = 0.02
    arrival_wait: float = 0.05
    max_queue: int = 64
    backlog: int = 256
    read_timeout: float = 30.0
    decode_wait: float = 120.0
    access_log: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be in 0..65535, got {self.port}")
        for name in ("max_batch", "max_queue", "backlog", "default_max_tokens", "max_images"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.max_decode_pixels < self.max_image_pixels:
            raise InputError("max_decode_pixels must be ≥ max_image_pixels (one image decodes)")


def served_model_name(model: str) -> str:
    """The id a checkpoint is served under: its folder name, or for a run's generic output
    folder (``run/final``, ``run/checkpoint-500``) the run's name (``run``, ``run-500``).

    Examples:
        >>> served_model_name("runs/dota-ft/final"), served_model_name("r/checkpoint-500")
        ('dota-ft', 'r-500')
        >>> served_model_name("RSCoVLM-7B")
        'RSCoVLM-7B'
    """
    path = Path(model)
    if path.name in ("", "."):
        path = path.resolve()
    name = path.name
    parent = path.parent.name or path.resolve().parent.name
    if name.lower() in _GENERIC_DIRS and parent:
        return parent
    if name.startswith("checkpoint-") and parent:
        return f"{parent}-{name.removeprefix('checkpoint-')}"
    return name


# --------------------------------------------------------------------------- images


class PixelBudget:
    """Pixels being decoded right now, across requests: decoding waits for room (a weighted
    semaphore), so N concurrent requests of huge images decode a bounded amount at once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, pixels: int, timeout: float) -> None:
        """Take ``pixels`` (≤ capacity), waiting up to ``timeout`` s.

        Raises:
            ApiError: 503 when no room came in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.used + pixels > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(
                        503,
                        f"the server is decoding {self.used} of {self.capacity} pixels; "
                        f"{pixels} more do not fit now",
                        "decode_budget_busy",
                        retry_after=1,
                    )
                self._cond.wait(left)
            self.used += pixels

    def release(self, pixels: int) -> None:
        """Give ``pixels`` back."""
        with self._cond:
            self.used -= pixels
            self._cond.notify_all()


@dataclass
class _PendingImage:
    index: int
    image: Image.Image
    cmap: CoordMap


def _open_image(url: str, index: int, backend: Backend, config: ServerConfig) -> _PendingImage:
    if not url.startswith("data:"):
        raise ApiError(400, "only data: image URLs are accepted (the server fetches nothing)")
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise ApiError(400, "image data URLs must be base64-encoded")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"image {index}: the data URL is not valid base64") from None
    try:
        image = open_image_bytes(raw, config.max_image_pixels)
    except InputError as exc:
        status = 413 if "over the limit" in str(exc) else 400
        code = "image_too_large" if status == 413 else "invalid_request"
        raise ApiError(status, f"image {index}: {exc}", code) from None
    try:
        cmap = CoordMap.for_image(image.width, image.height, backend.band, backend.family)
    except InputError as exc:
        raise ApiError(400, f"image {index} cannot be resized: {exc}") from None
    return _PendingImage(index, image, cmap)


def _decode(
    pending: _PendingImage, part: ImagePart, budget: PixelBudget, wait: float
) -> Image.Image:
    """Decode one image within the budget and bring it to its band size at once."""
    w, h = draft_size(pending.image, pending.cmap.resized_size)
    cost = w * h
    budget.acquire(cost, timeout=wait)
    try:
        return _DECODERS.submit(_decode_small, pending, part).result()
    finally:
        budget.release(cost)


def _decode_small(pending: _PendingImage, part: ImagePart) -> Image.Image:
    """Decode at full size and shrink to the band, on one of the decoder threads."""
    from rscovlm.model.encoding import prepare_image

    try:
        decoded = decode_reduced(pending.image, pending.cmap.resized_size)
    except InputError as exc:
        raise ApiError(400, f"image {pending.index}: {exc}") from None
    small = prepare_image(decoded, part)
    if small is not decoded:
        # the request keeps its lazily opened image until it ends: destroy the full-size
        # pixels now, or every image of every concurrent request stays decoded at once
        decoded.close()
    return small


_DECODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rscovlm-decode")
"""The threads every full-size decode runs on. glibc gives each thread that allocates its own
malloc arena and keeps freed arena memory mapped: decoding on the request threads made 8
concurrent requests of 8 × 8192² PNGs grow the process by +8.8 GB although at most two decodes
ran at once (measured; ``MALLOC_ARENA_MAX=2`` confirmed the cause). Two fixed threads keep the
big allocations in two arenas, so the memory that decoding costs stays bounded by the budget."""


# --------------------------------------------------------------------------- requests


@dataclass
class ChatRequest:
    """A parsed chat request: the conversation, its band-sized images, how to decode."""

    conversation: Conversation
    images: list[Image.Image]
    params: GenerationParams
    stream: bool = False
    include_usage: bool = False


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply", "bad_json") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "bad_json") from None


def _content_parts(content: Any, found: list[tuple[ImagePart, _PendingImage]], backend: Backend,
                   config: ServerConfig) -> tuple[Part, ...]:  # fmt: skip
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise ApiError(400, "message content must be a string or a list of parts")
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
            if len(found) >= config.max_images:
                raise ApiError(400, f"too many images: at most {config.max_images} per request")
            pending = _open_image(url, len(found), backend, config)
            cmap = pending.cmap
            part = ImagePart(f"request:{len(found)}", cmap.orig_size, cmap.resized_size)
            found.append((part, pending))
            parts.append(part)
        else:
            raise ApiError(400, f"unsupported content part type {kind!r}")
    return tuple(parts)


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number")
    return float(value)


def token_cap(backend: Backend, config: ServerConfig) -> int:
    """The most tokens one reply may take: the config's cap, else the backend's limit."""
    if config.max_new_tokens is not None:
        return config.max_new_tokens
    limit = getattr(backend, "max_new_tokens_limit", None)
    return int(limit) if isinstance(limit, int) else 4096


def parse_chat_request(
    body: Any, backend: Backend, config: ServerConfig, budget: PixelBudget | None = None
) -> ChatRequest:
    """A chat-completions request as a conversation, its images (decoded into the band) and
    the decoding parameters.

    Raises:
        ApiError: The request is malformed or over a limit.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if model != config.model_name:
        raise ApiError(404, f"unknown model {model!r}; this server serves {config.model_name!r}",
                       "model_not_found")  # fmt: skip
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "stream must be true or false")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object")
    if body.get("n", 1) not in (1, None):
        raise ApiError(400, "only n=1 is supported")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list")
    found: list[tuple[ImagePart, _PendingImage]] = []
    parsed: list[Message] = []
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "user", "assistant"):
            raise ApiError(400, "each message needs a role of system, user or assistant")
        parsed.append(Message(msg["role"], _content_parts(msg.get("content"), found, backend,
                                                          config)))  # fmt: skip
    if parsed[-1].role != "user":
        raise ApiError(400, "the last message must be a user message")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    cap = token_cap(backend, config)
    if max_tokens is None:
        max_tokens = min(config.default_max_tokens, cap)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(400, "max_tokens must be a positive integer")
    temperature = _number(body, "temperature", 0.0)
    top_p = _number(body, "top_p", 1.0)
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ApiError(400, "seed must be an integer")
    try:
        params = GenerationParams(min(max_tokens, cap), temperature, top_p, seed)
    except InputError as exc:
        raise ApiError(400, str(exc)) from None
    total = sum(p.image.width * p.image.height for _, p in found)
    if total > config.max_request_pixels:
        raise ApiError(413, f"the request's {len(found)} images have {total} pixels, over the "
                            f"limit {config.max_request_pixels}", "image_too_large")  # fmt: skip
    budget = budget or PixelBudget(config.max_decode_pixels)
    wait = config.decode_wait
    images = [_decode(pending, part, budget, wait) for part, pending in found]  # one at a time
    conv = Conversation(parsed, get_family(backend.family), {"request": True})
    include_usage = bool(options.get("include_usage", False))
    return ChatRequest(conv, images, params, stream, include_usage)


# --------------------------------------------------------------------------- scheduling


@dataclass(eq=False)
class _Job:
    request: ChatRequest
    deltas: queue.Queue[str | None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    generation: Generation | None = None
    error: ApiError | None = None
    sent: str = ""

    def on_text(self, raw: str) -> None:
        """Push the newly certain part of the reply (streaming requests only)."""
        if self.deltas is None:
            return
        stable = stable_reply_prefix(raw)
        if len(stable) > len(self.sent) and stable.startswith(self.sent):
            self.deltas.put(stable[len(self.sent) :])
            self.sent = stable

    def finish(self, generation: Generation | None, error: ApiError | None) -> None:
        self.generation, self.error = generation, error
        if self.deltas is not None:
            if generation is not None and generation.text.startswith(self.sent):
                rest = generation.text[len(self.sent) :]
                if rest:
                    self.deltas.put(rest)
                self.sent = generation.text
            self.deltas.put(None)
        self.done.set()


class Scheduler:
    """The admission queue and the one thread that calls ``generate``, batching compatible
    requests (see the module docstring for which are compatible and why).

    Attributes:
        calls: ``generate`` calls made, each as its batch size (for tests and benchmarks).
    """

    def __init__(self, backend: Backend, config: ServerConfig) -> None:
        self.backend = backend
        self.max_batch = config.max_batch
        self.batch_wait = config.batch_wait
        self.arrival_wait = config.arrival_wait
        self._arriving = 0
        self.max_queue = config.max_queue
        self.calls: list[int] = []
        self._queue: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        accepted = inspect.signature(backend.generate).parameters
        self._hooks = "on_text" in accepted and "should_stop" in accepted
        self._thread = threading.Thread(target=self._loop, name="rscovlm-generate", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a request as being read and decoded: a batch being gathered waits for it (up
        to ``arrival_wait``), whether it ends in :meth:`submit` or in an error."""
        with self._cond:
            self._arriving += 1
        try:
            yield
        finally:
            with self._cond:
                self._arriving -= 1
                self._cond.notify_all()

    def submit(self, job: _Job) -> None:
        """Queue ``job``.

        Raises:
            ApiError: 429 when the queue is full.
        """
        with self._cond:
            if len(self._queue) >= self.max_queue:
                waiting = len(self._queue)
                message = f"the server is busy: {waiting} requests are waiting; retry shortly"
                raise ApiError(429, message, "queue_full", retry_after=1)
            self._queue.append(job)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread; waiting requests fail with 503."""
        with self._cond:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in left:
            job.finish(None, ApiError(503, "the server is shutting down", "shutting_down"))

    @staticmethod
    def _batchable(params: GenerationParams) -> bool:
        return params.greedy or params.seed is None

    def _take_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            first = self._queue.popleft()
            batch = [first]
            if self.max_batch == 1 or not self._batchable(first.request.params):
                return batch
            started = time.monotonic()
            deadline = started + self.batch_wait
            patience = started + max(self.batch_wait, self.arrival_wait)
            while True:
                for job in list(self._queue):
                    if len(batch) >= self.max_batch:
                        break
                    if job.request.params == first.request.params:
                        self._queue.remove(job)
                        batch.append(job)
                now = time.monotonic()
                left = (patience if self._arriving else deadline) - now
                if len(batch) >= self.max_batch or left <= 0:
                    return batch
                self._cond.wait(left)

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            live = [job for job in batch if not job.cancelled.is_set()]
            for job in batch:
                if job.cancelled.is_set():
                    job.finish(None, ApiError(499, "the client went away", "cancelled"))
            if live:
                self._run(live)

    def _run(self, batch: list[_Job]) -> None:
        kwargs: dict[str, Any] = {}
        if self._hooks:
            kwargs["on_text"] = lambda k, text: batch[k].on_text(text)
            kwargs["should_stop"] = lambda k: batch[k].cancelled.is_set()
        self.calls.append(len(batch))
        try:
            generations = self.backend.generate(
                [job.request.conversation for job in batch],
                batch[0].request.params,
                images=[job.request.images for job in batch],
                **kwargs,
            )
        except InputError as exc:
            for job in batch:
                job.finish(None, ApiError(400, str(exc)))
            return
        except Exception as exc:  # the server must survive a failing generation
            reason = str(exc).splitlines()[0][:300] if str(exc) else ""
            error = ApiError(
                500, f"generation failed: {type(exc).__name__}: {reason}", "generation_failed"
            )
            for job in batch:
                job.finish(None, error)
            return
        for job, generation in zip(batch, generations, strict=True):
            job.finish(generation, None)


# --------------------------------------------------------------------------- HTTP


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, config: ServerConfig, api_key: str | None) -> None:
        self.config = config
        self.api_key = api_key
        self.backend: Backend | None = None
        self.scheduler: Scheduler | None = None
        self.budget = PixelBudget(config.max_decode_pixels)
        self.request_queue_size = config.backlog  # read by server_activate's listen()
        super().__init__((config.host, config.port), _Handler)

    def server_close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
        super().server_close()


def bind_server(config: ServerConfig) -> _Server:
    """Check the startup options and bind, before any model is loaded.

    Raises:
        InputError: The key variable is named but unset, the host does not resolve, or the
            port is taken or not allowed (one line each).
    """
    api_key = None
    if config.api_key_env:
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            raise InputError(
                f"--require-key-env {config.api_key_env}: the variable is unset or empty; "
                "refusing to start without authentication"
            )
    try:
        server = _Server(config, api_key)
    except socket.gaierror:
        raise InputError(f"--host {config.host!r} is not an address of this machine") from None
    except OverflowError:
        raise InputError(f"--port must be in 0..65535, got {config.port}") from None
    except OSError as exc:
        raise InputError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from None
    if not _is_loopback(config.host) and api_key is None:
        print(
            f"WARNING: serving on {config.host} (reachable from other machines) WITHOUT an API "
            "key; pass --require-key-env NAME to require one",
            file=sys.stderr,
            flush=True,
        )
    return server


def attach(server: _Server, backend: Backend) -> _Server:
    """Give a bound server its backend and start the scheduler."""
    server.backend = backend
    server.scheduler = Scheduler(backend, server.config)
    return server


def make_server(backend: Backend, config: ServerConfig) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server; call ``serve_forever`` (``server_address`` has
    the bound port). The same as :func:`bind_server` then :func:`attach`."""
    return attach(bind_server(config), backend)


class _Handler(BaseHTTPRequestHandler):
    server_version = "rscovlm"
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.config.read_timeout  # a silent client cannot hold a thread
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.config.access_log:
            super().log_message(format, *args)

    # ---- responses

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:  # fmt: skip
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:  # say so: a client that reuses the socket gets no answer
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, err: ApiError) -> None:
        kind = "invalid_request_error" if err.status < 500 else "server_error"
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
        payload = {"error": {"message": err.message, "type": kind, "code": err.code}}
        with contextlib.suppress(OSError):  # the client may be gone
            self._send(err.status, payload, headers)

    def _authorised(self) -> bool:
        key = self.server.api_key
        if not key:
            return True
        sent = self.headers.get("Authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(sent, f"Bearer {key}".encode())

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.server.config.model_name, "object": "model", "created": 0,
                "owned_by": "rscovlm"}  # fmt: skip

    # ---- GET

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if not self._authorised():
            self._error(ApiError(401, "missing or wrong API key", "invalid_api_key"))
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [self._model_card()]})
        elif path.startswith("/v1/models/"):
            wanted = path.removeprefix("/v1/models/")
            if wanted == self.server.config.model_name:
                self._send(200, self._model_card())
            else:
                self._error(ApiError(404, f"unknown model {wanted!r}", "model_not_found"))
        elif path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._error(ApiError(404, f"no route {self.path}", "not_found"))

    # ---- POST

    def do_POST(self) -> None:
        try:
            self._post()
        except ApiError as err:
            self.close_connection = True
            self._error(err)
        except TimeoutError:
            self.close_connection = True
            self._error(ApiError(408, "the request body was not sent in time", "timeout"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # never leave a client without an answer
            self.close_connection = True
            self._error(ApiError(500, f"internal error: {type(exc).__name__}", "internal"))

    def _drain(self, length: int) -> None:
        # Read (and drop) a refused body so the client can read the error, up to a bound.
        left = min(max(length, 0), _DRAIN_LIMIT)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)

    def _read_body(self) -> Any:
        config = self.server.config
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise ApiError(411, "a Content-Length header is required", "length_required")
        try:
            length = int(length_text)
        except ValueError:
            raise ApiError(400, "Content-Length is not an integer") from None
        if length < 0 or length > config.max_body_bytes:
            self._drain(length)
            raise ApiError(413, f"request body of {length} bytes exceeds "
                                f"{config.max_body_bytes}", "body_too_large")  # fmt: skip
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise ApiError(400, f"the body ended after {len(raw)} of {length} bytes")
        return _loads(raw)

    def _post(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
            raise ApiError(404, f"no route {self.path}", "not_found")
        if not self._authorised():
            raise ApiError(401, "missing or wrong API key", "invalid_api_key")
        server = self.server
        assert server.backend is not None and server.scheduler is not None, "not attached"
        with server.scheduler.arriving():
            body = self._read_body()
            request = parse_chat_request(body, server.backend, server.config, server.budget)
            job = _Job(request, queue.Queue() if request.stream else None)
            server.scheduler.submit(job)
        if request.stream:
            self._stream(job)
        else:
            self._reply(job)

    def _client_gone(self) -> bool:
        """Whether the peer closed its end (readable with nothing to read)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _wait(self, job: _Job, ready: Callable[[], bool]) -> bool:
        """Wait until ``ready()``; cancel the job and say False when the client leaves."""
        while not ready():
            if self._client_gone():
                job.cancelled.set()
                self.close_connection = True
                return False
            job.done.wait(_POLL)
        return True

    def _usage(self, generation: Generation) -> dict[str, int]:
        prompt = generation.usage.prompt_tokens or 0  # the OpenAI schema has no "unknown"
        done = generation.usage.completion_tokens or 0
        return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}

    def _reply(self, job: _Job) -> None:
        if not self._wait(job, job.done.is_set):
            return
        if job.error is not None:
            raise job.error
        generation = job.generation
        assert generation is not None
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.server.config.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": generation.text},
                         "finish_reason": generation.finish_reason or "stop"}],
            "usage": self._usage(generation),
        })  # fmt: skip

    def _deltas(self, job: _Job) -> Iterator[str]:
        assert job.deltas is not None
        while True:
            try:
                item = job.deltas.get(timeout=_POLL)
            except queue.Empty:
                if self._client_gone():
                    job.cancelled.set()
                    raise BrokenPipeError("client went away") from None
                continue
            if item is None:
                return
            yield item

    def _stream(self, job: _Job) -> None:
        # Errors found before the first event (queue full, a failed first batch) are plain
        # JSON errors; once the stream started, an error is an ``error`` event.
        self.close_connection = True
        created = int(time.time())
        ident = f"chatcmpl-{uuid.uuid4().hex}"
        model = self.server.config.model_name

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {"id": ident, "object": "chat.completion.chunk", "created": created,
                       "model": model, "choices": choices, **extra}  # fmt: skip
            return f"data: {json.dumps(payload)}\n\n".encode()

        def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": content, "finish_reason": finish}])

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(delta({"role": "assistant", "content": ""}))
            self.wfile.flush()
            for text in self._deltas(job):
                self.wfile.write(delta({"content": text}))
                self.wfile.flush()
            job.done.wait()
            if job.error is not None:
                err = job.error
                payload = {"error": {"message": err.message, "type": "server_error",
                                     "code": err.code}}  # fmt: skip
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            else:
                generation = job.generation
                assert generation is not None
                self.wfile.write(delta({}, generation.finish_reason or "stop"))
                if job.request.include_usage:
                    self.wfile.write(chunk([], usage=self._usage(generation)))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            job.cancelled.set()


def serve(backend: Backend, config: ServerConfig, server: ThreadingHTTPServer | None = None
          ) -> None:  # fmt: skip
    """Serve until interrupted (on ``server`` from :func:`bind_server` when given)."""
    bound = server if isinstance(server, _Server) else bind_server(config)
    attach(bound, backend)
    try:
        bound.serve_forever()
    finally:
        bound.server_close()
