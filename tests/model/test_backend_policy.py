"""One generation policy and one set of input checks for every backend (issue #19).

The HF half runs the tiny checkpoint; the vLLM half against the real vLLM is
``test_vllm_real.py``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rscovlm.data.conversation import Conversation, ImagePart, Message, TextPart, VideoPart
from rscovlm.errors import InputError
from rscovlm.formats.tokens import STOP_IDS
from rscovlm.model.backends.base import (
    MAX_NEW_TOKENS_CAP,
    GenerationParams,
    GenerationPolicy,
    check_inputs,
)
from rscovlm.model.encoding import image_part, question_conversation
from rscovlm.resolution import get_family


def _with_generation_config(src: Path, dst: Path, **values: Any) -> Path:
    shutil.copytree(src, dst)
    config_path = dst / "generation_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.update(values)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return dst


def test_policy_reads_what_transformers_would_apply_silently(
    tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    ckpt = _with_generation_config(
        tiny_qwen25_dir, tmp_path / "c", repetition_penalty=1.05, top_k=7, eos_token_id=[1, 2]
    )
    policy = GenerationPolicy.from_checkpoint(ckpt)
    assert policy.repetition_penalty == 1.05 and policy.top_k == 7
    assert policy.stop_token_ids == (*STOP_IDS, 1, 2)
    assert policy.max_new_tokens <= MAX_NEW_TOKENS_CAP
    params = GenerationParams(temperature=0.5).resolve(policy)
    assert params.to_dict()["repetition_penalty"] == 1.05 and params.top_k == 7
    assert params.temperature == 0.5  # the caller's decoding is never the checkpoint's
    explicit = GenerationParams(repetition_penalty=1.0, top_k=0).resolve(policy)
    assert explicit.repetition_penalty == 1.0 and explicit.top_k == 0
    json.dumps(params.to_dict())  # a run manifest can store it


def test_policy_without_a_generation_config_is_the_neutral_one(tmp_path: Path) -> None:
    assert GenerationPolicy.from_checkpoint(tmp_path) == GenerationPolicy()
    (tmp_path / "generation_config.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(InputError, match="JSON object"):
        GenerationPolicy.from_checkpoint(tmp_path)


@pytest.mark.integration
def test_hf_uses_the_explicit_policy_not_the_models_own(
    tiny_qwen25_dir: Path, tmp_path: Path, demo_image: Any
) -> None:
    """A checkpoint with a strong repetition penalty: the policy applies it, and an explicit
    1.0 switches it off — the model's generation_config never decides behind the caller."""
    from rscovlm.model.backends.hf import HFBackend

    penalised = _with_generation_config(tiny_qwen25_dir, tmp_path / "p", repetition_penalty=3.0)
    w, h = demo_image.size
    conv = question_conversation("Describe.", image_part("mem", (w, h)))
    plain = HFBackend(tiny_qwen25_dir, dtype="auto").generate(
        [conv], GenerationParams(max_new_tokens=24), [[demo_image]]
    )
    backend = HFBackend(penalised, dtype="auto")
    assert backend.policy.repetition_penalty == 3.0
    assert backend.resolve().repetition_penalty == 3.0
    off = backend.generate(
        [conv], GenerationParams(max_new_tokens=24, repetition_penalty=1.0), [[demo_image]]
    )
    on = backend.generate([conv], GenerationParams(max_new_tokens=24), [[demo_image]])
    assert off == plain
    assert on[0].text != plain[0].text


def _conv(*parts: Any, family: str = "qwen2_5_vl") -> Conversation:
    return Conversation([Message("user", (*parts, TextPart("q")))], get_family(family))


def test_check_inputs_refuses_what_a_backend_would_change() -> None:
    good = ImagePart("a.png", (560, 280), (560, 280))
    check_inputs([_conv(good)], None, "qwen2_5_vl", max_images=1)
    cases = [
        (_conv(ImagePart("a.png", (500, 300), (500, 300))), "not a multiple of 28"),
        (_conv(VideoPart((good, good))), "video parts are not supported"),
        (_conv(good, good), "at most 1 per prompt"),
        (_conv(ImagePart("a.png", (5656, 28), (5656, 28))), "aspect ratio above 200"),
    ]
    for conv, message in cases:
        with pytest.raises(InputError, match=message):
            check_inputs([conv], None, "qwen2_5_vl", max_images=1)
    with pytest.raises(InputError, match="not a multiple of 32"):
        check_inputs([_conv(good, family="qwen3_vl")], None, "qwen3_vl")
    with pytest.raises(InputError, match="1 images for 2 image parts"):
        check_inputs([_conv(good, good)], [["x"]], "qwen2_5_vl")


def test_hf_refuses_an_extreme_aspect_ratio_with_the_shared_message(tiny_lm: Any) -> None:
    from rscovlm.model.backends.hf import HFBackend

    conv = _conv(ImagePart("a.png", (5656, 28), (5656, 28)))
    with pytest.raises(InputError, match="aspect ratio above 200"):
        HFBackend(tiny_lm).generate([conv])


def test_dtype_auto_is_the_stored_dtype(tiny_checkpoint: Callable[[str], Path]) -> None:
    from rscovlm.model.loading import resolve_dtype

    path = tiny_checkpoint("qwen2_vl")
    assert resolve_dtype(path, "auto") == "float32"  # vLLM's own auto would pick bf16/fp16
    assert resolve_dtype(path, "bfloat16") == "bfloat16"
    with pytest.raises(InputError, match="dtype must be one of"):
        resolve_dtype(path, "int8")


@pytest.mark.parametrize("option", ["device", "attn", "batch_size"])
def test_vllm_refuses_hf_only_options_by_name(option: str, tmp_path: Path) -> None:
    from rscovlm.model.backends.vllm import VLLMBackend

    with pytest.raises(InputError, match=f"takes no {option}="):
        VLLMBackend(tmp_path, **{option: "x"})
