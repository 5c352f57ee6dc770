"""`make interop`, step 2 (LLaMA-Factory's venv): the exports through LLaMA-Factory's own pipeline.

For each exported set and each checkpoint folder (rscovlm's band, the stock Qwen2.5-VL band),
LLaMA-Factory's ``get_dataset`` (the ``qwen2_vl`` template, stage ``sft``) loads the dataset by
name from ``dataset_info.json`` under the settings the export printed (``{set}_lf.yaml``), and
every sample is compared with what rscovlm expects (``expected/{set}_lf.jsonl``):

- it loads (none missing, none extra, same order);
- its ``input_ids`` equal rscovlm's token ids (text, image pads, ``<|im_end|>``: nothing cut;
  ``cut`` counts samples whose answer lost its closing ``<|im_end|>``);
- the size each image is fed at, ``image_grid_thw`` x 14 from the plugin's own
  ``_get_mm_inputs`` (its pre-resize, then the checkpoint processor), equals the size the boxes
  assume.

The same is counted under LLaMA-Factory's defaults (no ``image_max_pixels``/``cutoff_len``)
for contrast. Prints one JSON line per (set, checkpoint, settings).

Stubs (only where torchvision/torchaudio cannot work on this CPU torch 2.13): torchvision's
two op schemas (:mod:`_stubs`: pip's torchvision is the CUDA build). Pip's torchaudio wheel is
built for another torch; `make interop` uninstalls it and, as ``llamafactory.data.mm_plugin``
imports it at module top for audio (never read here), an empty module stands in for it,
installed after transformers has found it absent.

Run: ``VENV/bin/python benchmarks/interop/check_llamafactory.py OUT``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stubs import stub_torchvision_ops

stub_torchvision_ops()
import transformers  # noqa: E402,F401  (finds torchaudio absent before the stub exists)

sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))

from llamafactory.data import get_dataset, get_template_and_fix_tokenizer  # noqa: E402
from llamafactory.hparams import get_train_args  # noqa: E402
from llamafactory.model import load_tokenizer  # noqa: E402


def _check(out: Path, name: str, ckpt: Path, use_settings: bool) -> dict[str, Any]:
    settings = yaml.safe_load((out / "export" / f"{name}_lf.yaml").read_text())
    args = {
        "model_name_or_path": str(ckpt),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "dataset": settings["dataset"],
        "dataset_dir": settings["dataset_dir"],
        "template": settings["template"],
        "output_dir": tempfile.mkdtemp(),
        "overwrite_cache": True,
        "report_to": "none",
    }
    if use_settings:
        for key in ("image_max_pixels", "image_min_pixels", "cutoff_len"):
            args[key] = settings[key]
    model_args, data_args, training_args, _, _ = get_train_args(args)
    module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(module["tokenizer"], data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, "sft", **module)
    rows = list(dataset["train_dataset"])
    expected = [json.loads(line) for line in (out / "expected" / f"{name}_lf.jsonl").open()]
    processor = module["processor"]
    same_ids = same_size = cut = images = 0
    for row, want in zip(rows, expected, strict=False):
        same_ids += row["input_ids"] == want["ids"]
        cut += row["input_ids"][-2:] != want["ids"][-2:]  # the answer lost its <|im_end|>
        paths = row["images"] or []
        grids = template.mm_plugin._get_mm_inputs(paths, [], [], processor)["image_grid_thw"]
        fed = [[int(g[2]) * 14, int(g[1]) * 14] for g in grids]
        images += len(fed)
        same_size += sum(f == w for f, w in zip(fed, want["sizes"], strict=True))
    return {
        "framework": "llamafactory",
        "set": name,
        "checkpoint": ckpt.name,
        "settings": "printed" if use_settings else "defaults",
        "samples": len(expected),
        "loaded": len(rows),
        "ids_equal": same_ids,
        "cut": cut,
        "images": images,
        "size_equal": same_size,
        "ok": len(rows) == len(expected) == same_ids and same_size == images,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sets", default="real,demo,zoom")
    opts = parser.parse_args()
    results = []
    for name in opts.sets.split(","):
        for ckpt in ("rscovlm", "stock"):
            for use_settings in (True, False):
                result = _check(opts.out, name, opts.out / "ckpt" / ckpt, use_settings)
                print(json.dumps(result), flush=True)
                results.append(result)
    (opts.out / "llamafactory_results.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0 if all(r["ok"] for r in results if r["settings"] == "printed") else 1)


if __name__ == "__main__":
    main()
