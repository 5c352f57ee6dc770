"""Sharded engines against DDP on mixed text/image micro-batches (a correctness table, not speed).

Workload: ``tests/train/_fsdp_worker.py`` under ``torchrun --nproc_per_node 2`` on CPU/gloo —
the tiny Qwen2.5-VL (seed 0), 3 optimizer steps of 2 micro-batches per rank, text-only in
steps 1–2 and, in step 3, an image on rank 0 only in micro-batch 1 and on rank 1 only in
micro-batch 2 (the case where the blank vision pass decides the order of collectives and
gradient buckets). Each engine's run is compared with the DDP run of the same worker:

- **step-3 grad norm**: the pre-clip global norm the trainer logs (DDP: 4.23);
- **max |Δw| vs DDP**: over every weight after step 3 (rank 0's gathered copy);
- **resume exact?**: stop after step 2, resume, finish — the same losses and bit-identical
  weights as the uninterrupted run of the same engine.

Each engine runs in its own launch (beside its own DDP reference), so a hang or crash of one
does not hide the others. A run that does not finish within ``--timeout`` seconds is reported
as a hang (ZeRO-3 hung here before the blank pass moved into the input embedding's forward
hook). DeepSpeed runs on the CPU with ``DS_ACCELERATOR=cpu``; its first run JIT-builds a small
comm op (~80 s, cached in ``~/.cache/torch_extensions``).

The DeepSpeed rows differ from DDP by ~1e-4 in the vision tower and merger (the language
model agrees to ~1e-6, ZeRO-3 to ~2e-5) because DeepSpeed's optimizer steps its flattened
partitions whole: parameters that got no gradient on any rank in the text-only steps 1–2 are
weight-decayed and advance Adam's step counter, where torch's AdamW under DDP skips them.
``--weight-decay 0`` removes only the decay part: Adam's bias correction at step 3 (t = 3
instead of 1) still leaves ~9e-5 (measured 9.1e-5 on ZeRO-1 and ZeRO-3).

Run: ``.venv/bin/python benchmarks/sharded_parity.py [--engines ddp fsdp zero1 zero2 zero3]
[--weight-decay 0.1] [--timeout 400]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "train" / "_fsdp_worker.py"


def launch(ckpt: Path, out: Path, engine: str, decay: float, timeout: float) -> str | None:
    """Run the worker for ``engine``; ``None`` on success, else what went wrong."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DS_ACCELERATOR": "cpu",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd += ["2", str(WORKER), str(ckpt), str(out), engine, "cpu", str(decay)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        text, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        import psutil

        # the ranks (torchrun starts them in their own sessions), then the launcher
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.communicate()
        return f"hangs (> {timeout:.0f} s)"
    if proc.returncode:
        return "fails: " + text.decode(errors="replace").strip().splitlines()[-1][:80]
    return None


def grad_norms(run_dir: Path) -> list[float]:
    return [
        json.loads(line)["grad_norm"] for line in (run_dir / "log.jsonl").read_text().splitlines()
    ]


def measure(out: Path, engine: str) -> dict[str, Any]:
    """Step-3 grad norms, max |Δw| vs DDP and resume exactness from the worker's files."""
    import torch

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    w = {n: torch.load(out / f"w_{n}0.pt") for n in ("ddp", engine, f"{engine}_split")}
    delta = max(float((v - w["ddp"][k]).abs().max()) for k, v in w[engine].items())
    exact = ranks[0][f"{engine}_split"]["losses"] == ranks[0][engine]["losses"] and all(
        torch.equal(v, w[engine][k]) for k, v in w[f"{engine}_split"].items()
    )
    return {
        "ddp_norm": grad_norms(out / "ddp")[2],
        "norm": grad_norms(out / engine)[2],
        "delta": delta,
        "exact": exact,
        "ranks_agree": ranks[0][engine]["losses"] == ranks[1][engine]["losses"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", nargs="+", default=["ddp", "fsdp", "zero1", "zero2", "zero3"])
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=400.0)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the runs here.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from rscovlm.model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        ckpt = build_tiny_model("qwen2_5_vl", root / "tiny", seed=0, cache_dir=root / "tok")
        print(f"weight_decay {args.weight_decay}; rank 0's weights after 3 steps vs DDP's")
        print("| engine | step-3 grad norm | max abs dw vs DDP | resume exact? |")
        print("|---|---|---|---|")
        for engine in args.engines:
            out = root / engine
            failure = launch(ckpt, out, engine, args.weight_decay, args.timeout)
            if failure is not None:
                print(f"| {engine} | {failure} | – | – |", flush=True)
                continue
            m = measure(out, engine)
            norm = f"{m['norm']:.5f} (DDP {m['ddp_norm']:.5f})"
            agree = "" if m["ranks_agree"] else " (ranks disagree!)"
            exact = "yes" if m["exact"] else "no"
            print(f"| {engine} | {norm} | {m['delta']:.2e} | {exact}{agree} |", flush=True)


if __name__ == "__main__":
    main()
