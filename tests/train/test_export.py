"""Train → export → load: the final checkpoint remembers the pixel band it was trained at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from rscovlm.model.manifest import MANIFEST_NAME
from rscovlm.resolution import RSCOVLM_BAND, PixelBand

pytest.importorskip("torch")

TINY_CPU_BAND = PixelBand(12544, 50176)  # configs/train/tiny_cpu.yaml: 112² … 224²


@pytest.fixture(scope="module")
def trained(tiny_qwen25_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped tiny_cpu config, one optimizer step on a small procedural dataset."""
    from rscovlm.train.config import load_train_config, shipped_train_configs
    from rscovlm.train.trainer import run

    tmp = tmp_path_factory.mktemp("export")
    recipe = tmp / "recipe.yaml"
    recipe.write_text(
        "name: tiny\nroot: .\nsources:\n  - name: synthetic\n    adapter: synthetic\n"
        "    path: synthetic\n    classes: dota1.0\n    options: {n: 2, size: 256, seed: 0}\n",
        encoding="utf-8",
    )
    overrides = [
        f"model.path={tiny_qwen25_dir}",
        f"data.build_recipe={recipe}",
        f"data.built={tmp / 'data'}",
        f"log.output_dir={tmp / 'run'}",
        "log.progress=false",
        "train.max_steps=1",
        "train.per_device_batch_size=1",
        "train.global_batch_size=1",
    ]
    result = run(load_train_config(shipped_train_configs()["tiny_cpu"], overrides))
    assert result.steps == 1
    return tmp / "run" / "final"


def test_the_export_records_the_training_band_and_provenance(
    trained: Path, tiny_qwen25_dir: Path
) -> None:
    from rscovlm.model.loading import load_checkpoint

    config = json.loads((trained / "preprocessor_config.json").read_text(encoding="utf-8"))
    lo, hi = TINY_CPU_BAND.min_pixels, TINY_CPU_BAND.max_pixels
    assert (config["min_pixels"], config["max_pixels"]) == (lo, hi)
    assert config["size"] == {"shortest_edge": lo, "longest_edge": hi}
    manifest = json.loads((trained / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["family"] == "qwen2_5_vl"
    assert manifest["band"] == {"min_pixels": lo, "max_pixels": hi}
    assert manifest["base_model"] == str(tiny_qwen25_dir)
    assert manifest["config_hash"].startswith("sha256:") and manifest["rscovlm_version"]
    loaded = load_checkpoint(trained, dtype="float32")
    assert loaded.band == TINY_CPU_BAND and loaded.manifest is not None
    assert loaded.manifest.base_model == str(tiny_qwen25_dir)
    size = loaded.image_processor.size  # what transformers itself would resize to
    assert (size["shortest_edge"], size["longest_edge"]) == (lo, hi)


def test_hf_backend_feeds_the_trained_band(trained: Path, tiny_lm: Any) -> None:
    """A 1000² image: the base runs it at its 224²–1008² band, the trained model at the
    112²–224² it learned on (20× fewer visual tokens)."""
    from rscovlm.model.backends import GenerationParams
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.encoding import image_part, question_conversation

    image = Image.new("RGB", (1000, 1000), (90, 120, 60))
    one = GenerationParams(max_new_tokens=1)
    tokens = {}
    for name, backend in (("base", HFBackend(tiny_lm)), ("trained", HFBackend(trained))):
        part = image_part("mem", image.size, backend.band, backend.family)
        w, h = part.resized_size
        assert backend.band.min_pixels <= w * h <= backend.band.max_pixels
        conv = question_conversation("What is in the image?", part)
        usage = backend.generate([conv], one, images=[[image]])[0].usage
        assert usage.image_tokens == w * h // (28 * 28)  # the pixels it was fed
        tokens[name] = usage.image_tokens
    assert HFBackend(tiny_lm).band == RSCOVLM_BAND
    assert HFBackend(trained).band == TINY_CPU_BAND
    assert tokens["trained"] <= TINY_CPU_BAND.max_pixels // 784 == 64
    assert tokens["base"] >= 20 * tokens["trained"]
