"""The tiny Qwen2.5-VL through ``eval run --backend hf`` and through ``rscovlm serve`` (a real
HTTP server in a subprocess) + ``eval run --backend openai`` writes the SAME predictions, output
by output (greedy): the runner resizes each image once and sends those pixels, the server must
not resize them again, and both sides must apply the same chat template and decoding defaults."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rscovlm.cli import main

pytestmark = pytest.mark.integration

_SERVING = re.compile(r"serving (\S+) on (http://127\.0\.0\.1:\d+/v1)")


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


_GAIN = 8.0
"""The tiny model's weights (all but the embedding) scaled by this: at its init scale the random
model answers every prompt with the same tokens, so identical outputs would prove nothing; scaled
up, its greedy answer changes with the question and the pixels."""


@pytest.fixture(scope="module")
def sensitive_tiny(tiny_qwen25_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2.5-VL checkpoint (real vocabulary, chat template, processor) with its
    weight matrices scaled by :data:`_GAIN`, saved as a checkpoint folder of its own."""
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("sensitive") / "tiny-sensitive"
    shutil.copytree(tiny_qwen25_dir, out)
    weights = out / "model.safetensors"
    tensors = load_file(weights)
    scaled = {
        k: v * _GAIN if v.ndim >= 2 and "embed_tokens" not in k and "lm_head" not in k else v
        for k, v in tensors.items()
    }
    save_file(scaled, weights, metadata={"format": "pt"})
    return out


@pytest.fixture
def dior_grounding(real_data: Path, tmp_path: Path) -> Path:
    """A refGeo-layout root (``metainfo/dior_rsvg_val.jsonl`` + ``images/dior_rsvg/``) over the
    real 800² DIOR image and its real annotated object: at ``_224`` the runner resizes it."""
    dior = real_data / "dior"
    root = tmp_path / "geoground"
    (root / "metainfo").mkdir(parents=True)
    (root / "images" / "dior_rsvg").mkdir(parents=True)
    (root / "images" / "dior_rsvg" / "00001.jpg").symlink_to(dior / "JPEGImages" / "00001.jpg")
    xml = ET.parse(dior / "Annotations" / "Oriented Bounding Boxes" / "00001.xml").getroot()
    rows = []
    for k, obj in enumerate(xml.iter("object")):
        name = obj.findtext("name")
        box = [int(float(obj.findtext(f".//{t}") or 0)) for t in
               ("x_left_top", "y_left_top", "x_right_bottom", "y_right_bottom")]  # fmt: skip
        for j, question in enumerate((f"the {name}", f"the {name} in the middle", f"a {name}")):
            rows.append({"id": f"{k}-{j}", "image_id": "00001.jpg", "question": question,
                         "bbox": box})  # fmt: skip
    assert rows and all(row["bbox"][2] > row["bbox"][0] for row in rows)
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    (root / "metainfo" / "dior_rsvg_val.jsonl").write_text(lines)
    return root


@pytest.fixture(scope="module")
def served(
    sensitive_tiny: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    """``rscovlm serve`` on a free loopback port (one server for the module); yields (model
    name, base URL, its log)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rscovlm", "serve", "--model", str(sensitive_tiny),
             "--port", "0", "--served-name", "tiny-parity"],
            stdout=sink, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            match = _SERVING.search(log.read_text())
            if match:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield match.group(1), match.group(2), log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _predictions(run: Path, bench: str) -> dict[str, dict[str, Any]]:
    lines = (run / "scores" / bench / "predictions.jsonl").read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


@pytest.mark.parametrize("bench", ["rsvqa_lr", "geoground_dior_rsvg_val_224"])
def test_hf_and_served_openai_write_identical_predictions(
    bench: str,
    sensitive_tiny: Path,
    real_data: Path,
    dior_grounding: Path,
    served: tuple[str, str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, base_url, log = served
    root = real_data / "rsvqa" / "LR" if bench == "rsvqa_lr" else dior_grounding
    common = ["--root", f"{bench}={root}", "--limit", "6", "--max-new-tokens", "12",
              "--batch-size", "3", "--no-progress"]  # fmt: skip
    runs = {"hf": tmp_path / "hf", "openai": tmp_path / "openai"}
    code, _, err = _cli(["eval", "run", bench, "--model", str(sensitive_tiny),
                         "--out", str(runs["hf"]), *common], capsys)  # fmt: skip
    assert code == 0, err
    served_args = ["--backend", "openai", "--base-url", base_url, "--model", name]
    code, _, err = _cli(["eval", "run", bench, *served_args, "--out", str(runs["openai"]),
                         *common], capsys)  # fmt: skip
    assert code == 0, err
    preds = {}
    for backend, run in runs.items():
        code, _, err = _cli(["eval", "score", str(run)], capsys)
        assert code == 0, err
        preds[backend] = _predictions(run, bench)
    assert len(preds["hf"]) >= 3 and preds["hf"].keys() == preds["openai"].keys()
    for sid, row in preds["hf"].items():
        other = preds["openai"][sid]
        assert row["error"] is None and other["error"] is None, (row, other)
        assert row["output"] == other["output"], (sid, row["output"], other["output"])
        # the same pixels and the same chat text: the same prompt, image tokens included
        assert row["usage"] == other["usage"], (sid, row["usage"], other["usage"])
        assert row["resized_size"] == other["resized_size"]
    assert len({row["output"] for row in preds["hf"].values()}) > 1  # the answers vary
    if bench != "rsvqa_lr":  # the 800² image went to the model at 224², through both paths
        assert {tuple(row["resized_size"]) for row in preds["hf"].values()} == {(224, 224)}
    said = log.read_text()
    assert "POST /v1/chat/completions" in said
    # serve says its per-request token bounds at startup: the default and the model's cap
    assert re.search(r"max_tokens: 512 when a request gives none .*, at most [\d,]+ per", said)
