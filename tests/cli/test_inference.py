"""`rscovlm chat` and `rscovlm zoom` on the tiny model; `serve --help`; `rscovlm detect` batches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from rscovlm.cli import app, main


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


# --- `rscovlm detect`: --draw, folder and list inputs, progress lines off a terminal -------------

BOX = [120.0, 80.0, 280.0, 200.0]  # the ship every patch "sees", in original pixels


def _replay_ship(monkeypatch: Any) -> None:
    """The CLI's backend replaced by a replay backend that answers one ship at BOX."""
    from rscovlm.cli.options import ModelOptions
    from rscovlm.data.conversation import Conversation
    from rscovlm.geometry import hbb_to_quad
    from rscovlm.model.backends import ReplayBackend
    from rscovlm.resolution import CoordMap

    def answer(conv: Conversation) -> str:
        part = conv.image_parts()[0]
        x0, y0 = part.window[:2]  # type: ignore[index]
        local = hbb_to_quad(BOX) - [x0, y0]
        quad = CoordMap(part.orig_size, part.resized_size).to_model(local, "quad")[0]
        return ",".join(str(v) for v in quad.reshape(-1).tolist()) + " ship"

    monkeypatch.setattr(ModelOptions, "build", lambda self: ReplayBackend(answer))


class _Run:
    def __init__(self, code: int, output: str) -> None:
        self.exit_code, self.output = code, output


def _detect(args: list[str], capsys: pytest.CaptureFixture[str]) -> _Run:
    """``rscovlm detect`` in-process through ``main`` (its InputError → exit 2 handling)."""
    with pytest.raises(SystemExit) as done:
        main(["detect", "--model", "m", "--classes", "dota1.0", *args])
    out, err = capsys.readouterr()
    return _Run(int(done.value.code or 0), out + err)


def test_detect_draws_boxes_where_they_are(
    monkeypatch: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rscovlm.formats import DOTA_V1_0
    from rscovlm.pipelines.draw import class_colour

    _replay_ship(monkeypatch)
    image = tmp_path / "scene.png"
    Image.new("RGB", (400, 300), (80, 80, 80)).save(image)
    res = _detect(
        ["--image", str(image), "--out", str(tmp_path / "o"), "--draw", str(tmp_path)], capsys
    )
    assert res.exit_code == 2 and "would overwrite the input" in res.output  # never over it
    res = _detect(
        ["--image", str(image), "--out", str(tmp_path / "o"), "--draw", str(tmp_path / "d")],
        capsys,
    )
    assert res.exit_code == 0, res.output
    drawn = tmp_path / "d" / "scene.png"  # DIR/<image id>.png
    kept = json.loads((tmp_path / "o" / "predictions.jsonl").read_text())["quad"]
    px = np.asarray(Image.open(drawn).convert("RGB"))
    assert px.shape == (300, 400, 3)
    ship = class_colour(DOTA_V1_0.index("ship"))
    x1, y1, x2, y2 = (round(v) for v in (*kept[:2], *kept[4:6]))  # the box detect kept
    assert abs(x1 - BOX[0]) <= 1 and abs(y2 - BOX[3]) <= 1

    def near(y: int, x: int) -> set[tuple[int, ...]]:  # a line 2 px wide, within a pixel
        return {tuple(c) for c in px[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).tolist()}

    xm, ym = (x1 + x2) // 2, (y1 + y2) // 2
    assert all(ship in near(y, x) for y, x in ((y1, xm), (y2, xm), (ym, x1), (ym, x2)))
    assert near(ym, xm) == {(80, 80, 80)} and near(10, 10) == {(80, 80, 80)}  # inside: the image
    assert f"drawn to {drawn}" in res.output
    assert "generating: at most 16,384 new tokens per patch (--max-new-tokens)" in res.output
    # Off a terminal, progress comes as plain lines with a rate and the time taken.
    assert re.search(r"scene: patches 1/1 \(100%\), [0-9.]+/s, done in \d+s", res.output)


def test_detect_folder_skips_a_corrupt_image(
    monkeypatch: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _replay_ship(monkeypatch)
    folder = tmp_path / "scenes"
    folder.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (500, 400), (60, 90, 60)).save(folder / f"{name}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "notes.md").write_text("not an image\n")
    out, drawn = tmp_path / "out", tmp_path / "drawn"
    res = _detect(["--image", str(folder), "--out", str(out), "--draw", str(drawn)], capsys)
    assert res.exit_code == 0, res.output
    status = json.loads((out / "images.json").read_text())
    assert status["n_images"] == 3 == status["n_done"] + status["n_failed"]
    assert status["n_failed"] == 1 and list(status["failed"]) == [str(folder / "broken.png")]
    for name in ("a", "b"):
        rows = (out / name / "predictions.jsonl").read_text().splitlines()
        assert len(rows) == 1 and json.loads(rows[0])["class"] == "ship"
        assert (drawn / f"{name}.png").is_file()
    assert not (out / "broken").exists() and not (drawn / "broken.png").exists()
    assert f"skipped {folder / 'broken.png'}" in res.output
    assert "3 images: 2 done, 1 skipped" in res.output
    assert re.search(r"\[2/2\] b: patches 1/1 \(100%\)", res.output)

    # A .txt list: paths relative to the list; a missing file is reported and skipped too.
    listing = tmp_path / "list.txt"
    listing.write_text("# two scenes\nscenes/a.png\n\nscenes/missing.png\n")
    res = _detect(["--image", str(listing), "--out", str(tmp_path / "out2")], capsys)
    assert res.exit_code == 0, res.output
    status = json.loads((tmp_path / "out2" / "images.json").read_text())
    assert (status["n_images"], status["n_done"], status["n_failed"]) == (2, 1, 1)
    # Nothing readable at all: one line, exit 2, before any model is built.
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"junk")
    res = _detect(["--image", str(only_bad), "--out", str(tmp_path / "out3")], capsys)
    assert res.exit_code == 2 and "no readable image" in res.output
