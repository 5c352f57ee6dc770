"""``rscovlm serve`` driven by the official ``openai`` Python client (issue #15).

The server runs as people start it — the ``rscovlm serve`` command in its own process on
127.0.0.1 with the tiny checkpoint and a required API key — and the client is the real
``openai`` package (a dev dependency), so what is checked is what a deployment sees: the
client parses our JSON and our server-sent events, maps our status codes to its exception
classes and reads ``Retry-After``. The 429 test needs a request held in generation, so it
fronts a gated scripted backend in-process (real HTTP all the same).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rscovlm.data.conversation import Conversation
from rscovlm.model.backends import Generation, GenerationParams, ReplayBackend
from rscovlm.model.backends.openai import image_data_url
from rscovlm.model.encoding import image_part, question_conversation
from rscovlm.pipelines.serve import ServerConfig, make_server

openai = pytest.importorskip("openai", reason="the openai client is a dev dependency")

KEY_ENV = "RSCOVLM_TEST_SERVE_KEY"
KEY = "tiny-secret-key"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tiny_checkpoint: Any) -> Iterator[str]:
    """``rscovlm serve`` in a subprocess; yields its ``…/v1`` base URL (from its own
    ``serving … on`` line, since ``--port 0`` lets the OS pick the port)."""
    env = {**os.environ, KEY_ENV: KEY}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    ckpt = str(tiny_checkpoint("qwen2_5_vl"))
    args = ["serve", "--model", ckpt, "--served-name", "tiny", "--port", "0"]
    args += ["--require-key-env", KEY_ENV, "--dtype", "float32", "--device", "cpu"]
    run_cli = "import sys; from rscovlm.cli import main; main(sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-c", run_cli, *args],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    base = None
    for line in proc.stderr:  # the model loads, then the server says where it listens
        seen.append(line)
        found = re.search(r"serving tiny on (http://127\.0\.0\.1:\d+/v1)", line)
        if found:
            base = found.group(1)
            break
    try:
        assert base is not None, "".join(seen[-20:])
        # keep reading the access log so the server never blocks on a full pipe
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def client(served: str) -> Any:
    return openai.OpenAI(base_url=served, api_key=KEY, max_retries=0, timeout=600)


def _image_message(demo_image: Any, question: str) -> list[dict[str, Any]]:
    content = [
        {"type": "image_url", "image_url": {"url": image_data_url(demo_image)}},
        {"type": "text", "text": question},
    ]
    return [{"role": "user", "content": content}]


@pytest.mark.integration
@pytest.mark.parametrize(
    "decoding", [{"temperature": 0}, {"temperature": 1.0, "seed": 5}], ids=["greedy", "seeded"]
)
def test_plain_and_streamed_replies_are_the_same_and_match_hf(
    client: Any, tiny_checkpoint: Any, demo_image: Any, decoding: dict[str, Any]
) -> None:
    from rscovlm.model.backends.hf import HFBackend

    messages = _image_message(demo_image, "What is in the image?")
    plain = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=12, **decoding
    )
    choice = plain.choices[0]
    assert plain.object == "chat.completion" and choice.message.role == "assistant"
    stream = client.chat.completions.create(
        model="tiny",
        messages=messages,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        **decoding,
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(deltas) == choice.message.content
    assert [f for f in finishes if f] == [choice.finish_reason]  # once, in the last chunk
    assert len(usages) == 1 and usages[0] == plain.usage and not chunks[-1].choices
    # the same text and counts the HF backend gives in this process
    hf = HFBackend(tiny_checkpoint("qwen2_5_vl"), dtype="float32")
    conv = question_conversation("What is in the image?", image_part("mem", demo_image.size))
    params = GenerationParams(
        12, decoding["temperature"], seed=decoding.get("seed"), strip_think=True
    )
    local = hf.generate([conv], params, images=[[demo_image]])[0]
    assert choice.message.content == local.text and choice.finish_reason == local.finish_reason
    assert plain.usage.prompt_tokens == local.usage.prompt_tokens
    assert plain.usage.completion_tokens == local.usage.completion_tokens
    if decoding.get("seed") is not None:  # sampled: real tokens, several deltas
        assert local.text.strip() and len([d for d in deltas if d]) > 1


@pytest.mark.integration
def test_finish_reason_is_length_when_max_tokens_cuts_the_reply(client: Any) -> None:
    messages = [{"role": "user", "content": "Describe a harbour."}]
    cut = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=3, temperature=1.0, seed=2
    )
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3
    assert cut.usage.total_tokens == cut.usage.prompt_tokens + 3
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_completion_tokens=3, temperature=1.0, seed=2,
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == cut.choices[0].message.content


@pytest.mark.integration
def test_models_list_and_retrieve(client: Any) -> None:
    assert [m.id for m in client.models.list()] == ["tiny"]
    card = client.models.retrieve("tiny")
    assert card.id == "tiny" and card.object == "model"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-9")
    assert info.value.status_code == 404
    with pytest.raises(openai.NotFoundError, match=r"unknown model"):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])


@pytest.mark.integration
def test_a_missing_or_wrong_key_is_the_clients_authentication_error(served: str) -> None:
    messages = [{"role": "user", "content": "hi"}]
    for key in ("", "wrong-key", KEY[:-1]):
        bad = openai.OpenAI(base_url=served, api_key=key or "-", max_retries=0, timeout=60)
        if not key:  # no Authorization header at all
            bad = bad.with_options(default_headers={"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as info:
            bad.chat.completions.create(model="tiny", messages=messages, max_tokens=2)
        assert info.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


@pytest.mark.integration
def test_bad_requests_are_the_clients_bad_request_error(client: Any) -> None:
    remote = [{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": remote}])
    assert info.value.status_code == 400
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny", messages=[], max_tokens=2)


class GatedBackend(ReplayBackend):
    """A scripted backend whose calls wait for a gate, so requests pile up behind one."""

    def __init__(self) -> None:
        super().__init__(lambda conv: f"re: {conv.messages[-1].text}", record_images=False)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        images: Any = None,
    ) -> list[Generation]:
        self.entered.set()
        self.gate.wait(60)
        return super().generate(conversations, params, images)


def test_a_full_queue_is_the_clients_rate_limit_error_with_retry_after() -> None:
    backend = GatedBackend()
    httpd = make_server(backend, ServerConfig("tiny", port=0, max_queue=1, access_log=False))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    client = openai.OpenAI(base_url=base, api_key="-", max_retries=0, timeout=60)
    replies: list[Any] = []

    def ask(text: str) -> threading.Thread:
        def run() -> None:
            messages = [{"role": "user", "content": text}]
            replies.append(client.chat.completions.create(model="tiny", messages=messages))

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    try:
        running = ask("first")
        assert backend.entered.wait(30)  # generating, held at the gate
        queued = ask("second")
        for _ in range(600):  # the second request waits in the queue, which is now full
            if len(httpd.scheduler._queue) == 1:
                break
            threading.Event().wait(0.05)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "third"}]
            )
        assert info.value.status_code == 429
        assert info.value.response.headers["retry-after"] == "1"
        assert isinstance(info.value.body, dict) and info.value.body.get("code") == "queue_full"
        backend.gate.set()
        running.join(60)
        queued.join(60)
        texts = sorted(r.choices[0].message.content for r in replies)
        assert texts == ["re: first", "re: second"]  # the rejected one never ran
    finally:
        backend.gate.set()
        httpd.shutdown()
        httpd.server_close()
