"""`make interop`, step 3 (ms-swift's venv): the exports through ms-swift's own pipeline.

For each exported set and each checkpoint folder (rscovlm's band, the stock Qwen2.5-VL band),
ms-swift's ``load_dataset`` reads ``{set}_swift.jsonl`` and the ``qwen2_5_vl`` template (from
``get_processor`` + ``get_template``, train mode) encodes every sample, under the environment
and arguments the export printed (``{set}_swift.sh``: ``MAX_PIXELS``, ``MIN_PIXELS``,
``--max_length``). Each sample is compared with what rscovlm expects
(``expected/{set}_swift.jsonl``):

- it loads and encodes (none missing, same order);
- its ``input_ids`` equal rscovlm's token ids;
- the size each image is fed at (``image_grid_thw`` x 14) equals the size the boxes assume.

The same is counted under ms-swift's defaults (no environment, no ``--max_length``) for
contrast. The environment is read when the processor is built, so each (set, checkpoint,
settings) runs in its own process. Prints one JSON line per run.

Stub: torchvision's two op schemas (:mod:`_stubs`: pip's torchvision is the CUDA build;
``qwen_vl_utils``, which ms-swift's Qwen2.5-VL processor uses, imports it at module top).

Run: ``VENV/bin/python benchmarks/interop/check_swift.py OUT``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any


def _settings(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(environment, arguments)`` of a ``{set}_swift.sh`` the export wrote."""
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value
        elif line.startswith("SWIFT_ARGS="):
            words = shlex.split(shlex.split(line.partition("=")[2])[0])
            args = dict(zip(words[::2], words[1::2], strict=True))
    return env, args


def _check(out: Path, name: str, ckpt: Path, use_settings: bool) -> dict[str, Any]:
    """One run, in this process (the environment is already set)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _stubs import stub_torchvision_ops

    stub_torchvision_ops()
    from swift import get_processor, get_template, load_dataset

    _, args = _settings(out / "export" / f"{name}_swift.sh")
    processor = get_processor(str(ckpt))
    max_length = int(args["--max_length"]) if use_settings else None
    template = get_template(processor, max_length=max_length, template_type=args["--template"])
    template.set_mode("train")
    dataset, _ = load_dataset([args["--dataset"]], strict=True)
    expected = [json.loads(line) for line in (out / "expected" / f"{name}_swift.jsonl").open()]
    same_ids = same_size = images = loaded = failed = 0
    for row, want in zip(dataset, expected, strict=False):
        try:
            encoded = template.encode(row)
        except Exception:  # counted: ms-swift refuses the sample
            failed += 1
            continue
        loaded += 1
        same_ids += list(encoded["input_ids"]) == want["ids"]
        grids = encoded.get("image_grid_thw")
        fed = [[int(g[2]) * 14, int(g[1]) * 14] for g in grids] if grids is not None else []
        images += len(fed)
        same_size += sum(f == w for f, w in zip(fed, want["sizes"], strict=True))
    return {
        "framework": "swift",
        "set": name,
        "checkpoint": ckpt.name,
        "settings": "printed" if use_settings else "defaults",
        "samples": len(expected),
        "loaded": loaded,
        "refused": failed,
        "ids_equal": same_ids,
        "images": images,
        "size_equal": same_size,
        "ok": len(dataset) == loaded == len(expected) == same_ids and same_size == images,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sets", default="real,demo,zoom")
    parser.add_argument(
        "--one", nargs=3, metavar=("SET", "CKPT", "SETTINGS"), help=argparse.SUPPRESS
    )
    opts = parser.parse_args()
    if opts.one:
        name, ckpt, mode = opts.one
        result = _check(opts.out, name, opts.out / "ckpt" / ckpt, mode == "printed")
        print("RESULT " + json.dumps(result), flush=True)
        return
    results = []
    base = {k: v for k, v in os.environ.items() if k not in ("MAX_PIXELS", "MIN_PIXELS")}
    for name in opts.sets.split(","):
        env_printed, _ = _settings(opts.out / "export" / f"{name}_swift.sh")
        for ckpt in ("rscovlm", "stock"):
            for mode in ("printed", "defaults"):
                env = {**base, **env_printed} if mode == "printed" else base
                argv = [sys.executable, __file__, str(opts.out), "--one", name, ckpt, mode]
                proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                if not lines:
                    sys.stderr.write(proc.stderr[-4000:])
                    raise SystemExit(f"swift check {name}/{ckpt}/{mode} failed")
                result = json.loads(lines[-1][len("RESULT ") :])
                print(json.dumps(result), flush=True)
                results.append(result)
    (opts.out / "swift_results.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0 if all(r["ok"] for r in results if r["settings"] == "printed") else 1)


if __name__ == "__main__":
    main()
