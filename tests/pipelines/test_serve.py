"""The hf backend, the OpenAI-compatible server and the openai client agree (greedy), and the
server answers malformed requests with 4xx JSON errors and keeps serving."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from rscovlm.errors import MissingExtraError
from rscovlm.model.backends import Backend, GenerationParams, make_backend
from rscovlm.model.backends.hf import HFBackend
from rscovlm.model.backends.openai import BackendRequestError, OpenAIBackend, image_data_url
from rscovlm.model.encoding import image_part, question_conversation
from rscovlm.pipelines.serve import ServerConfig, make_server

PARAMS = GenerationParams(max_new_tokens=6)


@pytest.fixture(scope="module")
def hf(tiny_lm: Any) -> HFBackend:
    return HFBackend(tiny_lm, batch_size=4)


@pytest.fixture(scope="module")
def server(hf: HFBackend) -> Iterator[str]:
    config = ServerConfig(
        "tiny", port=0, max_body_bytes=2_000_000, max_images=2, max_image_pixels=600 * 600
    )
    httpd = make_server(hf, config)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield f"http://{host}:{port}"
    httpd.shutdown()
    httpd.server_close()


def _convs(demo_image: Any) -> tuple[list[Any], list[Any]]:
    part = image_part("mem", demo_image.size)  # inside the band: the server keeps its size
    convs = [
        question_conversation("What is in the image?", part),
        question_conversation("Name a colour."),
    ]
    return convs, [[demo_image], []]


def test_hf_and_served_openai_give_identical_greedy_outputs(
    hf: HFBackend, server: str, demo_image: Any
) -> None:
    convs, images = _convs(demo_image)
    assert isinstance(hf, Backend)
    local = hf.generate(convs, PARAMS, images=images)
    assert [g.usage.image_tokens for g in local] == [64, 0]
    # batched equals one by one (left padding is right), text and usage alike
    pairs = zip(convs, images, strict=True)
    assert local == [hf.generate([c], PARAMS, images=[i])[0] for c, i in pairs]
    assert all(isinstance(g.text, str) for g in local)
    client = OpenAIBackend(f"{server}/v1", "tiny", api_key_env=None, concurrency=2)
    # through the server: the same texts, token counts and finish reasons
    assert client.generate(convs, PARAMS, images=images) == local
    # The tiny model's greedy reply is whitespace; seeded sampling gives real tokens, and the
    # same seed through the server must give the same text (same ids, pixels and positions).
    sampled = GenerationParams(max_new_tokens=6, temperature=1.0, seed=3)
    one = hf.generate(convs[:1], sampled, images=images[:1])
    assert one[0].text.strip() and one == client.generate(convs[:1], sampled, images=images[:1])


def _post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_malformed_requests_get_4xx_and_server_keeps_serving(server: str, demo_image: Any) -> None:
    url = f"{server}/v1/chat/completions"
    ok = {"model": "tiny", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    url_img = image_data_url(demo_image)
    image_msg = {"type": "image_url", "image_url": {"url": url_img}}
    bad_image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    cases = [
        (b"{not json", 400, "bad_json"),
        (b"x" * 3_000_000, 413, "body_too_large"),
        (json.dumps({**ok, "model": "gpt-9"}).encode(), 404, "model_not_found"),
        (
            json.dumps({**ok, "messages": [{"role": "user", "content": [image_msg] * 3}]}).encode(),
            400,
            "invalid_request",
        ),
        (
            json.dumps(
                {
                    **ok,
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "type": "image_url",
                                    "image_url": {"url": "http://example.com/a.png"},
                                }
                            ],
                        }
                    ],
                }
            ).encode(),
            400,
            "invalid_request",
        ),
        (json.dumps({**ok, "messages": []}).encode(), 400, "invalid_request"),
        (b'{"model": "tiny", "temperature": NaN, "messages": []}', 400, "bad_json"),
        (json.dumps({**ok, "temperature": 1e999}).encode(), 400, "bad_json"),  # Infinity
        (b"[" * 200_000 + b"]" * 200_000, 400, "bad_json"),  # nested past the recursion limit
        (json.dumps({**ok, "stream": "yes"}).encode(), 400, "invalid_request"),
        (
            json.dumps({**ok, "messages": [{"role": "user", "content": [bad_image]}]}).encode(),
            400,
            "invalid_request",
        ),
    ]
    for body, status, code in cases:
        got, payload = _post(url, body)
        assert got == status, payload
        assert payload["error"]["code"] == code and payload["error"]["message"]
        assert " object at 0x" not in payload["error"]["message"]  # no Python reprs leak
        assert _post(url, json.dumps(ok).encode())[0] == 200  # still serving
    with urllib.request.urlopen(f"{server}/v1/models", timeout=10) as resp:
        assert json.loads(resp.read())["data"][0]["id"] == "tiny"
    with_image = {
        **ok,
        "messages": [{"role": "user", "content": [image_msg, {"type": "text", "text": "what?"}]}],
    }
    status, payload = _post(url, json.dumps(with_image).encode())
    assert status == 200 and payload["usage"]["prompt_tokens"] > 48


def test_served_usage_is_the_tokens_the_model_saw_and_wrote(
    hf: HFBackend, server: str, demo_image: Any
) -> None:
    """``usage`` in the reply counts the encoded prompt (image pads expanded) and the generated
    tokens up to and including the stop token — what the returned Generation says."""
    from rscovlm.formats import strip_think
    from rscovlm.formats.tokens import PAD_ID, STOP_IDS
    from rscovlm.model.encoding import encode

    torch = pytest.importorskip("torch")
    part = image_part("mem", demo_image.size)
    conv = question_conversation("What is in the image?", part)
    sampled = GenerationParams(max_new_tokens=5, temperature=1.0, seed=11)
    body = {
        "model": "tiny",
        "max_tokens": 5,
        "temperature": 1.0,
        "seed": 11,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image_data_url(demo_image)}},
                    {"type": "text", "text": "What is in the image?"},
                ],
            }
        ],
    }
    status, payload = _post(f"{server}/v1/chat/completions", json.dumps(body).encode())
    assert status == 200, payload
    batch = encode(
        [conv], hf.lm.tokenizer, hf.lm.image_processor, images=[[demo_image]],
        add_generation_prompt=True,
    )  # fmt: skip
    n_prompt = int(batch.inputs["input_ids"].shape[1])
    assert payload["usage"]["prompt_tokens"] == n_prompt  # 64 image pads among them
    assert n_prompt > batch.image_tokens[0] == 64
    local = hf.generate([conv], sampled, images=[[demo_image]])[0]
    assert local.usage.prompt_tokens == n_prompt
    # the completion, counted on the model's own output: tokens up to the first stop token
    torch.manual_seed(11)
    inputs = dict(batch.inputs)
    if not hf.lm.wants_mm_token_type_ids:
        inputs.pop("mm_token_type_ids")
    with torch.no_grad():
        out = hf.lm.model.generate(
            **inputs, max_new_tokens=5, do_sample=True, temperature=1.0, top_p=1.0,
            top_k=0, repetition_penalty=1.0,  # the tiny checkpoint's policy, made explicit
            pad_token_id=PAD_ID, eos_token_id=list(STOP_IDS),
        )[0, n_prompt:].tolist()  # fmt: skip
    stops = [k for k, tok in enumerate(out) if tok in STOP_IDS]
    n_done = stops[0] + 1 if stops else len(out)
    assert local.usage.completion_tokens == n_done
    assert local.finish_reason == ("stop" if stops else "length")
    text = hf.lm.tokenizer.decode(
        out[:n_done], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    assert local.text == strip_think(text)
    assert payload["usage"]["completion_tokens"] == local.usage.completion_tokens
    assert payload["usage"]["total_tokens"] == n_prompt + local.usage.completion_tokens
    assert payload["choices"][0]["finish_reason"] == local.finish_reason
    assert payload["choices"][0]["message"]["content"] == local.text


def test_api_key_and_client_errors(hf: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSCOVLM_TEST_KEY", "sekret")
    httpd = make_server(hf, ServerConfig("tiny", port=0, api_key_env="RSCOVLM_TEST_KEY"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        conv = question_conversation("hi")
        with pytest.raises(BackendRequestError, match="401"):
            OpenAIBackend(base, "tiny", api_key_env=None).generate([conv], PARAMS)
        keyed = OpenAIBackend(base, "tiny", api_key_env="RSCOVLM_TEST_KEY")
        assert keyed.generate([conv], PARAMS) == hf.generate([conv], PARAMS)
        # A refused POST closes its connection and SAYS so: a keep-alive client (the openai
        # client's pool) must not send its next request into a socket the server has closed.
        link = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=30)
        link.request("POST", "/v1/chat/completions", body=b"{}", headers={"Authorization": "x"})
        refused = link.getresponse()
        refused.read()
        assert refused.status == 401 and refused.getheader("Connection") == "close"
        link.request("GET", "/v1/models", headers={"Authorization": "Bearer sekret"})
        assert link.getresponse().status == 200  # http.client reconnected, as it was told
        link.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    dead = OpenAIBackend(base, "tiny", api_key_env=None, retries=1, backoff=0.01, timeout=2)
    with pytest.raises(BackendRequestError, match="2 attempts"):
        dead.generate([question_conversation("hi")], PARAMS)


def test_vllm_is_import_guarded(tiny_checkpoint: Any) -> None:
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtraError, match="vllm"):
            make_backend("vllm", str(tiny_checkpoint("qwen2_5_vl")))
    else:  # pragma: no cover - GPU machines
        pytest.skip("vllm is installed")
