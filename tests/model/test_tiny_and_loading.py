"""Tiny checkpoints of every family: files, save → load round trip, forward and generate."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from rscovlm import extras
from rscovlm.errors import InputError, MissingExtraError
from rscovlm.model import (
    LoadedModel,
    build_tiny_model,
    detect_family,
    load_checkpoint,
    mm_token_type_ids,
    resolve_attn,
)
from rscovlm.model.tiny import FAMILY_ARCHITECTURES, TinySpec, tiny_config

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
PATCH = {"qwen2_vl": 14, "qwen2_5_vl": 14, "qwen3_vl": 16}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request: pytest.FixtureRequest, tiny_checkpoint: Callable[[str], Path]) -> LoadedModel:
    return load_checkpoint(tiny_checkpoint(request.param))


def _prompt_inputs(lm: LoadedModel, image: Any) -> dict[str, torch.Tensor]:
    """Chat prompt with one image, its pad expanded to the image's token count."""
    vision = lm.image_processor(images=[image], return_tensors="pt")
    n_tokens = int(vision["image_grid_thw"][0].prod()) // lm.merge_size**2
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}
    ]
    text = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.count("<|image_pad|>") == 1
    text = text.replace("<|image_pad|>", "<|image_pad|>" * n_tokens)
    encoded = lm.tokenizer(text, return_tensors="pt")
    ids = encoded["input_ids"]
    assert int((ids == 151655).sum()) == n_tokens
    inputs = {
        "input_ids": ids,
        "attention_mask": encoded["attention_mask"],
        "pixel_values": vision["pixel_values"],
        "image_grid_thw": vision["image_grid_thw"],
    }
    if lm.wants_mm_token_type_ids:
        inputs["mm_token_type_ids"] = mm_token_type_ids(ids)
    return inputs


def test_checkpoint_files(tiny_checkpoint: Callable[[str], Path]) -> None:
    for family in FAMILIES:
        path = tiny_checkpoint(family)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        assert config["model_type"] == family == detect_family(path)
        assert config["architectures"] == [FAMILY_ARCHITECTURES[family]]
        assert config["text_config"]["vocab_size"] == 151936 and config["tie_word_embeddings"]
        assert config["vision_config"]["patch_size"] == PATCH[family]
        assert config["image_token_id"] == 151655
        processor = json.loads((path / "preprocessor_config.json").read_text(encoding="utf-8"))
        factor = 2 * PATCH[family]
        assert (processor["min_pixels"], processor["max_pixels"]) == (
            64 * factor**2,
            1296 * factor**2,
        )
        assert processor["patch_size"] == PATCH[family] and processor["merge_size"] == 2
        template = json.loads((path / "chat_template.json").read_text(encoding="utf-8"))
        assert "<|vision_start|><|image_pad|><|vision_end|>" in template["chat_template"]
        assert (path / "chat_template.jinja").is_file() and (path / "tokenizer.json").is_file()
        generation = json.loads((path / "generation_config.json").read_text(encoding="utf-8"))
        assert generation["eos_token_id"] == [151645, 151643]
        assert (path / "model.safetensors").stat().st_size < 48_000_000


def test_save_load_round_trip(loaded: LoadedModel) -> None:
    """The loaded model equals the one the builder made: same class, config and weights."""
    import transformers

    model_class = getattr(transformers, FAMILY_ARCHITECTURES[loaded.family])
    assert type(loaded.model) is model_class
    assert loaded.model.config._attn_implementation == "sdpa"
    assert loaded.model.dtype == torch.float32 and not loaded.model.training
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fresh = model_class(tiny_config(loaded.family))
    state, expected = loaded.model.state_dict(), fresh.state_dict()
    assert set(state) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name
    assert sum(p.numel() for p in loaded.model.parameters()) < 12_000_000
    embed = loaded.model.get_input_embeddings().weight
    assert embed.shape == (151936, 64)
    assert loaded.model.get_output_embeddings().weight.data_ptr() == embed.data_ptr()
    assert loaded.tokenizer.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert type(loaded.image_processor).__name__.startswith("Qwen2VLImageProcessor")
    assert loaded.image_processor.patch_size == PATCH[loaded.family]


