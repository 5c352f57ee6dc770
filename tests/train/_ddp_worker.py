"""Run by ``torchrun --nproc_per_node 2`` from test_trainer.py: a few gloo steps per rank.

argv: checkpoint directory, output directory. Each rank writes ``rank<r>.json`` with the
sample ids it saw and a checksum of its final weights.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from rscovlm.model import load_tokenizer
from rscovlm.train.config import TrainConfig
from rscovlm.train.trainer import ListStream, run


class RecordingStream(ListStream):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[int] = []

    def __iter__(self):
        for sample in super().__iter__():
            self.seen.append(int(sample["sample_id"]))
            yield {k: v for k, v in sample.items() if k != "sample_id"}


def main() -> None:
    ckpt, out = Path(sys.argv[1]), Path(sys.argv[2])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    tokenizer = load_tokenizer(ckpt)
    samples = []
    for i in range(16):
        a = tokenizer(f"<|im_start|>user\nItem {i}<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
        b = tokenizer(f"answer {i % 3}<|im_end|>")["input_ids"]
        samples.append(
            {
                "input_ids": torch.tensor(a + b),
                "labels": torch.tensor([-100] * len(a) + b),
                "sample_id": i,
            }
        )
    cfg = TrainConfig.model_validate(
        {
            "model": {"path": str(ckpt), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["items"]}},
            "optim": {"lr": 1e-2, "warmup_ratio": 0.0},
            "train": {
                "max_steps": 3,
                "per_device_batch_size": 2,
                "global_batch_size": 4,
                "max_length": 64,
                "packing": True,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "device": "cpu",
            },
            "dist": {"backend": "gloo"},
            "log": {"output_dir": str(out / "run"), "progress": False},
        }
    )
    stream = RecordingStream(samples, seed=0, rank=rank, world_size=world)
    result = run(cfg, stream)
    # this rank's own live weights (rank 0 alone saves the checkpoint)
    weights = {k: v.detach().double() for k, v in result.model.state_dict().items()}
    torch.save(weights, out / f"weights{rank}.pt")
    (out / f"rank{rank}.json").write_text(
        json.dumps({"seen": stream.seen, "losses": result.losses}),
        encoding="utf-8",
    )
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
