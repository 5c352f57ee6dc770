"""Run from test_checkpoint_safety.py: train a tiny model with a checkpoint every step, and
kill this process with SIGKILL in the middle of saving step ``kill_at`` (``0``: never).

argv: checkpoint directory, output directory, max steps, kill_at.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

from rscovlm.model import load_tokenizer
from rscovlm.train.config import TrainConfig
from rscovlm.train.trainer import ListStream, run


def samples(ckpt: Path) -> list[dict[str, torch.Tensor]]:
    tok = load_tokenizer(ckpt)
    out = []
    for i in range(16):
        a = tok(f"<|im_start|>user\nColour {i % 4}?<|im_end|>\n<|im_start|>assistant\n")
        b = tok(f"{['red', 'green', 'blue', 'white'][i % 4]}<|im_end|>")
        ids_a, ids_b = a["input_ids"], b["input_ids"]
        out.append({"input_ids": torch.tensor(ids_a + ids_b),
                    "labels": torch.tensor([-100] * len(ids_a) + ids_b)})  # fmt: skip
    return out


def main() -> None:
    ckpt, out, max_steps, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:5])
    real_save = torch.save

    def dying_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        if kill_at and f"step_{kill_at}" in str(f):
            with open(str(f), "wb") as handle:  # half a file, then the kill
                handle.write(b"PK\x03\x04 torn")
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(obj, f, *args, **kwargs)

    torch.save = dying_save
    cfg = TrainConfig.model_validate(
        {
            "model": {"path": str(ckpt), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["colours"]}},
            "optim": {"lr": 1e-2, "warmup_ratio": 0.0, "weight_decay": 0.0},
            "train": {"max_steps": max_steps, "per_device_batch_size": 2, "max_length": 64,
                      "precision": "fp32", "gradient_checkpointing": False, "device": "cpu",
                      "save_every": 1, "keep_last": 1},
            "dist": {"backend": "gloo"},
            "log": {"output_dir": str(out), "progress": False},
        }
    )  # fmt: skip
    # --resume: the planted-pickle test extends a 1-step run to 2 (a changed max_steps)
    run(cfg, ListStream(samples(ckpt), seed=1), resume=True)


if __name__ == "__main__":
    main()