def test_forward_and_generate_on_a_real_image(loaded: LoadedModel, demo_image: Any) -> None:
    inputs = _prompt_inputs(loaded, demo_image)
    grid = inputs["image_grid_thw"][0].tolist()
    factor = 2 * PATCH[loaded.family]
    width, height = demo_image.size
    assert grid[0] == 1 and grid[1] * PATCH[loaded.family] % factor == 0
    assert grid[1] * grid[2] * PATCH[loaded.family] ** 2 >= 64 * factor**2  # lifted into the band
    assert max(width, height) <= 224
    with torch.no_grad():
        logits = loaded.model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], 151936)
    assert torch.isfinite(logits).all()
    with torch.no_grad():
        out = loaded.model.generate(**inputs, max_new_tokens=3, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= new.numel() <= 3
    assert isinstance(loaded.tokenizer.decode(new, skip_special_tokens=True), str)


def test_multimodal_positions_are_used(loaded: LoadedModel, demo_image: Any) -> None:
    """Without ``mm_token_type_ids`` transformers 5 refuses (Qwen2-VL, Qwen3-VL) or silently
    falls back to 1-D positions (Qwen2.5-VL); with them the image gets 2-D rope positions."""
    if not loaded.wants_mm_token_type_ids:
        pytest.skip("this transformers computes rope positions from input_ids alone")
    inputs = _prompt_inputs(loaded, demo_image)
    plain = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    with torch.no_grad():
        with_types = loaded.model(**inputs).logits
        try:
            without = loaded.model(**plain).logits
        except ValueError as exc:
            refused = str(exc)
        else:
            refused = ""
    if refused:
        assert "mm_token_type_ids" in refused
    else:
        assert not torch.allclose(with_types[0, -1], without[0, -1])


def test_seeded_and_reused(tmp_path: Path, tokenizer_cache: Path) -> None:
    small = TinySpec(vision_depth=1)
    kwargs: dict[str, Any] = {"spec": small, "cache_dir": tokenizer_cache}
    first = build_tiny_model("qwen2_5_vl", tmp_path / "a", seed=3, **kwargs)
    second = build_tiny_model("qwen2_5_vl", tmp_path / "b", seed=3, **kwargs)
    other = build_tiny_model("qwen2_5_vl", tmp_path / "c", seed=4, **kwargs)
    weights = [(p / "model.safetensors").read_bytes() for p in (first, second, other)]
    assert weights[0] == weights[1] != weights[2]
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model("qwen2_5_vl", first, seed=3, **kwargs) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a tiny checkpoint"):
        build_tiny_model("qwen2_5_vl", tmp_path / "junk", **kwargs)
    with pytest.raises(InputError, match="dtype"):
        build_tiny_model("qwen2_5_vl", tmp_path / "d", dtype="int8", **kwargs)


def test_load_options(tiny_checkpoint: Callable[[str], Path]) -> None:
    path = tiny_checkpoint("qwen2_5_vl")
    lm = load_checkpoint(path, dtype="bfloat16", attn="eager")
    assert lm.model.dtype == torch.bfloat16 and lm.family == "qwen2_5_vl"
    assert lm.model.config._attn_implementation == "eager"
    with pytest.raises(InputError, match="dtype"):
        load_checkpoint(path, dtype="fp8")
    with pytest.raises(InputError, match="attn"):
        load_checkpoint(path, attn="flash")
    with pytest.raises(InputError, match="device"):
        load_checkpoint(path, device="nonsense:7")


def test_flash_attention_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from rscovlm.model import loading

    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    assert resolve_attn("auto", "cuda") == "sdpa"
    with pytest.raises(MissingExtraError, match="flash-attn"):
        resolve_attn("flash_attention_2", "cuda")
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: object())
    assert resolve_attn("auto", "cuda:0") == "flash_attention_2"
    assert resolve_attn("auto", "cpu") == "sdpa"
    with pytest.raises(InputError, match="CUDA"):
        resolve_attn("flash_attention_2", "cpu")


def test_not_a_checkpoint(tmp_path: Path, tiny_checkpoint: Callable[[str], Path]) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(InputError, match=r"no config\.json"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(InputError, match="not a supported family"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["Qwen2_5_VLForConditionalGeneration"]})
    )
    assert detect_family(tmp_path) == "qwen2_5_vl"
    with pytest.raises(InputError, match="lacks weights"):
        load_checkpoint(tmp_path)
    partial = tmp_path / "partial"
    shutil.copytree(tiny_checkpoint("qwen2_vl"), partial)
    (partial / "preprocessor_config.json").unlink()
    with pytest.raises(InputError, match=r"preprocessor_config\.json"):
        load_checkpoint(partial)


def test_missing_torch_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Callable[[str], Path]
) -> None:
    path = tiny_checkpoint("qwen2_5_vl")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"rscovlm\[train\]"):
        load_checkpoint(path)
    monkeypatch.undo()
    monkeypatch.setattr(extras.importlib, "import_module", _refuse("transformers"))
    with pytest.raises(MissingExtraError, match="transformers"):
        load_checkpoint(path)


def _refuse(blocked: str) -> Callable[[str], Any]:
    import importlib

    real = importlib.import_module

    def import_module(name: str, package: str | None = None) -> Any:
        if name == blocked:
            raise ImportError(f"No module named {blocked!r}")
        return real(name, package)

    return import_module


def test_mm_token_type_ids() -> None:
    ids = torch.tensor([[1, 151652, 151655, 151655, 151653, 151656, 7]])
    assert mm_token_type_ids(ids).tolist() == [[0, 0, 1, 1, 0, 2, 0]]


def test_rope_theta_lets_the_llm_see_columns() -> None:
    """Why the demo lowers ``rope_theta``: M-RoPE gives the columns of the image the lowest
    rotary frequencies, which at the family's base barely turn over a few visual tokens."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRotaryEmbedding

    def column_freqs(spec: TinySpec) -> torch.Tensor:
        config = tiny_config("qwen2_5_vl", spec).text_config
        inv_freq = Qwen2_5_VLRotaryEmbedding(config).inv_freq
        return inv_freq[-config.rope_parameters["mrope_section"][2] :]  # the w section

    assert float(column_freqs(TinySpec()).max()) < 1e-3  # radians per column
    assert float(column_freqs(TinySpec(rope_theta=4.0)).min()) > 0.1
    assert tiny_config("qwen2_5_vl", TinySpec()).text_config.rope_parameters["rope_theta"] == 1e6
