"""The training loop: schedule, parameter groups, learning, and exact resume on the CPU."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from rscovlm.train.config import TrainConfig
from rscovlm.train.trainer import ListStream, build_optimizer, lr_factor, module_of, run

torch = pytest.importorskip("torch")


def test_lr_factor_warmup_then_cosine() -> None:
    total = 20
    values = [lr_factor(s, total, 0.1, "cosine", 0.0) for s in range(total)]
    assert values[:2] == [0.5, 1.0]  # ceil(0.1 · 20) = 2 warmup steps
    assert all(a >= b for a, b in itertools.pairwise(values[1:]))
    assert values[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 17 / 18)))
    assert lr_factor(19, 20, 0.0, "linear", 0.1) == pytest.approx(0.1 + 0.9 * (1 - 19 / 20))
    assert lr_factor(7, 20, 0.0, "constant", 0.0) == 1.0


def test_module_of() -> None:
    assert module_of("model.visual.blocks.0.attn.qkv.weight") == "vision"
    assert module_of("model.visual.merger.mlp.0.weight") == "merger"
    assert module_of("model.language_model.layers.0.mlp.up_proj.weight") == "llm"
    assert module_of("lm_head.weight") == "llm"


def _samples(tokenizer: Any, n: int) -> list[dict[str, Any]]:
    """Tiny chats whose answer is a fixed function of the question (learnable)."""
    colours = ["red", "green", "blue", "white"]
    out = []
    for i in range(n):
        colour = colours[i % len(colours)]
        prompt = f"<|im_start|>user\nColour {i % len(colours)}?<|im_end|>\n<|im_start|>assistant\n"
        a = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        b = tokenizer(f"{colour}<|im_end|>", add_special_tokens=False)["input_ids"]
        out.append(
            {
                "input_ids": torch.tensor(a + b),
                "labels": torch.tensor([-100] * len(a) + b),
            }
        )
    return out


def _config(tmp_path: Path, ckpt: Path, **train: Any) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "model": {"path": str(ckpt), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["colours"]}},
            "optim": {"lr": 1e-2, "warmup_ratio": 0.3, "weight_decay": 0.0},
            "train": {
                "max_steps": 6,
                "per_device_batch_size": 2,
                "gradient_accumulation_steps": 2,
                "max_length": 64,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "device": "cpu",
                **train,
            },
            "dist": {"backend": "gloo"},
            "log": {"output_dir": str(tmp_path)},
        }
    )


def test_lora_trains_only_adapters(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from rscovlm.train.trainer import build_model

    cfg = _config(tmp_path, tiny_qwen25_dir)
    cfg.model.lora.enabled = True
    cfg.model.freeze.llm = True
    model = build_model(cfg, torch.device("cpu")).model
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or ".visual." in n for n in trainable)
    assert any("lora_" in n for n in trainable)


def test_per_module_lrs_and_freezing(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    from rscovlm.train.trainer import build_model

    cfg = _config(tmp_path, tiny_qwen25_dir)
    cfg.optim.lr_vision = 1e-5
    cfg.model.freeze.merger = True
    loaded = build_model(cfg, torch.device("cpu"))
    groups = {g["name"]: g for g in build_optimizer(loaded.model, cfg).param_groups}
    assert not any(name.startswith("merger") for name in groups)
    assert groups["vision"]["lr"] == 1e-5 and groups["llm"]["lr"] == 1e-2
    assert groups["llm_no_decay"]["weight_decay"] == 0.0


@pytest.mark.integration
def test_learns_and_resumes_exactly(
    tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    """Packed micro-batches, 2 accumulation steps; stopping at 3 and resuming changes nothing."""
    packing = True
    samples = _samples(tiny_qwen25.tokenizer, 12)
    whole = run(
        _config(tmp_path / "whole", tiny_qwen25_dir, packing=packing), ListStream(samples, seed=1)
    )
    assert whole.steps == 6 and len(whole.losses) == 6
    assert whole.losses[-1] < 0.8 * whole.losses[0], whole.losses

    cfg = _config(tmp_path / "split", tiny_qwen25_dir, packing=packing)
    first = run(cfg, ListStream(samples, seed=1), stop_after=3)
    assert first.steps == 3
    second = run(cfg, ListStream(samples, seed=1))
    assert second.steps == 6
    resumed = first.losses + second.losses
    assert resumed == pytest.approx(whole.losses, rel=1e-6, abs=1e-6)

    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 7))
    assert all(r["tokens_per_s"] > 0 and 0 <= r["padding_fraction"] < 1 for r in log)
    assert log[0]["lr"] < log[1]["lr"]  # warmup


@pytest.mark.integration
def test_torchrun_two_cpu_ranks(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """gloo, 2 ranks: disjoint samples, the same losses on both, identical final weights."""
    import os
    import subprocess
    import sys

    worker = Path(__file__).with_name("_ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(worker),
        str(tiny_qwen25_dir),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    seen = [set(r["seen"]) for r in ranks]
    assert len(ranks[0]["seen"]) == 3 * 2 * 1 == len(seen[0])  # 3 steps × 2 samples × 1 micro
    assert not seen[0] & seen[1]
    assert ranks[0]["losses"] == ranks[1]["losses"]
    w0, w1 = (torch.load(tmp_path / f"weights{r}.pt") for r in (0, 1))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)


@pytest.mark.integration
def test_tiny_cpu_config_trains_on_the_data_engine(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """The shipped tiny_cpu.yaml, shortened: procedural data built on first use, rendered by
    the mixture's policy, encoded by the shared encoder, packed, trained; resume continues it."""
    from rscovlm.train.config import load_train_config, shipped_train_configs

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: tiny\nroot: .\nsources:\n  - name: synthetic\n    adapter: synthetic\n"
        "    path: synthetic\n    classes: dota1.0\n    options: {n: 6, size: 256, seed: 0}\n",
        encoding="utf-8",
    )
    overrides = [
        f"model.path={tiny_qwen25_dir}",
        f"data.build_recipe={recipe}",
        f"data.built={tmp_path / 'data'}",
        f"log.output_dir={tmp_path / 'run'}",
        "log.progress=false",
        "train.max_steps=3",
        "train.per_device_batch_size=2",
        "train.global_batch_size=2",
    ]
    cfg_path = shipped_train_configs()["tiny_cpu"]
    cfg = load_train_config(cfg_path, overrides)
    first = run(cfg, stop_after=2)
    assert first.steps == 2 and all(math.isfinite(x) for x in first.losses)
    assert (tmp_path / "data" / "manifest.json").is_file()
    second = run(cfg)  # resumes at step 2 with the mixture's saved position
    assert second.steps == 3 and len(second.losses) == 1
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r["samples"] == 2 for r in log)
    whole = run(load_train_config(cfg_path, [*overrides, f"log.output_dir={tmp_path / 'whole'}"]))
    assert first.losses + second.losses == pytest.approx(whole.losses, rel=1e-6, abs=1e-6)
    # the finished run is a checkpoint the rest of rscovlm loads
    from rscovlm.model import load_checkpoint

    reloaded = load_checkpoint(tmp_path / "run" / "final", dtype="float32")
    trained = second.model.state_dict()
    for name, value in reloaded.model.state_dict().items():
        assert torch.equal(value, trained[name]), name
