"""`make interop`, step 1 (rscovlm's venv): the exports, what rscovlm expects of them, checkpoints.

Writes into ``OUT``:

- ``built/real``: the real DOTA (P0706, P1888) and DIOR samples of ``shared/data/real``;
  ``built/demo``: the synthetic demo; ``built/zoom``: Zoom-in Chain records built from a
  synthetic 6144² GeoTIFF's ``zoom_vqa.jsonl`` (an overview and a crop per question);
- ``export/``: each built set exported for both frameworks through the CLI's own path
  (``export_chat`` with rscovlm's tokenizer as ``measure``): ``{set}_lf.jsonl`` registered in
  ``export/dataset_info.json`` with ``{set}_lf.yaml``, and ``{set}_swift.jsonl`` with
  ``{set}_swift.sh``;
- ``expected/{set}_{fmt}.jsonl``: per sample, rscovlm's token ids of the training sample
  (:func:`rscovlm.model.encoding.segments` tokenised whole, as the encoder does) and the
  ``(width, height)`` each image part's boxes assume (``ImagePart.resized_size``);
- ``ckpt/rscovlm``: a tiny Qwen2.5-VL checkpoint as rscovlm writes it (its band in
  ``preprocessor_config.json``), and ``ckpt/stock``: the same with the STOCK Qwen2.5-VL band
  (3136..12845056), the band a downloaded checkpoint has.

Run: ``.venv/bin/python benchmarks/interop/prepare.py OUT``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_REAL = Path(
    os.environ.get("RSCOVLM_SHARED_REAL", PROJECT_ROOT.parent / "shared" / "data" / "real")
)
MAX_LENGTH = 32768
"""Above the densest sample (DOTA P0706: 536 objects), so every real sample is checked."""
STOCK_BAND = (3136, 12845056)
"""``min_pixels``, ``max_pixels`` of the stock Qwen2.5-VL ``preprocessor_config.json``."""


def _build(out: Path) -> dict[str, Path]:
    """The three built sets."""
    import yaml

    from rscovlm import configs
    from rscovlm.data.build import build_dataset
    from rscovlm.data.recipe import load_recipe
    from rscovlm.data.shards import MANIFEST_NAME, SHARD_DIR, write_jsonl
    from rscovlm.data.sources.synthetic_raster import write_large_geotiff
    from rscovlm.data.zoom_build import iter_zoom_records
    from rscovlm.files import atomic_write_text

    real = {
        "root": str(SHARED_REAL),
        "sources": [
            {"name": "dota", "adapter": "dota", "path": "dota", "classes": "dota1.0"},
            {"name": "dior", "adapter": "dior", "path": "dior", "classes": "dior"},
        ],
    }
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    (out / "recipes" / "real.yaml").write_text(yaml.safe_dump(real))
    spec, root = load_recipe(out / "recipes" / "real.yaml")
    build_dataset(spec, root, out / "built" / "real", workers=0)
    demo_root = out / "demo_data"
    demo_root.mkdir(parents=True, exist_ok=True)
    spec, root = load_recipe(configs.shipped("recipe")["synthetic_demo"], demo_root)
    build_dataset(spec, root, out / "built" / "demo", workers=0)
    write_large_geotiff(demo_root / "uhr" / "big.tif", size=6144, n_targets=4, seed=0)
    zoom = list(iter_zoom_records(demo_root, "uhr/zoom_vqa.jsonl", source="zoom"))
    built_zoom = out / "built" / "zoom"
    write_jsonl(built_zoom / SHARD_DIR / "zoom-00000.jsonl", zoom)
    manifest = {"data_root": str(demo_root.resolve()), "recipe": {"sources": [{"name": "zoom"}]}}
    atomic_write_text(built_zoom / MANIFEST_NAME, json.dumps(manifest))
    return {"real": out / "built" / "real", "demo": out / "built" / "demo", "zoom": built_zoom}


def _export(sets: dict[str, Path], out: Path) -> list[dict[str, Any]]:
    from rscovlm.data.export_chat import export_chat
    from rscovlm.model.encoding import count_tokens, segments
    from rscovlm.model.tokenizer import build_qwen2_tokenizer

    tokenizer = build_qwen2_tokenizer(family="qwen2_5_vl")
    export_dir, expected_dir = out / "export", out / "expected"
    export_dir.mkdir(parents=True, exist_ok=True)
    expected_dir.mkdir(parents=True, exist_ok=True)
    summary = []
    for name, built in sets.items():
        for fmt, tag in (("llamafactory", "lf"), ("swift", "swift")):
            rows: list[str] = []

            def keep(conv: Any, sample: dict[str, Any], rows: list[str] = rows) -> None:
                text = "".join(piece for piece, _ in segments(conv))
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                sizes = [list(p.resized_size) for p in conv.image_parts()]
                rows.append(json.dumps({"id": sample["id"], "ids": ids, "sizes": sizes}))

            result = export_chat(
                built,
                export_dir / f"{name}_{tag}.jsonl",
                fmt,
                measure=lambda conv: count_tokens(conv, tokenizer),
                max_length=MAX_LENGTH,
                on_sample=keep,
            )
            (expected_dir / f"{name}_{tag}.jsonl").write_text("".join(r + "\n" for r in rows))
            summary.append({"set": name, "format": fmt, **result.counts, "longest": result.longest})
    return summary


def _checkpoints(out: Path) -> None:
    from rscovlm.model.tiny import build_tiny_model

    ours = build_tiny_model("qwen2_5_vl", out / "ckpt" / "rscovlm", seed=0, overwrite=True)
    stock = out / "ckpt" / "stock"
    shutil.rmtree(stock, ignore_errors=True)
    shutil.copytree(ours, stock)
    config_path = stock / "preprocessor_config.json"
    config = json.loads(config_path.read_text())
    lo, hi = STOCK_BAND
    config["min_pixels"], config["max_pixels"] = lo, hi
    config["size"] = {"shortest_edge": lo, "longest_edge": hi}
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out.resolve()
    sets = _build(out)
    summary = _export(sets, out)
    _checkpoints(out)
    (out / "export_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for row in summary:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
