"""``VLLMBackend`` against the real vLLM (issue #19): it gives the HF backend's answers.

vLLM has no CPU wheel here, so ``make vllm-venv`` installs vLLM 0.34 without its CUDA stack into
``.venv-vllm``. Everything vLLM does before and after the model runs is its own code: the
engine arguments and config, the tokenizer, the input processor with the Qwen-VL image
processor (prompt ids, pad expansion, pixel arrays), ``SamplingParams``, the output processor
and the detokenizer. Only the engine core is faked: :class:`HFEngineCore` feeds what vLLM's
processor produced to the tiny HF model and hands back token ids as a scheduler would.

In the main venv (no vLLM) :func:`test_in_the_vllm_venv` re-runs this file in ``.venv-vllm``
when it exists, and skips, saying how to build it, when it does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rscovlm.data.conversation import Conversation, ImagePart, Message, TextPart
from rscovlm.errors import InputError
from rscovlm.extras import is_available
from rscovlm.formats.tokens import STOP_IDS
from rscovlm.model.backends.base import GenerationParams
from rscovlm.model.encoding import image_part, prepare_image
from rscovlm.resolution import PixelBand, get_family

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
PENALTY = 1.05  # the released Qwen2.5-VL generation_config's; HF applies it, vLLM did not


@pytest.mark.skipif(is_available("vllm"), reason="vLLM is importable: the tests below run here")
def test_in_the_vllm_venv() -> None:
    if not VLLM_PYTHON.is_file():
        pytest.skip(
            "vLLM is not installed: `make vllm-venv` builds .venv-vllm (vLLM 0.34 without its "
            "CUDA stack, torch 2.13 CPU), in which this file then runs"
        )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "VLLM_TARGET_DEVICE": "cpu"}
    proc = subprocess.run(
        [str(VLLM_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", __file__],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, tail


# --- in the vLLM venv ------------------------------------------------------------------------


class HFEngineCore:
    """vLLM's engine core, faked: each request's prompt ids and processed images (exactly what
    vLLM's input processor made) run through the HF model, greedy, under the request's own
    sampling params; the new ids go back to vLLM's output processor and detokenizer."""

    def __init__(self, lm: Any, vllm_config: Any) -> None:
        from vllm.config import set_current_vllm_config
        from vllm.model_executor.layers.fusion.mm_input_norm import build_mm_input_norm

        self.lm = lm
        self.requests: list[Any] = []
        self._pending: list[Any] = []
        # vLLM 0.34 ships raw uint8 patches to the model (``mm_device_do_normalize``) and
        # rescales/normalises there with this module, built from the checkpoint's processor
        # config: the faked engine applies it exactly as vLLM's Qwen-VL models do.
        with set_current_vllm_config(vllm_config):
            self.input_norm = build_mm_input_norm(vllm_config.model_config)

    def raw_pixels(self, request: Any) -> Any:
        """The pixel patches vLLM's input processor sent with ``request`` (``None``: none)."""
        import torch

        features = [f.data.get_data() for f in request.mm_features or []]
        return torch.cat([f["pixel_values"] for f in features]) if features else None

    def add_request(self, request: Any) -> None:
        self.requests.append(request)
        self._pending.append(request)

    def inputs(self, request: Any) -> dict[str, Any]:
        """The model inputs of ``request``, from vLLM's processed multimodal features."""
        import torch

        from rscovlm.model.loading import mm_token_type_ids

        ids = torch.tensor([list(request.prompt_token_ids)], dtype=torch.long)
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        features = [f.data.get_data() for f in request.mm_features or []]
        if features:
            raw = self.raw_pixels(request)
            norm = getattr(self.input_norm, "forward_native", self.input_norm.forward)
            inputs["pixel_values"] = norm(raw, torch.float32)  # vLLM's on-device step
            inputs["image_grid_thw"] = torch.stack([f["image_grid_thw"] for f in features])
        if self.lm.wants_mm_token_type_ids:
            inputs["mm_token_type_ids"] = mm_token_type_ids(ids)
        return inputs

    def get_output(self) -> Any:
        import torch
        from vllm.v1.engine import EngineCoreOutput, EngineCoreOutputs, FinishReason

        outputs = []
        for request in self._pending:
            sp = request.sampling_params
            assert sp.temperature == 0, "the fake engine decodes greedily only"
            stops = list(sp.stop_token_ids)
            with torch.no_grad():
                out = self.lm.model.generate(
                    **self.inputs(request),
                    max_new_tokens=sp.max_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    repetition_penalty=sp.repetition_penalty,
                    eos_token_id=stops,
                    pad_token_id=STOP_IDS[1],
                )
            new = out[0, len(request.prompt_token_ids) :].tolist()
            stop = next((k for k, t in enumerate(new) if t in stops), None)
            new = new if stop is None else new[: stop + 1]
            finish = FinishReason.LENGTH if stop is None else FinishReason.STOP
            outputs.append(EngineCoreOutput(request.request_id, new, finish_reason=finish))
        self._pending = []
        return EngineCoreOutputs(outputs=outputs)

    def get_supported_tasks(self) -> tuple[str, ...]:
        return ("generate",)

    def dp_engines_running(self) -> bool:
        return False

    def abort_requests(self, request_ids: Any) -> None:
        self._pending = [r for r in self._pending if r.request_id not in set(request_ids)]

    def reset_mm_cache(self) -> None:
        pass

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def real_vllm(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """vLLM with its engine core replaced: ``holder["engine"]`` is the :class:`HFEngineCore`
    of the backend built last; ``holder["lm"]`` must be set to the HF model before."""
    pytest.importorskip("vllm", reason="runs in .venv-vllm (make vllm-venv)")
    monkeypatch.setenv("VLLM_TARGET_DEVICE", "cpu")
    from vllm.platforms.cpu import CpuPlatform
    from vllm.v1.engine import core_client

    # The CPU platform's engine checks (triton-cpu, the CPU kernels) belong to the engine that
    # is faked; the config they would tune is built as on any platform.
    monkeypatch.setattr(CpuPlatform, "check_and_update_config", classmethod(lambda cls, c: None))
    holder: dict[str, Any] = {}

    def make_client(*args: Any, **kwargs: Any) -> HFEngineCore:
        vllm_config = kwargs.get("vllm_config", args[2] if len(args) > 2 else None)
        holder["engine"] = HFEngineCore(holder["lm"], vllm_config)
        return holder["engine"]

    monkeypatch.setattr(core_client.EngineCoreClient, "make_client", staticmethod(make_client))
    return holder


@pytest.fixture(scope="module")
def penalised(
    tiny_checkpoint: Callable[[str], Path], tmp_path_factory: Any
) -> Callable[[str], Path]:
    """Each family's tiny checkpoint with the released repetition penalty in its
    ``generation_config.json`` (what HF applies silently)."""
    root = tmp_path_factory.mktemp("penalised")

    def get(family: str) -> Path:
        out = root / family
        if not out.is_dir():
            shutil.copytree(tiny_checkpoint(family), out)
            config_path = out / "generation_config.json"
            config = json.loads(config_path.read_text(encoding="utf-8"))
            config["repetition_penalty"] = PENALTY
            config_path.write_text(json.dumps(config), encoding="utf-8")
        return out

    return get


def _scene(demo_image: Any, size: tuple[int, int]) -> Any:
    return demo_image.resize(size)


def _conversation(family: str, parts: list[ImagePart], question: str) -> Conversation:
    content = (*parts, TextPart(question))
    return Conversation([Message("user", content)], get_family(family))


def _pair(
    family: str, ckpt: Path, holder: dict[str, Any], band: PixelBand | None = None
) -> tuple[Any, Any]:
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.backends.vllm import VLLMBackend

    hf = HFBackend(ckpt, band=band)
    holder["lm"] = hf.lm
    vb = VLLMBackend(ckpt, band=band, mm_processor_cache_gb=0, enforce_eager=True)
    return hf, vb


def _assert_same(
    hf: Any, vb: Any, engine: HFEngineCore, convs: list[Conversation], images: list[list[Any]]
) -> None:
    """vLLM's request equals HF's encoding and the replies are identical."""
    import torch

    from rscovlm.model.encoding import encode

    params = GenerationParams(max_new_tokens=12)
    want = hf.generate(convs, params, images)
    got = vb.generate(convs, params, images)
    assert got == want  # text, usage (prompt, completion, image tokens), finish reason
    requests = engine.requests[-len(convs) :]
    batch = encode(convs, hf.lm.tokenizer, hf.lm.image_processor, family=hf.family, images=images)
    mask = batch.inputs["attention_mask"].bool()
    pixels, raws, grids, prepared = [], [], [], []
    for row, request in enumerate(requests):
        assert list(request.prompt_token_ids) == batch.inputs["input_ids"][row][mask[row]].tolist()
        sp = request.sampling_params
        assert sp.repetition_penalty == PENALTY and sp.temperature == 0
        assert set(sp.stop_token_ids) == set(STOP_IDS) and sp.max_tokens == 12
        assert sp.skip_special_tokens
        inputs = engine.inputs(request)
        parts = convs[row].image_parts()
        prepared += [prepare_image(im, p) for im, p in zip(images[row], parts, strict=True)]
        if "pixel_values" in inputs:
            pixels.append(inputs["pixel_values"])
            raws.append(engine.raw_pixels(request))
            grids.append(inputs["image_grid_thw"])
    assert torch.equal(torch.cat(grids), batch.inputs["image_grid_thw"])
    # the bytes vLLM sent are HF's resized, patched pixels before rescaling, exactly ...
    unscaled = hf.lm.image_processor(
        images=prepared, return_tensors="pt", do_resize=False, do_rescale=False,
        do_normalize=False,
    )["pixel_values"]  # fmt: skip
    assert raws[0].dtype == torch.uint8
    assert torch.equal(torch.cat(raws).float(), unscaled.float())
    # ... and what vLLM's model normalises them to is HF's pixel_values, to fp32 rounding
    # (vLLM: x·(s/σ) − μ/σ in one affine step; HF: (x·s − μ)/σ)
    torch.testing.assert_close(torch.cat(pixels), batch.inputs["pixel_values"], rtol=0, atol=2e-6)
    # The tiny model's greedy reply barely depends on its inputs, so equal text alone proves
    # little: the next-token logits of what the engine ran equal HF's on its own encoding.
    for row, request in enumerate(requests):
        alone = encode([convs[row]], hf.lm.tokenizer, hf.lm.image_processor, family=hf.family,
                       images=[images[row]], add_generation_prompt=True).inputs  # fmt: skip
        if not hf.lm.wants_mm_token_type_ids:
            alone = {k: v for k, v in alone.items() if k != "mm_token_type_ids"}
        with torch.no_grad():
            ran = hf.lm.model(**engine.inputs(request)).logits[0, -1]
            ref = hf.lm.model(**alone).logits[0, -1]
        torch.testing.assert_close(ran, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.integration
@pytest.mark.parametrize("family", FAMILIES)
def test_vllm_equals_hf_for_every_family(
    family: str, penalised: Callable[[str], Path], real_vllm: dict[str, Any], demo_image: Any
) -> None:
    hf, vb = _pair(family, penalised(family), real_vllm)
    assert vb.dtype == "float32"  # vLLM's own "auto" would run this fp32 checkpoint in bf16
    assert str(vb._llm.llm_engine.model_config.dtype) == "torch.float32"
    scene = _scene(demo_image, (224, 168))
    part = image_part("mem", scene.size, vb.band, family)
    convs = [
        _conversation(family, [part], "What is in the image?"),
        _conversation(family, [], "Name one vehicle."),  # text only, in the same batch
    ]
    _assert_same(hf, vb, real_vllm["engine"], convs, [[scene], []])


@pytest.mark.integration
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_vllm_equals_hf_with_several_images_per_prompt(
    family: str, penalised: Callable[[str], Path], real_vllm: dict[str, Any], demo_image: Any
) -> None:
    hf, vb = _pair(family, penalised(family), real_vllm)
    images = [_scene(demo_image, (224, 168)), _scene(demo_image, (140, 280))]
    images.append(images[0].rotate(90, expand=True))
    parts = [image_part("mem", im.size, vb.band, family) for im in images]
    convs = [_conversation(family, parts, "Compare the three images.")]
    _assert_same(hf, vb, real_vllm["engine"], convs, [images])
    assert len(real_vllm["engine"].requests[-1].mm_features) == 3


@pytest.mark.integration
@pytest.mark.parametrize("family", FAMILIES)
def test_a_band_override_is_not_resized_again(
    family: str, penalised: Callable[[str], Path], real_vllm: dict[str, Any], demo_image: Any
) -> None:
    """A band below the checkpoint's: vLLM's processor (checkpoint band) would scale the image
    back up, changing the pixels, the grid and the image-token count."""
    factor = get_family(family).factor
    band = PixelBand(4 * factor * factor, 24 * factor * factor)
    hf, vb = _pair(family, penalised(family), real_vllm, band=band)
    scene = _scene(demo_image, (224, 168))
    part = image_part("mem", scene.size, band, family)
    native = image_part("mem", scene.size, hf.lm.band, family)
    assert part.resized_size != native.resized_size  # the override really changes the size
    convs = [_conversation(family, [part], "Describe the image.")]
    _assert_same(hf, vb, real_vllm["engine"], convs, [[scene]])
    request = real_vllm["engine"].requests[-1]
    w, h = part.resized_size
    grid = request.mm_features[0].data.get_data()["image_grid_thw"].tolist()
    assert grid == [1, h * 2 // factor, w * 2 // factor]


@pytest.mark.integration
def test_inputs_vllm_would_change_are_refused_before_the_engine(
    penalised: Callable[[str], Path], real_vllm: dict[str, Any], demo_image: Any
) -> None:
    hf, vb = _pair("qwen2_5_vl", penalised("qwen2_5_vl"), real_vllm)
    off_grid = _conversation("qwen2_5_vl", [ImagePart("mem", (500, 300), (500, 300))], "q")
    for backend in (hf, vb):  # vLLM would have resized it silently; both refuse alike
        with pytest.raises(InputError, match="not a multiple of 28"):
            backend.generate([off_grid], None, [[demo_image]])
    too_many = _conversation("qwen2_5_vl", [image_part("mem", (56, 56))] * 5, "q")
    with pytest.raises(InputError, match="at most 4 per prompt"):
        vb.generate([too_many], None, [[demo_image] * 5])
    assert real_vllm["engine"].requests == []


@pytest.mark.integration
def test_an_adapter_runs_as_a_vllm_lora_request(
    penalised: Callable[[str], Path], real_vllm: dict[str, Any], demo_image: Any, tmp_path: Path
) -> None:
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.backends.vllm import VLLMBackend

    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    ckpt = penalised("qwen2_5_vl")
    real_vllm["lm"] = HFBackend(ckpt).lm
    vb = VLLMBackend(ckpt, adapter=adapter, mm_processor_cache_gb=0, enforce_eager=True)
    assert vb._llm.llm_engine.vllm_config.lora_config.max_lora_rank == 8
    vb.generate([_conversation("qwen2_5_vl", [], "q")], GenerationParams(max_new_tokens=2))
    lora = real_vllm["engine"].requests[-1].lora_request
    assert lora is not None and Path(lora.lora_path) == adapter
