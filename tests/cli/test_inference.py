"""`rscovlm chat` and `rscovlm zoom` on the tiny model; `serve --help`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from typer.testing import CliRunner

from rscovlm.cli import app


def test_chat_and_zoom_commands(tiny_checkpoint: Any, tmp_path: Path) -> None:
    model = str(tiny_checkpoint("qwen2_5_vl"))
    image = tmp_path / "scene.png"
    Image.new("RGB", (900, 700), (90, 120, 60)).save(image)
    runner = CliRunner()
    args = ["--model", model, "--image", str(image), "--max-new-tokens", "3"]
    res = runner.invoke(app, ["chat", *args, "What is here?"])
    assert res.exit_code == 0, res.output
    trace = tmp_path / "trace.png"
    res = runner.invoke(app, ["zoom", *args, "--trace", str(trace), "What colour?"])
    assert res.exit_code == 0, res.output
    assert "hop 1" in res.output and trace.is_file()
    assert Image.open(trace).size == (896, 700)
    help_text = runner.invoke(app, ["serve", "--help"]).output
    assert "127.0.0.1" in help_text and "--api-key-env" in help_text
