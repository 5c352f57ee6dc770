"""Training throughput: packed rows against padded batches.

Workload (seeded): the tiny Qwen2.5-VL (real vocabulary, random weights) trained on CPU on
variable-length samples of the synthetic scenes — scene classification (~60 tokens), VQA and
quad detection (a few hundred tokens) — rendered by the real policy (random resize within the
band) and encoded by the shared encoder, so lengths vary several-fold inside a micro-batch.

Measured, in the same process and run, with the same model, the same samples in the same order
and the same micro-batches (``--batch`` samples each):

- **padding**: :func:`~rscovlm.train.collate.pad_collate`, one row per sample, right-padded to
  the longest (the paper's collation);
- **packing**: :func:`~rscovlm.train.collate.pack_collate`, samples first-fit into rows of
  ``--budget`` tokens, each isolated by its own positions (block-diagonal attention).

Each is the real training loop (:func:`rscovlm.train.trainer.run`: collate, forward, backward,
clip, AdamW step) for ``--steps`` optimizer steps; the figure is the median of the per-step real
(non-pad) tokens per second logged by the trainer, the first step left out. The two modes
alternate ``--repeats`` times and the best of each is kept (the machine is shared). The ratio
packing / padding is printed with the padding fraction of each.

The same micro-batches are also timed through collate + forward + backward alone (no optimizer
step), which isolates what packing changes. With the tiny model a step is dominated by costs
that do not depend on pad tokens (AdamW over the 151k-row tied embedding, the vision tower,
per-sample rope indices), so expect a ratio near 1 here; ``--hidden``/``--layers`` widen the
LLM.

Run: ``.venv/bin/python benchmarks/train_packing.py [--scenes 24] [--steps 12] [--batch 8]
[--hidden 64] [--layers 2]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any


def make_samples(root: Path, loaded: Any, scenes: int, seed: int) -> list[dict[str, Any]]:
    """Encoded samples of seeded synthetic scenes, every task, in a shuffled mixture order."""
    from rscovlm.data.loader import ConversationLoader, ListStore
    from rscovlm.data.mixture import Mixture, MixtureEntry
    from rscovlm.data.policy import RenderPolicy
    from rscovlm.data.record import Record
    from rscovlm.data.sources.synthetic import iter_synthetic_records
    from rscovlm.imaging import image_size
    from rscovlm.train.tokenize import encode_sample

    records = [
        r
        for r in iter_synthetic_records(root, "synthetic", n=scenes, size=256, seed=seed)
        if isinstance(r, Record)
    ]
    for rec in records:
        for ref in rec.images:
            ref.width, ref.height = image_size(root / ref.path)
        rec.meta.setdefault("class_list", "dota1.0")
    store = ListStore(records)
    mixture = Mixture([MixtureEntry("synthetic", 1.0)], store.sizes(), seed=seed)
    policy = RenderPolicy(
        defaults={"min_pixels": 16 * 28 * 28, "max_pixels": 64 * 28 * 28},
        tasks={
            "detection": {"random_resize_prob": 1.0, "box_kind": "quad"},
            "classification": {
                "classes": ["airport", "industrial_area", "parking_lot", "sports_ground"]
            },
        },
    )
    loader = ConversationLoader(mixture, store, policy, root)
    return [
        encode_sample(s, loaded.tokenizer, loaded.image_processor, "qwen2_5_vl") for s in loader
    ]


def train_once(
    checkpoint: Path, samples: list[dict[str, Any]], out: Path, packing: bool, args: Any
) -> tuple[float, float]:
    """(median real tokens/s over steps 2…, mean padding fraction) of one training run."""
    from rscovlm.train.config import TrainConfig
    from rscovlm.train.trainer import ListStream, run

    cfg = TrainConfig.model_validate(
        {
            "model": {"path": str(checkpoint), "dtype": "float32", "attn": "sdpa"},
            "data": {"mixture": {"datasets": ["bench"]}},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
            "train": {
                "max_steps": args.steps,
                "per_device_batch_size": args.batch,
                "gradient_accumulation_steps": 1,
                "max_length": args.budget,
                "packing": packing,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "device": "cpu",
            },
            "dist": {"backend": "gloo"},
            "log": {"output_dir": str(out), "progress": False},
        }
    )
    run(cfg, ListStream(samples, seed=args.seed))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_s"] for r in log[1:]]
    padding = statistics.fmean(r["padding_fraction"] for r in log)
    return statistics.median(speeds), padding


def forward_backward(loaded: Any, samples: list[dict[str, Any]], packing: bool, args: Any) -> float:
    """Real tokens/s of collate + forward + backward alone (no optimizer), same micro-batches."""
    import time

    import torch

    from rscovlm.train.collate import IGNORE_INDEX, add_packed_positions, pack_collate, pad_collate

    model = loaded.model.train()
    tokens, seconds = 0, 0.0
    for start in range(0, args.steps * args.batch, args.batch):
        group = samples[start : start + args.batch]
        began = time.perf_counter()
        if packing:
            batch = add_packed_positions(model, pack_collate(group, args.budget))
        else:
            batch = pad_collate(group, max_length=args.budget)
        inputs = dict(batch.inputs)
        labels = inputs.pop("labels")
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        logits = model(**inputs, logits_to_keep=keep).logits
        loss = torch.nn.functional.cross_entropy(logits, labels[:, 1:][keep[:, :-1]])
        loss.backward()
        model.zero_grad(set_to_none=True)
        if start:  # the first micro-batch warms up
            seconds += time.perf_counter() - began
            tokens += batch.num_tokens
    return tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=24, help="synthetic scenes (all tasks)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--batch", type=int, default=8, help="samples per micro-batch")
    parser.add_argument("--budget", type=int, default=2048, help="tokens per packed row")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each mode")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--hidden", type=int, default=64, help="LLM width (tiny default 64)")
    parser.add_argument("--layers", type=int, default=2, help="LLM layers (tiny default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from rscovlm.model import build_tiny_model, load_checkpoint
    from rscovlm.model.tiny import TinySpec

    torch.set_num_threads(args.threads)
    spec = TinySpec(
        hidden_size=args.hidden, intermediate_size=2 * args.hidden, num_layers=args.layers
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        checkpoint = build_tiny_model("qwen2_5_vl", base / "tiny", seed=args.seed, spec=spec)
        loaded = load_checkpoint(checkpoint, dtype="float32", device="cpu", attn="sdpa")
        samples = make_samples(base / "data", loaded, args.scenes, args.seed)
        lengths = sorted(int(s["input_ids"].shape[-1]) for s in samples)
        usable = [s for s in samples if int(s["input_ids"].shape[-1]) <= args.budget]
        print(
            f"{len(samples)} samples, tokens min {lengths[0]} median "
            f"{lengths[len(lengths) // 2]} max {lengths[-1]}; {len(usable)} within the budget "
            f"{args.budget}; {args.steps} steps of {args.batch} samples; "
            f"LLM {args.layers}×{args.hidden}; {torch.get_num_threads()} thread(s)"
        )
        alone = {"padding": 0.0, "packing": 0.0}
        for _ in range(args.repeats):
            for mode in ("padding", "packing"):
                speed = forward_backward(loaded, usable, mode == "packing", args)
                alone[mode] = max(alone[mode], speed)
        best = {"padding": (0.0, 0.0), "packing": (0.0, 0.0)}
        for repeat in range(args.repeats):
            for mode in ("padding", "packing"):
                out = base / f"{mode}{repeat}"
                speed, pad = train_once(checkpoint, usable, out, mode == "packing", args)
                print(f"  {mode:8s} run {repeat + 1}: {speed:8.0f} tokens/s, padding {pad:.1%}")
                if speed > best[mode][0]:
                    best[mode] = (speed, pad)
    (pad_speed, pad_frac), (pack_speed, pack_frac) = best["padding"], best["packing"]
    print(f"padding: {pad_speed:8.0f} real tokens/s (padding fraction {pad_frac:.1%})")
    print(f"packing: {pack_speed:8.0f} real tokens/s (padding fraction {pack_frac:.1%})")
    print(f"ratio packing / padding: {pack_speed / pad_speed:.2f}x (whole training step)")
    print(
        f"forward+backward alone: padding {alone['padding']:.0f}, packing "
        f"{alone['packing']:.0f} tokens/s, ratio {alone['packing'] / alone['padding']:.2f}x"
    )


if __name__ == "__main__":
    main()
