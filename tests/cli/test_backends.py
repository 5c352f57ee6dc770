"""``chat``, ``zoom``, ``detect`` and ``serve`` take one model option group and any backend.

``openai`` is exercised against the real ``rscovlm serve`` server (over a scripted backend, on
127.0.0.1); ``serve`` itself runs as a proxy in a subprocess in front of it. ``vllm`` is not
installed here: it must end in one line naming the extra. ``hf`` runs the tiny checkpoint in
``test_inference.py`` and ``tests/pipelines/test_detect.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from rscovlm.cli import main
from rscovlm.data.conversation import Conversation
from rscovlm.extras import is_available
from rscovlm.formats import detection_system_prompt
from rscovlm.model.backends import ReplayBackend
from rscovlm.pipelines.serve import ServerConfig, make_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ANSWER = "scripted answer"


def _reply(conv: Conversation) -> str:
    return f"{ANSWER}: {conv.messages[-1].text[-40:]}"


@pytest.fixture
def upstream() -> Iterator[tuple[str, ReplayBackend]]:
    """``rscovlm serve``'s server over a scripted backend: the OpenAI endpoint under test."""
    backend = ReplayBackend(_reply, record_images=False)
    httpd = make_server(backend, ServerConfig("up", port=0))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield f"http://{host}:{port}/v1", backend
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "scene.png"
    Image.new("RGB", (640, 480), (90, 120, 60)).save(path)
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_chat_and_zoom_over_openai(
    upstream: tuple[str, ReplayBackend], scene: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, backend = upstream
    openai = ["--backend", "openai", "--base-url", url, "--model", "up", "--image", str(scene)]
    code, out, err = _run(["chat", *openai, "What is in the image?"], capsys)
    assert code == 0, err
    assert out.strip() == f"{ANSWER}: What is in the image?"
    code, out, err = _run(["zoom", *openai, "--family", "qwen2_5_vl", "What colour?"], capsys)
    assert code == 0, err
    assert out.strip().startswith(ANSWER)  # the zoom prompt wraps the question
    assert len(backend.calls) == 2  # both went through the server
    assert "What colour?" in backend.calls[1][0][0].messages[-1].text


def test_detect_over_openai(
    upstream: tuple[str, ReplayBackend],
    scene: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, backend = upstream
    args = ["detect", "--backend", "openai", "--base-url", url, "--model", "up"]
    args += ["--image", str(scene), "--out", str(tmp_path / "det"), "--format", "jsonl"]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    assert "boxes written to" in out and (tmp_path / "det" / "predictions.jsonl").is_file()
    (conversations, _), *_ = backend.calls
    assert conversations[0].messages[0].text == detection_system_prompt("quad")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_serve_proxies_an_openai_backend(upstream: tuple[str, ReplayBackend]) -> None:
    url, backend = upstream
    port = _free_port()
    argv = ["serve", "--backend", "openai", "--base-url", url, "--model", "up"]
    argv += ["--name", "proxy", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rscovlm", *argv], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        models = f"http://127.0.0.1:{port}/v1/models"
        for _ in range(600):  # wait until it listens (or has exited)
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                with urllib.request.urlopen(models, timeout=5) as response:
                    listed = json.loads(response.read())
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail("serve never listened")
        assert [m["id"] for m in listed["data"]] == ["proxy"]
        reply = _post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            {"model": "proxy", "messages": [{"role": "user", "content": "Hello there"}]},
        )
        assert reply["choices"][0]["message"]["content"] == f"{ANSWER}: Hello there"  # type: ignore[index]
        assert len(backend.calls) == 1  # the proxy forwarded it upstream
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.skipif(is_available("vllm"), reason="vllm is installed")
@pytest.mark.parametrize("command", ["chat", "zoom", "detect", "serve"])
def test_vllm_without_vllm_is_one_line_naming_the_extra(
    command: str, scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, "--backend", "vllm", "--model", str(tmp_path)]
    args += {
        "chat": ["q"],
        "zoom": ["--image", str(scene), "q"],
        "detect": ["--image", str(scene), "--out", str(tmp_path / "d")],
        "serve": [],
    }[command]
    code, _, err = _run(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("rscovlm: error: ") and "rscovlm[vllm]" in lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "openai", "--base-url", "http://x/v1", "--adapter", "a"], "--adapter"),
        (["--backend", "openai", "--base-url", "http://x/v1", "--device", "cuda"], "--device"),
        (["--backend", "openai"], "--backend openai needs --base-url"),
        (["--backend", "vllm", "--device", "cuda"], "--device cannot be used with --backend vllm"),
        (["--base-url", "http://x/v1"], "--base-url cannot be used with --backend hf"),
        (["--family", "qwen3_vl"], "--family cannot be used with --backend hf"),
    ],
)
@pytest.mark.parametrize("command", ["chat", "serve"])
def test_an_option_the_backend_cannot_take_is_one_line(
    command: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, "--model", "m", *extra, *(["q"] if command == "chat" else [])]
    code, _, err = _run(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_a_bad_choice_is_typers_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["chat", "--model", "m", "--backend", "tgi", "q"], capsys)
    assert code == 2 and "Invalid value for '--backend'" in err and "Traceback" not in err
