"""The server as people deploy it (issue #15): streaming, honest finish reasons, startup checks
before the model loads, dynamic batching, admission control, cancellation, read timeouts and
bounded image memory. Raw HTTP via ``http.client`` (the ``openai`` package is not installed
here); every server binds 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from PIL import Image

from rscovlm.data.conversation import Conversation
from rscovlm.errors import InputError
from rscovlm.model.backends import Generation, GenerationParams, ReplayBackend
from rscovlm.model.backends.openai import image_data_url
from rscovlm.pipelines.serve import (
    ServerConfig,
    bind_server,
    make_server,
    parse_chat_request,
    served_model_name,
)


def _start(backend: Any, config: ServerConfig) -> tuple[Any, int]:
    httpd = make_server(backend, config)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, int(httpd.server_address[1])


@pytest.fixture(scope="module")
def hf(tiny_checkpoint: Any) -> Any:
    from rscovlm.model.backends.hf import HFBackend

    return HFBackend(tiny_checkpoint("qwen2_5_vl"), dtype="float32", batch_size=8)


@pytest.fixture(scope="module")
def tiny_server(hf: Any) -> Iterator[int]:
    httpd, port = _start(hf, ServerConfig("tiny", port=0, access_log=False))
    yield port
    httpd.shutdown()
    httpd.server_close()


def _request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, data, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    if headers.get("content-type") == "text/event-stream":
        events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
        return resp.status, events, headers
    return resp.status, json.loads(raw), headers


def _chat(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], **extra}


def _collect(events: list[str]) -> tuple[list[str], str | None, dict | None]:
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    usage = [c["usage"] for c in chunks if c.get("usage")]
    return deltas, finishes[-1], usage[0] if usage else None


@pytest.mark.parametrize(
    "decoding", [{}, {"temperature": 1.0, "seed": 5}], ids=["greedy", "seeded"]
)
def test_streaming_adds_up_to_the_plain_reply(
    tiny_server: int, demo_image: Any, decoding: dict[str, Any]
) -> None:
    content = [
        {"type": "image_url", "image_url": {"url": image_data_url(demo_image)}},
        {"type": "text", "text": "What is in the image?"},
    ]
    body = _chat(content, max_tokens=12, **decoding)
    status, plain, _ = _request(tiny_server, "POST", "/v1/chat/completions", body)
    assert status == 200, plain
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    status, events, headers = _request(tiny_server, "POST", "/v1/chat/completions", streamed)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    deltas, finish, usage = _collect(events)
    assert "".join(deltas) == plain["choices"][0]["message"]["content"]
    assert finish == plain["choices"][0]["finish_reason"]
    assert usage == plain["usage"]  # exact counts, in the include_usage chunk
    if decoding:  # the sampled reply has real tokens: it arrives in several deltas
        assert plain["choices"][0]["message"]["content"]
        assert len([d for d in deltas if d]) > 1


def test_finish_reason_length_when_cut_and_max_tokens_default_and_cap(
    tiny_server: int, hf: Any
) -> None:
    status, payload, _ = _request(
        tiny_server, "POST", "/v1/chat/completions", _chat("hi", max_tokens=3)
    )
    assert status == 200 and payload["choices"][0]["finish_reason"] == "length"
    assert payload["usage"]["completion_tokens"] == 3
    config = ServerConfig("tiny", default_max_tokens=17)
    assert parse_chat_request(_chat("hi"), hf, config).params.max_new_tokens == 17
    capped = parse_chat_request(_chat("hi", max_tokens=10**9), hf, config).params
    assert capped.max_new_tokens == hf.max_new_tokens_limit < 10**9


def test_models_retrieve(tiny_server: int) -> None:
    status, card, _ = _request(tiny_server, "GET", "/v1/models/tiny")
    assert status == 200 and card["id"] == "tiny" and card["object"] == "model"
    status, err, _ = _request(tiny_server, "GET", "/v1/models/other")
    assert status == 404 and err["error"]["code"] == "model_not_found"


def test_hf_should_stop_ends_a_reply_early(hf: Any) -> None:
    from rscovlm.model.encoding import question_conversation

    params = GenerationParams(max_new_tokens=20)
    convs = [question_conversation("a"), question_conversation("b")]
    out = hf.generate(convs, params, should_stop=lambda k: k == 0)
    assert out[0].usage.completion_tokens <= 2 and out[1].usage.completion_tokens == 20


class GatedBackend(ReplayBackend):
    """A scripted backend whose calls wait for a gate: requests pile up behind it."""

    def __init__(self) -> None:
        super().__init__(lambda conv: f"re: {conv.messages[-1].text}", record_images=False)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.params: list[GenerationParams | None] = []

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: Any = None,
    ) -> list[Generation]:
        self.entered.set()
        self.gate.wait(60)
        self.params.append(params)
        return super().generate(conversations, params, images)


def _async_post(port: int, body: dict[str, Any], out: list[Any]) -> threading.Thread:
    def run() -> None:
        out.append(_request(port, "POST", "/v1/chat/completions", body))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_queued(httpd: Any, count: int) -> None:
    for _ in range(600):
        if len(httpd.scheduler._queue) >= count:
            return
        threading.Event().wait(0.05)
    pytest.fail(f"{count} requests never queued")


def test_concurrent_greedy_requests_share_one_generate_and_seeded_ones_run_alone() -> None:
    backend = GatedBackend()
    httpd, port = _start(backend, ServerConfig("tiny", port=0, max_batch=8, access_log=False))
    try:
        out: list[Any] = []
        threads = [_async_post(port, _chat("first", max_tokens=4), out)]
        assert backend.entered.wait(30)  # the first call is running; the rest queue up
        threads += [_async_post(port, _chat(f"q{k}", max_tokens=4), out) for k in range(6)]
        seeded = _chat("s", max_tokens=4, temperature=1.0, seed=1)
        threads += [_async_post(port, seeded, out) for _ in range(2)]
        _wait_queued(httpd, 8)
        backend.gate.set()
        for thread in threads:
            thread.join(60)
        assert [status for status, _, _ in out] == [200] * 9
        texts = sorted(p["choices"][0]["message"]["content"] for _, p, _ in out)
        assert texts == sorted(["re: first", *(f"re: q{k}" for k in range(6)), "re: s", "re: s"])
        calls = httpd.scheduler.calls
        assert calls[0] == 1 and 6 in calls and calls.count(1) == 3  # greedy six batched
        assert sum(calls) == 9
    finally:
        backend.gate.set()
        httpd.shutdown()
        httpd.server_close()


def test_full_queue_is_429_with_retry_after_and_a_gone_client_is_dropped() -> None:
    backend = GatedBackend()
    config = ServerConfig("tiny", port=0, max_queue=1, access_log=False)
    httpd, port = _start(backend, config)
    try:
        out: list[Any] = []
        first = _async_post(port, _chat("first", max_tokens=4), out)
        assert backend.entered.wait(30)
        # a client that queues and then hangs up
        gone = socket.create_connection(("127.0.0.1", port))
        data = json.dumps(_chat("gone", max_tokens=4)).encode()
        gone.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            + f"\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
        )  # fmt: skip
        _wait_queued(httpd, 1)
        status, err, headers = _request(port, "POST", "/v1/chat/completions", _chat("x"))
        assert status == 429 and err["error"]["code"] == "queue_full"
        assert headers["retry-after"] == "1"
        gone.close()
        job = httpd.scheduler._queue[0]
        assert job.cancelled.wait(30)  # noticed while still queued
        backend.gate.set()
        first.join(60)
        assert out[0][0] == 200
        assert job.done.wait(30) and job.generation is None
        assert httpd.scheduler.calls == [1]  # the gone client's request never ran
    finally:
        backend.gate.set()
        httpd.shutdown()
        httpd.server_close()


def test_a_silent_socket_is_closed_after_the_read_timeout_and_backlog_is_real() -> None:
    config = ServerConfig("tiny", port=0, read_timeout=0.5, backlog=300, access_log=False)
    httpd, port = _start(ReplayBackend(["x"]), config)
    try:
        assert httpd.request_queue_size == 300
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")  # and then nothing
            assert sock.recv(1024) == b""  # the server hung up (a timeout here would raise)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_startup_checks_fail_in_one_line_before_anything_loads(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RSCOVLM_UNSET_KEY", raising=False)
    with pytest.raises(InputError, match=r"RSCOVLM_UNSET_KEY.*unset"):
        bind_server(ServerConfig("m", port=0, api_key_env="RSCOVLM_UNSET_KEY"))
    with pytest.raises(InputError, match="--port"):
        ServerConfig("m", port=-1)
    with pytest.raises(InputError, match="--host"):
        bind_server(ServerConfig("m", host="no-such-host.invalid", port=0))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_server(ServerConfig("m", port=port))
    capfd.readouterr()
    bind_server(ServerConfig("m", host="0.0.0.0", port=0)).server_close()
    assert "WITHOUT an API key" in capfd.readouterr().err


def test_cli_serve_checks_the_port_before_loading_the_model(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rscovlm.cli import main

    missing = str(tmp_path / "no-model")  # loading it would fail with another message
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for args, message in [
            (["--port", port], f"cannot listen on 127.0.0.1:{port}"),
            (["--port", "-1"], "--port"),
            (["--port", "0", "--require-key-env", "RSCOVLM_UNSET_KEY"], "RSCOVLM_UNSET_KEY"),
        ]:
            monkeypatch.delenv("RSCOVLM_UNSET_KEY", raising=False)
            with pytest.raises(SystemExit) as exit_info:
                main(["serve", "--model", missing, *args])
            err = capsys.readouterr().err.strip().splitlines()
            assert exit_info.value.code == 2 and len(err) == 1 and message in err[0], err


def test_served_name_of_a_training_run() -> None:
    assert served_model_name("/runs/dota-ft/final") == "dota-ft"
    assert served_model_name("/runs/dota-ft/checkpoint-200") == "dota-ft-200"
    assert served_model_name("/models/RSCoVLM-7B") == "RSCoVLM-7B"


def _png_url(side: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 160)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_request_pixel_budget_is_413_with_the_numbers() -> None:
    config = ServerConfig("tiny", port=0, max_request_pixels=2 * 600 * 600, access_log=False)
    httpd, port = _start(ReplayBackend(["x"] * 4), config)
    try:
        image = {"type": "image_url", "image_url": {"url": _png_url(600)}}
        status, err, _ = _request(port, "POST", "/v1/chat/completions", _chat([image] * 3))
        assert status == 413 and err["error"]["code"] == "image_too_large"
        assert "1080000" in err["error"]["message"] and "720000" in err["error"]["message"]
        assert _request(port, "POST", "/v1/chat/completions", _chat([image] * 2))[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()


RSS_BOUND = 1_500_000_000
"""8 concurrent requests of 8 × 8192² PNGs may raise the resident set by at most 1.5 GB (the
old server: +3.1 GB for one such request, 6.5 GB for two)."""


def test_eight_concurrent_requests_of_eight_8192_images_stay_bounded() -> None:
    backend = ReplayBackend(lambda conv: "ok", record_images=False)
    config = ServerConfig("tiny", port=0, decode_wait=600, access_log=False)
    httpd, port = _start(backend, config)
    body = _chat([{"type": "image_url", "image_url": {"url": _png_url(8192)}}] * 8)
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            stop.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out: list[Any] = []
        threads = [_async_post(port, body, out) for _ in range(8)]
        for thread in threads:
            thread.join(600)
    finally:
        stop.set()
        sampler.join()
        httpd.shutdown()
        httpd.server_close()
    assert [status for status, _, _ in out] == [200] * 8, out[:1]
    assert all(p["usage"]["prompt_tokens"] == 0 for _, p, _ in out)  # replay counts none
    assert peak[0] - base < RSS_BOUND, f"+{(peak[0] - base) / 1e9:.2f} GB"


def test_a_batch_waits_for_requests_still_being_read_but_not_for_nobody(hf: Any) -> None:
    """``batch_wait`` 0 and a long ``arrival_wait``: a request that is still being read joins
    the batch of one already queued; with nothing arriving, the batch goes at once."""
    from rscovlm.pipelines.serve import Scheduler, _Job

    backend = ReplayBackend(lambda conv: "ok", record_images=False)
    config = ServerConfig("tiny", batch_wait=0.0, arrival_wait=30.0)
    scheduler = Scheduler(backend, config)
    request = parse_chat_request(_chat("a", max_tokens=2), hf, config)
    try:
        alone = _Job(request)
        scheduler.submit(alone)
        assert alone.done.wait(10)  # nothing arriving: no wait for a second request
        first, second = _Job(request), _Job(request)
        with scheduler.arriving():  # the second request is being read when the first queues
            scheduler.submit(first)
            threading.Event().wait(0.2)  # the scheduler is holding the batch open
            assert not first.done.is_set()
            scheduler.submit(second)
        assert first.done.wait(10) and second.done.wait(10)
        assert scheduler.calls == [1, 2]
    finally:
        scheduler.close()
