"""Learning (issue 6, Must show 3): ``tiny_cpu.yaml`` co-trains the tiny Qwen2.5-VL on a
procedural multi-task mixture on the CPU; the held-out loss falls clearly and the scene
classification accuracy is above chance.

The mixture is built through the real data engine (recipe → adapters → shards → mixture →
render → encode → packing): the synthetic aerial scenes give detection (quads), VQA (count /
colour / position) and their own scene labels, and a colour/texture scene set in the
class-per-folder layout (:func:`rscovlm.data.sources.synthetic.write_colour_scenes`, read by the
``scene_folder`` adapter) gives a classification task whose classes a tiny model can see at
56–112 px. Held-out samples are drawn from other seeds and never trained on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rscovlm.data.conversation import Conversation
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Record
from rscovlm.data.sources.synthetic import COLOUR_CLASSES, write_colour_scenes
from rscovlm.train.trainer import heldout_loss

torch = pytest.importorskip("torch")

BAND = {"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28}  # 56² … 112²
STEPS = 100


def _recipe(path: Path) -> Path:
    path.write_text(
        "name: learning\nroot: .\nsources:\n"
        "  - name: synthetic\n    adapter: synthetic\n    path: synthetic\n"
        "    classes: dota1.0\n    options: {n: 24, size: 160, seed: 0}\n"
        "  - name: colours\n    adapter: scene_folder\n    path: colours\n",
        encoding="utf-8",
    )
    return path


def _overrides(tiny_dir: Path, tmp: Path, recipe: Path) -> list[str]:
    classes = ", ".join(COLOUR_CLASSES)
    return [
        f"model.path={tiny_dir}",
        f"data.build_recipe={recipe}",
        f"data.built={tmp / 'data'}",
        "data.mixture.datasets=[synthetic%50, colours*4]",
        f"data.mixture.render.defaults={{min_pixels: {BAND['min_pixels']}, "
        f"max_pixels: {BAND['max_pixels']}}}",
        f"data.mixture.render.sources={{colours: {{classes: [{classes}]}}}}",
        "data.mixture.render.tasks.detection.box_kind=hbb",  # shorter answers, same task
        f"log.output_dir={tmp / 'run'}",
        "log.progress=false",
        f"train.max_steps={STEPS}",
        "train.per_device_batch_size=8",
        "train.global_batch_size=8",
        "train.max_length=512",
        "train.save_every=null",
        "optim.lr=1e-2",
    ]


def _held_out(root: Path) -> tuple[list[tuple[Record, str | None]], list[Record]]:
    """Held-out records (other seeds): the multi-task ones and the colour-scene ones."""
    from rscovlm.data.sources.scene_folder import iter_scene_folder_records
    from rscovlm.data.sources.synthetic import iter_synthetic_records

    write_colour_scenes(root / "colours", per_class=6, seed=99)
    scenes = [
        r
        for r in iter_scene_folder_records(root, "colours", source="colours")
        if isinstance(r, Record)
    ]
    synthetic = [
        r
        for r in iter_synthetic_records(
            root, "synthetic", source="synthetic", n=4, size=160, seed=7
        )
        if isinstance(r, Record)
    ]
    for record in synthetic:
        record.meta.setdefault("class_list", "dota1.0")
    by_task: dict[str, list[Record]] = {}
    for record in synthetic:
        by_task.setdefault(record.task, []).append(record)
    mixed = [(r, None) for task in ("detection", "vqa") for r in by_task[task][:4]]
    mixed += [(r, None) for r in scenes[::3]]
    return mixed, scenes


def _policy(cfg: Any) -> RenderPolicy:
    return cfg.data.mixture_config().policy()


def _conversations(
    records: list[tuple[Record, str | None]], policy: RenderPolicy, root: Path
) -> list[Conversation]:
    from rscovlm.data.render import render

    return [
        render(r, np.random.default_rng([5, k]), policy, root=root)
        for k, (r, _) in enumerate(records)
    ]


def _mean_loss(loaded: Any, model: Any, convs: list[Conversation], root: Path) -> float:
    """Mean next-token loss over the supervised tokens of ``convs`` (one sample at a time)."""
    return heldout_loss(dataclasses.replace(loaded, model=model), convs, root)


def _accuracy(loaded: Any, model: Any, convs: list[Conversation], root: Path) -> float:
    """Greedy answers of the classification prompts, parsed and compared with the labels."""
    from rscovlm.model.encoding import encode

    prompts = [Conversation(c.messages[:-1], c.family, c.meta) for c in convs]
    labels = [c.messages[-1].text for c in convs]
    enc = encode(prompts, loaded.tokenizer, loaded.image_processor, root=root)
    model.eval()
    with torch.no_grad():
        out = model.generate(
            **enc.inputs,
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=151643,
            eos_token_id=151645,
        )
    width = enc.inputs["input_ids"].shape[1]
    texts = loaded.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    answers = [t.strip().split("\n")[0].strip().rstrip(".").lower() for t in texts]
    return sum(a == y for a, y in zip(answers, labels, strict=True)) / len(labels)


@pytest.fixture
def one_thread() -> Any:
    """One intra-op thread: the tiny model's ops are too small to gain from threads, and on busy
    cores oversubscribed threads made the run ~8× slower (same losses either way)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.integration
@pytest.mark.usefixtures("one_thread")
def test_tiny_cpu_co_training_learns(
    tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    from rscovlm.train.config import load_train_config, shipped_train_configs
    from rscovlm.train.trainer import run

    source_root = tmp_path / "data_src"  # where ensure_built writes procedural sources
    write_colour_scenes(source_root / "colours", per_class=24, seed=0)
    overrides = _overrides(tiny_qwen25_dir, tmp_path, _recipe(tmp_path / "recipe.yaml"))
    cfg = load_train_config(shipped_train_configs()["tiny_cpu"], overrides)

    held_root = tmp_path / "held_out"
    mixed, scenes = _held_out(held_root)
    policy = _policy(cfg)
    mixed_convs = _conversations(mixed, policy, held_root)
    scene_convs = _conversations([(r, None) for r in scenes], policy, held_root)
    assert {c.meta["task"] for c in mixed_convs} == {"detection", "vqa", "classification"}

    before = _mean_loss(tiny_qwen25, tiny_qwen25.model, mixed_convs, held_root)
    result = run(cfg)
    assert result.steps == STEPS and all(math.isfinite(x) for x in result.losses)
    after = _mean_loss(tiny_qwen25, result.model, mixed_convs, held_root)
    accuracy = _accuracy(tiny_qwen25, result.model, scene_convs, held_root)
    chance = 1 / len(COLOUR_CLASSES)
    print(f"held-out loss {before:.3f} -> {after:.3f}; scene accuracy {accuracy:.2f} vs {chance}")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"skipped", "overlong_dropped", "rerendered"} <= log[-1].keys()  # stream counts
    assert after <= 0.8 * before, (before, after)
    assert accuracy >= 2 * chance, accuracy
