"""Engines: FSDP2 and DeepSpeed ZeRO-1/2/3 under torchrun on CPU/gloo against DDP (mixed
text/image micro-batches with accumulation: losses, grad norms, weights, exact resume, export),
the ``deepspeed`` launcher, DeepSpeed's filled config and refusals, the missing-extra error.
The DeepSpeed tests run the real engine (``DS_ACCELERATOR=cpu``; the first run JIT-builds a
small comm op, cached in ``~/.cache/torch_extensions``) and are skipped where the
``[deepspeed]`` extra is not installed."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rscovlm.errors import InputError, MissingExtraError
from rscovlm.train.config import TrainConfig, deepspeed_config, deepspeed_config_path
from rscovlm.train.engines import (
    DDPEngine,
    build_engine,
    check_deepspeed_config,
    check_engine,
    shard_units,
)
from rscovlm.train.trainer import ListStream, module_of, run

torch = pytest.importorskip("torch")

requires_deepspeed = pytest.mark.skipif(  # found, not imported: collection stays fast
    importlib.util.find_spec("deepspeed") is None, reason="needs the [deepspeed] extra"
)
WORKER = Path(__file__).with_name("_fsdp_worker.py")
FP16_WORKER = Path(__file__).with_name("_ds_fp16_worker.py")


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


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DS_ACCELERATOR": "cpu",  # DeepSpeed on the CPU (ignored by the cuda runs' devices)
    }


def _torchrun(tmp_path: Path, ckpt: Path, *extra: str, timeout: float = 240) -> list[Any]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd += ["2", str(WORKER), str(ckpt), str(tmp_path), *extra]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


def _log(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]


def _check_sharded_run(
    tmp_path: Path,
    ranks: list[dict[str, Any]],
    engine: str,
    atol: float,
    untouched_atol: float | None = None,
    *,
    norm_rel: float = 1e-5,
) -> None:
    """``engine`` against DDP on the worker's data; ``untouched_atol``: the bound for the
    vision tower and merger, which get no gradient on any rank in steps 1–2 (text only)."""
    seen = [set(r[engine]["seen"]) for r in ranks]
    assert len(ranks[0][engine]["seen"]) == 3 * 2 == len(seen[0])  # 3 steps × 2 micro × 1
    images = [[i >= 12 for i in r[engine]["seen"]] for r in ranks]  # ids 12-15 have images
    assert not any(images[0][:4] + images[1][:4])  # steps 1-2: text only
    assert images[0][4:] == [True, False] and images[1][4:] == [False, True]
    assert not seen[0] & seen[1]
    assert ranks[0][engine]["seen"] == ranks[0]["ddp"]["seen"]
    losses = ranks[0][engine]["losses"]
    assert ranks[1][engine]["losses"] == losses
    assert losses == pytest.approx(ranks[0]["ddp"]["losses"], rel=1e-5, abs=1e-5)
    assert losses[-1] < losses[0]
    # the gradients of DDP, step 3 included (where the ranks' images are in different
    # micro-batches: wrongly ordered buckets gave 3.63 / 3.30 instead of 4.23 under ZeRO-1/2)
    norms = [r["grad_norm"] for r in _log(tmp_path / engine)]
    reference = [r["grad_norm"] for r in _log(tmp_path / "ddp")]
    assert norms == pytest.approx(reference, rel=norm_rel)
    # stop after step 2, resume: the same losses and weights as the uninterrupted run
    assert ranks[0][f"{engine}_split"]["steps"] == 3
    assert ranks[0][f"{engine}_split"]["losses"] == pytest.approx(losses, rel=1e-6, abs=1e-6)
    w = {(n, r): torch.load(tmp_path / f"w_{n}{r}.pt") for n in ("ddp", engine) for r in (0, 1)}
    split = torch.load(tmp_path / f"w_{engine}_split0.pt")
    assert w[engine, 0].keys() == w["ddp", 0].keys() == split.keys()
    for name, value in w[engine, 0].items():
        assert torch.equal(value, w[engine, 1][name]), name
        assert torch.equal(split[name], value), name
        untouched = untouched_atol is not None and module_of(name) != "llm"
        bound = untouched_atol if untouched else atol
        assert torch.allclose(value, w["ddp", 0][name], rtol=0, atol=bound), name


@pytest.mark.integration
def test_torchrun_fsdp_equals_ddp_and_resumes(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """gloo, 2 ranks, FSDP2 over decoder layers and vision blocks: the losses, grad norms and
    final weights of DDP on the same data (text and, on some steps, images on one rank only),
    and exact resume; the exported model is the gathered one."""
    ranks = _torchrun(tmp_path, tiny_qwen25_dir, "fsdp")
    _check_sharded_run(tmp_path, ranks, "fsdp", atol=2e-5)
    from rscovlm.model import load_checkpoint

    final = load_checkpoint(tmp_path / "fsdp" / "final", dtype="float32").model
    gathered = torch.load(tmp_path / "w_fsdp0.pt")
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Tolerances against DDP, per ZeRO stage: (grad norms relative, weights that get a gradient
# on every step, vision tower + merger). DeepSpeed's optimizer steps whole flattened
# partitions: a parameter that got no gradient on any rank (vision tower and merger in the
# worker's text-only steps 1-2) is weight-decayed in steps 1-2 and its Adam step counter
# reaches 3, where torch's AdamW under DDP skips it (grad None) and takes its first Adam step
# at step 3. At step 3 (lr 2.5e-4 of the cosine over 3 steps from 1e-3) DDP's update is
# lr·m̂/√v̂ = lr (t = 1), DeepSpeed's 0.369/√0.333·lr = 0.64·lr (t = 3, zero moments before):
# 0.36 × 2.5e-4 = 9e-5, plus the decay of steps 1-2, 0.1 × (1e-3 + 7.5e-4) × |w| ≤ 1.5e-5
# (the decayed, 2-D weights of the tiny model have |w| < 0.09): 1.05e-4, as ZeRO-1/2 measure.
# DeepSpeed's norm is the root of fp32 partition sums of squares (torch's: a norm of
# per-tensor norms): 3e-6 relative apart at step 1, 1.3e-5 by step 3 on this data. ZeRO-3
# reduces each micro-batch's gradients before accumulating them (DDP accumulates, then
# reduces): rounding differs at 1e-7, and Adam's first steps (update ≈ lr·sign(g)) turn that
# into up to a whole update on elements whose gradient nearly cancels (measured: norms 2e-5
# relative, 2.1e-5 on the language model, 2.2e-4 on the merger). The wrong gradients these
# guard against were 14-22 % off in the step-3 grad norm (and moved the vision tower by 4.2e-4).
DEEPSPEED_TOLERANCES = {
    "zero1": (5e-5, 2e-5, 1.5e-4),
    "zero2": (5e-5, 2e-5, 1.5e-4),
    "zero3": (1e-4, 5e-5, 3e-4),
}


@requires_deepspeed
@pytest.mark.integration
def test_torchrun_deepspeed_zero123_equal_ddp_and_resume(
    tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    """The real DeepSpeed engine, ZeRO-1, 2 and 3, 2 CPU ranks, accumulation 2, images on one
    rank only in different micro-batches: the losses and grad norms of DDP, its weights (within
    the bounds above), exact resume; ZeRO-3 loads partitioned and exports the consolidated
    model."""
    ranks = _torchrun(tmp_path, tiny_qwen25_dir, "zero1,zero2,zero3", timeout=600)
    for engine, (norm_rel, atol, untouched_atol) in DEEPSPEED_TOLERANCES.items():
        _check_sharded_run(tmp_path, ranks, engine, atol, untouched_atol, norm_rel=norm_rel)
        ckpt = tmp_path / f"{engine}_split" / "checkpoints" / "step_2" / "deepspeed"
        assert ckpt.is_dir(), engine  # DeepSpeed's own layout
    # ZeRO-3 loads partitioned (zero.Init): each rank allocated only its half, never the model
    loaded = [r["zero3_loaded"] for r in ranks]
    assert loaded[0]["local"] == loaded[1]["local"] == 0
    assert loaded[0]["shard"] + loaded[1]["shard"] >= loaded[0]["full"] > 0
    assert max(r["shard"] for r in loaded) < 0.51 * loaded[0]["full"]
    from rscovlm.model import load_checkpoint

    final = load_checkpoint(tmp_path / "zero3" / "final", dtype="float32").model
    gathered = torch.load(tmp_path / "w_zero30.pt")
    assert final.state_dict().keys() == gathered.keys()
    for name, value in final.state_dict().items():
        assert torch.equal(value.double(), gathered[name]), name


@requires_deepspeed
@pytest.mark.integration
def test_deepspeed_launcher_trains_through_the_cli(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """``deepspeed --num_gpus 2 --module rscovlm train ...`` on CPU ranks (LOCAL_SIZE: the CPU
    accelerator's device count): the launcher passes ``--local_rank`` before ``train``; the
    shipped tiny_cpu config, on ZeRO-2, trains a step and exports."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: tiny\nroot: .\nsources:\n  - name: synthetic\n    adapter: synthetic\n"
        "    path: synthetic\n    classes: dota1.0\n    options: {n: 4, size: 256, seed: 0}\n",
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2"]
    cmd += ["--master_port", str(_free_port()), "--module", "rscovlm", "train", "tiny_cpu"]
    cmd += [
        f"model.path={tiny_qwen25_dir}",
        f"data.build_recipe={recipe}",
        f"data.built={tmp_path / 'data'}",
        f"log.output_dir={tmp_path / 'run'}",
        "log.progress=false",
        "train.max_steps=1",
        "train.per_device_batch_size=1",
        "train.global_batch_size=2",
        "dist.strategy=deepspeed",
        "dist.deepspeed=zero2",
    ]
    env = {**_env(), "LOCAL_SIZE": "2"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "--local_rank=0" in done.stdout + done.stderr  # what the launcher appended
    assert "trained 1 steps" in done.stdout
    log = _log(tmp_path / "run")
    assert [r["step"] for r in log] == [1] and log[0]["samples"] == 2
    assert log[0]["grad_norm"] > 0 and log[0]["skipped_steps"] == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


@requires_deepspeed
@pytest.mark.integration
def test_deepspeed_fp16_overflow_steps_are_not_counted(
    tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    """fp16 with a 2^24 initial loss scale: DeepSpeed skips the overflowing steps (no update, no
    schedule step) while it halves the scale; the loop logs them as skipped and does not count
    them, so the 2 steps of the run are 2 applied updates on the schedule's first 2 lrs."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd += ["1", str(FP16_WORKER), str(tiny_qwen25_dir), str(tmp_path)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    log = _log(tmp_path / "run")
    applied = [r for r in log if not r.get("skipped")]
    assert log[0].get("skipped")  # 2^24 × the loss gradient overflows fp16 for sure
    assert [r["step"] for r in applied] == [1, 2]
    assert [r["lr"] for r in applied] == pytest.approx([5e-4, 1e-3])
    done_steps, skipped = 0, 0
    for record in log:
        skipped += bool(record.get("skipped"))
        assert record["skipped_steps"] == skipped  # DeepSpeed's count, as the loop saw it
        if record.get("skipped"):  # the schedule did not move: the next step's lr
            assert record["step"] == done_steps
            assert record["lr"] == pytest.approx(applied[done_steps]["lr"])
        else:
            done_steps += 1
            assert record["step"] == done_steps and record["grad_norm"] > 0
    assert result == {"steps": 2, "losses": [r["loss"] for r in applied]}
    assert (tmp_path / "run" / "final" / "config.json").is_file()


@requires_deepspeed
def test_deepspeed_without_a_launcher_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(InputError, match="needs a launcher"):
        run(_config(tmp_path, tmp_path, "deepspeed"), ListStream([{}]))
    assert not (tmp_path / "config.json").exists()


@requires_deepspeed
@pytest.mark.gpu
@pytest.mark.integration
def test_torchrun_deepspeed_zero1_equals_ddp_on_cuda(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    """ZeRO-1 against DDP where 2 GPUs are present (nccl)."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices")
    ranks = _torchrun(tmp_path, tiny_qwen25_dir, "zero1", "cuda")
    _check_sharded_run(tmp_path, ranks, "zero1", atol=1e-4, untouched_atol=2e-4)


def test_check_engine_accepts_ddp_and_fsdp(tmp_path: Path) -> None:
    for strategy in ("none", "ddp", "fsdp"):
        check_engine(_config(tmp_path, tmp_path, strategy), 2)
