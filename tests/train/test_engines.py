"""Engines: FSDP2 under torchrun on CPU/gloo (equal to DDP, exact resume), DeepSpeed's filled
config and refusals, the missing-extra error, and the DeepSpeed wiring of the loop against a
stand-in module (the real DeepSpeed run is skipped where it is not installed)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import socket
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from rscovlm.errors import InputError, MissingExtraError
from rscovlm.extras import is_available
from rscovlm.train.config import TrainConfig, deepspeed_config, deepspeed_config_path
from rscovlm.train.engines import (
    DDPEngine,
    build_engine,
    check_deepspeed_config,
    check_engine,
    shard_units,
)
from rscovlm.train.trainer import ListStream, run

torch = pytest.importorskip("torch")

requires_deepspeed = pytest.mark.skipif(
    not is_available("deepspeed"), reason="needs the [deepspeed] extra"
)
WORKER = Path(__file__).with_name("_fsdp_worker.py")


def _config(tmp_path: Path, ckpt: Path, strategy: str = "ddp", **train: Any) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "model": {"path": str(ckpt), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["colours"]}},
            "optim": {"lr": 1e-2, "warmup_ratio": 0.3, "weight_decay": 0.1},
            "train": {
                "max_steps": 4,
                "per_device_batch_size": 2,
                "gradient_accumulation_steps": 2,
                "max_length": 64,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "device": "cpu",
                **train,
            },
            "dist": {"strategy": strategy, "backend": "gloo"},
            "log": {"output_dir": str(tmp_path), "progress": False},
        }
    )


def _torchrun(tmp_path: Path, ckpt: Path, *extra: str) -> list[dict[str, Any]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd += ["2", str(WORKER), str(ckpt), str(tmp_path), *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


def _check_sharded_run(tmp_path: Path, ranks: list[dict[str, Any]], atol: float) -> None:
    seen = [set(r["sharded"]["seen"]) for r in ranks]
    assert len(ranks[0]["sharded"]["seen"]) == 3 * 2 == len(seen[0])  # 3 steps × 2 micro × 1
    images = [[i >= 12 for i in r["sharded"]["seen"]] for r in ranks]  # ids 12-15 have images
    assert not any(images[0][:4] + images[1][:4])  # steps 1-2: text only
    assert images[0][4:] == [True, False] and images[1][4:] == [False, True]
    assert not seen[0] & seen[1]
    assert ranks[0]["sharded"]["seen"] == ranks[0]["ddp"]["seen"]
    losses = ranks[0]["sharded"]["losses"]
    assert ranks[1]["sharded"]["losses"] == losses
    assert losses == pytest.approx(ranks[0]["ddp"]["losses"], rel=1e-5, abs=1e-5)
    assert losses[-1] < losses[0]
    # stop after step 2, resume: the same losses as the uninterrupted run
    assert ranks[0]["split"]["steps"] == 3
    assert ranks[0]["split"]["losses"] == pytest.approx(losses, rel=1e-6, abs=1e-6)
    w = {(n, r): torch.load(tmp_path / f"w_{n}{r}.pt") for n in ("ddp", "sharded") for r in (0, 1)}
    assert w["sharded", 0].keys() == w["ddp", 0].keys()
    for name, value in w["sharded", 0].items():
        assert torch.equal(value, w["sharded", 1][name]), name
        assert torch.allclose(value, w["ddp", 0][name], rtol=0, atol=atol), name


@pytest.mark.integration
def test_torchrun_fsdp_equals_ddp_and_resumes(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """gloo, 2 ranks, FSDP2 over decoder layers and vision blocks: the losses and final
    weights of DDP on the same data (text and, on some steps, images on one rank only), and
    exact resume; the exported model is the gathered one."""
    ranks = _torchrun(tmp_path, tiny_qwen25_dir)
    _check_sharded_run(tmp_path, ranks, atol=2e-5)
    from rscovlm.model import load_checkpoint

    final = load_checkpoint(tmp_path / "sharded" / "final", dtype="float32").model
    gathered = torch.load(tmp_path / "w_sharded0.pt")
    for name, value in final.state_dict().items():
        assert torch.equal(value.double(), gathered[name]), name


def test_shard_units_are_layers_and_vision_blocks(tiny_qwen25: Any) -> None:
    kinds = {type(m).__name__ for m in shard_units(tiny_qwen25.model)}
    assert kinds == {"Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock"}
    layers = tiny_qwen25.model.config.text_config.num_hidden_layers
    blocks = tiny_qwen25.model.config.vision_config.depth
    assert len(shard_units(tiny_qwen25.model)) == layers + blocks


def test_blank_vision_loss_reaches_every_vision_parameter(tiny_qwen25_dir: Path) -> None:
    from rscovlm.model import load_checkpoint
    from rscovlm.train.engines import blank_vision_loss

    model = load_checkpoint(tiny_qwen25_dir, dtype="float32", attn="sdpa").model
    loss = blank_vision_loss(model, torch.device("cpu"))
    assert float(loss.detach()) == 0.0
    loss.backward()
    vision = [(n, p) for n, p in model.named_parameters() if ".visual." in f".{n}"]
    assert vision and all(p.grad is not None and not p.grad.any() for _, p in vision)


def test_fsdp_on_one_process_warns_and_runs_unsharded(tiny_qwen25: Any, tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path, "fsdp")
    with pytest.warns(UserWarning, match="nothing to shard"):
        engine = build_engine(cfg, tiny_qwen25.model, torch.device("cpu"), 0, 1)
    assert type(engine) is DDPEngine and engine.model is tiny_qwen25.model


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_lora_with_sharded_engines_is_refused(tmp_path: Path, strategy: str) -> None:
    cfg = _config(tmp_path, tmp_path, strategy)
    cfg.model.lora.enabled = True
    with pytest.raises(InputError, match=f"dist.strategy {strategy} with model.lora"):
        run(cfg, ListStream([{}]))


# -- DeepSpeed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "precision", "clip", "world", "stage"),
    [
        ("zero1", "bf16", 1.0, 8, 1),
        ("zero2", "fp16", 0.5, 4, 2),
        ("zero3", "fp32", None, 2, 3),
    ],
)
def test_deepspeed_config_is_filled_from_the_run(
    tmp_path: Path, name: str, precision: str, clip: float | None, world: int, stage: int
) -> None:
    cfg = _config(
        tmp_path,
        tmp_path,
        "deepspeed",
        per_device_batch_size=2,
        gradient_accumulation_steps=None,
        global_batch_size=32,
        precision=precision,
    )
    cfg.dist.deepspeed = name
    cfg.optim.max_grad_norm = clip
    ds = deepspeed_config(cfg, world)
    accumulation = 32 // (2 * world)
    assert ds["train_micro_batch_size_per_gpu"] == 2
    assert ds["gradient_accumulation_steps"] == accumulation
    assert ds["train_batch_size"] == 2 * accumulation * world == 32
    assert ds["bf16"]["enabled"] is (precision == "bf16")
    assert ds["fp16"]["enabled"] is (precision == "fp16")
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["gradient_clipping"] == (clip or 0.0)
    assert "optimizer" not in ds and "scheduler" not in ds  # ours are handed to DeepSpeed
    assert "auto" not in json.dumps(ds)
    check_deepspeed_config(ds, cfg, world)


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"optimizer": {"type": "AdamW"}}, "remove the 'optimizer' block"),
        ({"scheduler": {"type": "WarmupLR"}}, "remove the 'scheduler' block"),
        ({"train_batch_size": 64}, "train_batch_size is 64 but the config gives 8"),
        ({"gradient_accumulation_steps": 1}, "gradient_accumulation_steps is 1"),
        ({"bf16": {"enabled": True}}, "bf16.enabled is True but train.precision is fp32"),
        ({"gradient_clipping": 5.0}, "gradient_clipping is 5.0 but the config gives 1.0"),
    ],
)
def test_deepspeed_config_disagreeing_with_the_run_is_refused(
    tmp_path: Path, patch: dict[str, Any], match: str
) -> None:
    base = json.loads(deepspeed_config_path("zero1").read_text(encoding="utf-8"))
    custom = tmp_path / "ds.json"
    custom.write_text(json.dumps({**base, **patch}), encoding="utf-8")
    cfg = _config(tmp_path, tmp_path, "deepspeed")
    cfg.dist.deepspeed = str(custom)
    with pytest.raises(InputError, match=match):
        check_deepspeed_config(deepspeed_config(cfg, 2), cfg, 2)


def test_deepspeed_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # absent even where it is installed
    cfg = _config(tmp_path, tmp_path, "deepspeed")
    with pytest.raises(MissingExtraError, match=r"pip install 'rscovlm\[deepspeed\]'"):
        run(cfg, ListStream([{}]))
    assert not (tmp_path / "config.json").exists()  # failed before loading anything


class _FakeDeepSpeedEngine:
    """The part of ``deepspeed.DeepSpeedEngine`` the loop uses, with its semantics: backward
    divides by the accumulation; ``step`` counts micro-batches and at the boundary clips per
    ``gradient_clipping``, steps optimizer and schedule and zeroes the gradients."""

    def __init__(self, model: Any, optimizer: Any, scheduler: Any, config: dict[str, Any]):
        self.module, self.optimizer, self.scheduler, self.config = (
            model,
            optimizer,
            scheduler,
            config,
        )
        self.micro_steps, self.norm = 0, None
        world = torch.distributed.get_world_size()
        gas, micro = config["gradient_accumulation_steps"], config["train_micro_batch_size_per_gpu"]
        assert config["train_batch_size"] == micro * gas * world  # DeepSpeed asserts this too

    def __call__(self, **kwargs: Any) -> Any:
        return self.module(**kwargs)

    def gradient_accumulation_steps(self) -> int:
        return int(self.config["gradient_accumulation_steps"])

    def is_gradient_accumulation_boundary(self) -> bool:
        return (self.micro_steps + 1) % self.gradient_accumulation_steps() == 0

    def backward(self, loss: Any) -> None:
        (loss / self.gradient_accumulation_steps()).backward()

    def step(self) -> None:
        if self.is_gradient_accumulation_boundary():
            clip = self.config["gradient_clipping"]
            params = self.module.parameters()
            self.norm = float(torch.nn.utils.clip_grad_norm_(params, clip or float("inf")))
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.micro_steps += 1

    def get_global_grad_norm(self) -> float | None:
        return self.norm

    def save_checkpoint(self, save_dir: str, tag: str, save_latest: bool = True) -> None:
        state = {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "micro_steps": self.micro_steps,
        }
        (Path(save_dir) / tag).mkdir(parents=True, exist_ok=True)
        torch.save(state, Path(save_dir) / tag / "state.pt")

    def load_checkpoint(self, load_dir: str, tag: str, **flags: bool) -> tuple[Any, dict]:
        assert flags == {"load_optimizer_states": True, "load_lr_scheduler_states": True}
        path = Path(load_dir) / tag / "state.pt"
        state = torch.load(path, weights_only=False)
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.micro_steps = state["micro_steps"]
        return str(path), {}


def _fake_deepspeed() -> types.ModuleType:
    fake = types.ModuleType("deepspeed")
    fake.__spec__ = importlib.machinery.ModuleSpec("deepspeed", None)  # find_spec() probes it

    def init_distributed(dist_backend: str) -> None:
        torch.distributed.init_process_group(dist_backend, rank=0, world_size=1)

    def initialize(*, model: Any, optimizer: Any, lr_scheduler: Any, config: dict) -> tuple:
        engine = _FakeDeepSpeedEngine(model, optimizer, lr_scheduler, config)
        return engine, optimizer, None, lr_scheduler

    fake.init_distributed = init_distributed  # type: ignore[attr-defined]
    fake.initialize = initialize  # type: ignore[attr-defined]
    return fake


def _samples(tokenizer: Any, n: int) -> list[dict[str, Any]]:
    """Tiny chats whose answer is a fixed function of the question."""
    colours = ["red", "green", "blue", "white"]
    out = []
    for i in range(n):
        prompt = f"<|im_start|>user\nColour {i % 4}?<|im_end|>\n<|im_start|>assistant\n"
        a = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        b = tokenizer(f"{colours[i % 4]}<|im_end|>", add_special_tokens=False)["input_ids"]
        out.append({"input_ids": torch.tensor(a + b), "labels": torch.tensor([-100] * len(a) + b)})
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_deepspeed_engine_drives_the_loop_like_ddp(
    tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a stand-in ``deepspeed`` module (DeepSpeed's accumulation semantics), the loop's
    DeepSpeed wiring gives the single-process losses, and stop at 2 + resume changes nothing."""
    samples = _samples(tiny_qwen25.tokenizer, 12)
    local = run(
        _config(tmp_path / "local", tiny_qwen25_dir, max_steps=3), ListStream(samples, seed=1)
    )
    monkeypatch.setitem(sys.modules, "deepspeed", _fake_deepspeed())
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(InputError, match="needs a launcher"):
        run(_config(tmp_path / "x", tiny_qwen25_dir, "deepspeed"), ListStream(samples))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    try:  # the first run's DeepSpeed set-up initialises a 1-process gloo group; the rest reuse it
        whole = run(
            _config(tmp_path / "ds", tiny_qwen25_dir, "deepspeed", max_steps=3),
            ListStream(samples, 1),
        )
        cfg = _config(tmp_path / "split", tiny_qwen25_dir, "deepspeed", max_steps=3)
        first = run(cfg, ListStream(samples, seed=1), stop_after=2)
        second = run(cfg, ListStream(samples, seed=1))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert whole.losses == pytest.approx(local.losses, rel=1e-6, abs=1e-6)
    assert first.losses + second.losses == pytest.approx(whole.losses, rel=1e-6, abs=1e-6)
    assert (tmp_path / "split" / "checkpoints" / "step_2" / "deepspeed" / "state.pt").is_file()
    log = [json.loads(x) for x in (tmp_path / "ds" / "log.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 0 for r in log)
    assert (tmp_path / "ds" / "final" / "config.json").is_file()


@requires_deepspeed
@pytest.mark.gpu
@pytest.mark.integration
def test_torchrun_deepspeed_zero1_equals_ddp(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """The real thing, where DeepSpeed and 2 GPUs are present: ZeRO-1 against DDP."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices")
    ranks = _torchrun(tmp_path, tiny_qwen25_dir, "deepspeed", "cuda")
    _check_sharded_run(tmp_path, ranks, atol=1e-4)


def test_check_engine_accepts_ddp_and_fsdp(tmp_path: Path) -> None:
    for strategy in ("none", "ddp", "fsdp"):
        check_engine(_config(tmp_path, tmp_path, strategy), 2)
