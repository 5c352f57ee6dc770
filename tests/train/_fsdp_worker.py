"""Run by ``torchrun --nproc_per_node 2`` from test_engines.py and
``benchmarks/sharded_parity.py``: the same run under DDP and under sharded engines, and each
sharded run stopped at step 2 then resumed.

argv: checkpoint directory, output directory[, sharded engines, comma-separated (``fsdp`` |
``zero1`` | ``zero2`` | ``zero3`` | ``ddp``; ``deepspeed`` is ``zero1``), device (``cpu`` |
``cuda``), weight decay (default 0.1)]. The data mixes text-only samples with a few samples
with images, so some micro-batches have images on one rank only (the blank vision pass keeps
the ranks in lockstep). DDP runs once, as the reference. Each rank writes ``rank<r>.json``
(samples seen and losses of every run: ``ddp``, ``<engine>``, ``<engine>_split``; with
``zero3``, ``zero3_loaded``: parameter elements of its freshly loaded model) and
``w_<run><r>.pt`` (its full final weights, gathered where the engine shards them); rank 0's
``<run>/log.jsonl`` has the grad norms, ``<run>/final`` the exported model.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from rscovlm.model import load_checkpoint
from rscovlm.train.config import TrainConfig
from rscovlm.train.engines import partitioned_loading
from rscovlm.train.trainer import ListStream, build_model, run

SEED = 31
"""Stream seed whose order has text only in steps 1–2 (so the vision tower has no optimizer
state at the step-2 checkpoint) and, in step 3, an image on rank 0 only in the first
micro-batch and on rank 1 only in the second."""


class RecordingStream(ListStream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[int] = []

    def __iter__(self) -> Any:
        for sample in super().__iter__():
            self.seen.append(int(sample["sample_id"]))
            yield {k: v for k, v in sample.items() if k != "sample_id"}


def _samples(ckpt: Path) -> list[dict[str, Any]]:
    from rscovlm.data.conversation import Conversation, Message, TextPart
    from rscovlm.model.encoding import encode, image_part
    from rscovlm.resolution import PixelBand, get_family

    loaded = load_checkpoint(ckpt, dtype="float32", device="cpu", attn="sdpa")
    tokenizer = loaded.tokenizer
    samples = []
    for i in range(12):
        a = tokenizer(f"<|im_start|>user\nItem {i}<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
        b = tokenizer(f"answer {i % 3}<|im_end|>")["input_ids"]
        samples.append(
            {"input_ids": torch.tensor(a + b), "labels": torch.tensor([-100] * len(a) + b)}
        )
    band = PixelBand(4 * 28 * 28, 8 * 28 * 28)
    rng = np.random.default_rng(0)
    for i in range(4):
        size = (56, 56 + 28 * (i % 2))
        conv = Conversation(
            [
                Message("user", (image_part("img.png", size, band), TextPart(f"Scene {i}?"))),
                Message("assistant", (TextPart(f"scene {i % 2}"),)),
            ],
            get_family("qwen2_5_vl"),
        )
        encoded = encode(
            [conv],
            tokenizer,
            loaded.image_processor,
            images=[[rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)]],
            add_generation_prompt=False,
            labels=True,
            padding_side="right",
        )
        samples.append({k: v for k, v in encoded.inputs.items() if k != "attention_mask"})
    return [{**s, "sample_id": i} for i, s in enumerate(samples)]


def _config(
    ckpt: Path, out: Path, engine: str, device: str = "cpu", weight_decay: float = 0.1
) -> TrainConfig:
    strategy, stage = ("deepspeed", engine) if engine.startswith("zero") else (engine, "zero1")
    return TrainConfig.model_validate(
        {
            "model": {"path": str(ckpt), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["items"]}},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0, "weight_decay": weight_decay},
            "train": {
                "max_steps": 3,
                "per_device_batch_size": 1,
                "global_batch_size": 4,  # 2 micro-batches per rank and step
                "max_length": 128,
                "packing": True,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "device": device,
            },
            "dist": {
                "strategy": strategy,
                "deepspeed": stage,
                "backend": "gloo" if device == "cpu" else "auto",
            },
            "log": {"output_dir": str(out), "progress": False},
        }
    )


def _full_weights(model: Any, engine: str) -> dict[str, Any]:
    """Every rank's copy of the whole model (collective where the engine shards it)."""
    if engine == "fsdp":
        weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    elif engine == "zero3":
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            weights = {k: v.clone() for k, v in model.state_dict().items()}
    else:
        weights = model.state_dict()
    return {k: v.detach().double().cpu() for k, v in weights.items()}


def main() -> None:
    ckpt, out = Path(sys.argv[1]), Path(sys.argv[2])
    engines = (sys.argv[3] if len(sys.argv) > 3 else "fsdp").split(",")
    engines = ["zero1" if e == "deepspeed" else e for e in engines]
    device = sys.argv[4] if len(sys.argv) > 4 else "cpu"
    decay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
    if device == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before deepspeed is first imported
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    samples = _samples(ckpt)
    record: dict[str, Any] = {}

    if "zero3" in engines:  # how the ZeRO-3 run's model comes out of loading
        cfg = _config(ckpt, out / "zero3", "zero3", device, decay)
        with partitioned_loading(cfg, world, torch.device(device)):
            params = list(build_model(cfg, torch.device(device)).model.parameters())
        record["zero3_loaded"] = {
            "local": sum(p.numel() for p in params),
            "shard": sum(p.ds_tensor.numel() for p in params if hasattr(p, "ds_tensor")),
            "full": sum(getattr(p, "ds_numel", p.numel()) for p in params),
        }
        del params

    def stream() -> RecordingStream:
        return RecordingStream(samples, seed=SEED, rank=rank, world_size=world)

    for name in ("ddp", *engines):
        if name in record:
            continue
        data = stream()
        result = run(_config(ckpt, out / name, name, device, decay), data)
        torch.save(_full_weights(result.model, name), out / f"w_{name}{rank}.pt")
        record[name] = {"seen": data.seen, "losses": result.losses}
    for name in engines:
        cfg = _config(ckpt, out / f"{name}_split", name, device, decay)
        first = run(cfg, stream(), stop_after=2)
        second = run(cfg, stream())
        torch.save(_full_weights(second.model, name), out / f"w_{name}_split{rank}.pt")
        record[f"{name}_split"] = {"losses": first.losses + second.losses, "steps": second.steps}
    (out / f"rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
