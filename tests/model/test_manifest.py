"""A checkpoint's manifest: what rscovlm writes, what every reader takes as the default band."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rscovlm.errors import InputError
from rscovlm.model.manifest import (
    MANIFEST_NAME,
    CheckpointManifest,
    checkpoint_band,
    processor_band,
    read_manifest,
    write_manifest,
)
from rscovlm.resolution import RSCOVLM_BAND, PixelBand

BAND = PixelBand(16 * 28 * 28, 64 * 28 * 28)


def _processor_dir(tmp_path: Path, config: dict[str, Any]) -> Path:
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


def test_write_then_read_round_trips_and_states_the_band_for_every_reader(
    tmp_path: Path,
) -> None:
    ckpt = _processor_dir(
        tmp_path, {"merge_size": 2, "size": {"shortest_edge": 50176, "longest_edge": 1016064}}
    )
    manifest = CheckpointManifest("qwen2_5_vl", BAND, "tiny:qwen2_5_vl", config_hash="sha256:ab")
    assert write_manifest(ckpt, manifest) == ckpt / MANIFEST_NAME
    assert read_manifest(ckpt) == manifest
    config = json.loads((ckpt / "preprocessor_config.json").read_text(encoding="utf-8"))
    assert config["merge_size"] == 2  # the rest of the processor config is kept
    assert (config["min_pixels"], config["max_pixels"]) == (BAND.min_pixels, BAND.max_pixels)
    assert config["size"] == {"shortest_edge": BAND.min_pixels, "longest_edge": BAND.max_pixels}
    assert processor_band(ckpt) == BAND == checkpoint_band(ckpt)


def test_the_band_falls_back_from_manifest_to_processor_to_rscovlm(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None and checkpoint_band(tmp_path) == RSCOVLM_BAND
    size_only = _processor_dir(tmp_path, {"size": {"shortest_edge": 3136, "longest_edge": 6272}})
    assert checkpoint_band(size_only) == PixelBand(3136, 6272)  # transformers 5 writes size
    _processor_dir(tmp_path, {"min_pixels": 784, "max_pixels": 1568, "size": {}})
    assert checkpoint_band(tmp_path) == PixelBand(784, 1568)  # transformers 4.x keys
    manifest = CheckpointManifest("qwen2_5_vl", BAND).to_dict()
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    assert checkpoint_band(tmp_path) == BAND  # the manifest wins


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "not valid JSON"),
        (json.dumps({"family": "llama", "band": {"min_pixels": 1, "max_pixels": 2}}), "family"),
        (json.dumps({"family": "qwen2_5_vl", "band": {"min_pixels": 9, "max_pixels": 2}}), "band"),
        (json.dumps({"family": "qwen2_5_vl"}), "band"),
    ],
)
def test_a_malformed_manifest_is_one_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / MANIFEST_NAME).write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        checkpoint_band(tmp_path)


def test_writing_needs_the_processor_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"preprocessor_config\.json"):
        write_manifest(tmp_path, CheckpointManifest("qwen2_5_vl", BAND))


def test_load_checkpoint_and_hf_backend_read_the_manifest(
    tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.loading import load_checkpoint

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen25_dir, ckpt)
    base = load_checkpoint(ckpt, dtype="float32")
    assert base.manifest is None and base.band == RSCOVLM_BAND  # the tiny processor's band
    manifest = CheckpointManifest("qwen2_5_vl", BAND, str(tiny_qwen25_dir))
    write_manifest(ckpt, manifest)
    loaded = load_checkpoint(ckpt, dtype="float32")
    assert loaded.manifest == manifest and loaded.band == BAND
    size = loaded.image_processor.size
    assert (size["shortest_edge"], size["longest_edge"]) == (BAND.min_pixels, BAND.max_pixels)
    assert HFBackend(loaded).band == BAND
    assert HFBackend(loaded, band=RSCOVLM_BAND).band == RSCOVLM_BAND  # explicit wins
    other = CheckpointManifest("qwen3_vl", BAND).to_dict()
    (ckpt / MANIFEST_NAME).write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(InputError, match="family qwen3_vl"):
        load_checkpoint(ckpt, dtype="float32")


def test_openai_backend_takes_family_and_band_from_a_local_checkpoint(tmp_path: Path) -> None:
    from rscovlm.model.backends.openai import OpenAIBackend

    ckpt = _processor_dir(tmp_path, {"size": {"shortest_edge": 1, "longest_edge": 2}})
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}), encoding="utf-8")
    write_manifest(ckpt, CheckpointManifest("qwen3_vl", BAND))
    client = OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env=None, checkpoint=ckpt)
    assert (client.family, client.band) == ("qwen3_vl", BAND)
    plain = OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env=None)
    assert (plain.family, plain.band) == ("qwen2_5_vl", RSCOVLM_BAND)
