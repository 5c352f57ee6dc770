"""Run by ``torchrun --nproc_per_node 1`` from test_engines.py: DeepSpeed fp16 (ZeRO-1) whose
initial loss scale (2^24) overflows the first steps, so DeepSpeed skips their optimizer and
schedule steps while it halves the scale.

argv: checkpoint directory, output directory. Writes ``result.json`` (steps, losses) beside
the run's ``log.jsonl``.

This CPU has no fast (mkldnn) fp16 kernels, so DeepSpeed's CPU accelerator reports fp16 as
unsupported and refuses the config; torch still runs fp16 on the CPU, so the report is
overridden here — DeepSpeed's fp16 optimizer, loss scaler and overflow check are the real ones.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from rscovlm.model import load_tokenizer
from rscovlm.train.config import TrainConfig, deepspeed_config_path
from rscovlm.train.trainer import ListStream, run


def main() -> None:
    ckpt, out = Path(sys.argv[1]), Path(sys.argv[2])
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before deepspeed is first imported
    from deepspeed.accelerator import get_accelerator

    type(get_accelerator()).is_fp16_supported = lambda self: True  # see the module docstring
    ds = json.loads(deepspeed_config_path("zero1").read_text(encoding="utf-8"))
    ds["fp16"] = {"enabled": "auto", "initial_scale_power": 24, "hysteresis": 1}
    (out / "ds.json").write_text(json.dumps(ds), encoding="utf-8")
    tokenizer = load_tokenizer(ckpt)
    samples = []
    for i in range(64):
        a = tokenizer(f"<|im_start|>user\nItem {i}<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
        b = tokenizer(f"answer {i % 3}<|im_end|>")["input_ids"]
        samples.append(
            {"input_ids": torch.tensor(a + b), "labels": torch.tensor([-100] * len(a) + b)}
        )
    cfg = TrainConfig.model_validate(
        {
            "model": {"path": str(ckpt), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["items"]}},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.75},  # warmup 2 steps: lr 5e-4, then 1e-3
            "train": {
                "max_steps": 2,
                "per_device_batch_size": 1,
                "gradient_accumulation_steps": 1,
                "max_length": 64,
                "precision": "fp16",
                "gradient_checkpointing": False,
                "device": "cpu",
            },
            "dist": {"strategy": "deepspeed", "deepspeed": str(out / "ds.json"), "backend": "gloo"},
            "log": {"output_dir": str(out / "run"), "progress": False},
        }
    )
    result = run(cfg, ListStream(samples, seed=0))
    (out / "result.json").write_text(
        json.dumps({"steps": result.steps, "losses": result.losses}), encoding="utf-8"
    )
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
