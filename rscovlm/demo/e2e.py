"""The end-to-end part of ``rscovlm demo``: data → co-training → evaluation of a tiny model.

Three stages, all offline, on the CPU, from one seed:

1. **data** — seeded synthetic aerial scenes (detection quads, VQA, scene labels) and a
   colour/texture scene set (:func:`~rscovlm.data.sources.synthetic.write_colour_scenes`) are
   written into the work dir and built into shards by the real ``rscovlm data build`` path
   (:func:`~rscovlm.data.load_recipe`, :func:`~rscovlm.data.build_dataset`). Held-out scenes of
   other seeds are written beside them and never built or trained on.
2. **train** — the shipped ``tiny_cpu`` config co-trains the tiny Qwen2.5-VL (real vocabulary)
   on the multi-task mixture (classification + VQA + detection) with the overrides of
   :func:`train_overrides` (the recipe of ``tests/train/test_learning.py``); the progress bar
   follows the run's ``log.jsonl``.
3. **eval** — held-out next-token loss of the base and the trained checkpoint; colour-scene
   classification accuracy (greedy answers through :class:`~rscovlm.model.backends.hf.HFBackend`)
   against chance; and detection through the real pipeline: :func:`rscovlm.model.detect_image`
   renders the detection prompt, generates, parses, maps the boxes back to image pixels and
   merges them, the predictions are written as JSONL and scored by
   :func:`rscovlm.eval.det_eval.run_det_eval` under the fair protocol (mAP_nc: every box scores
   1, no threshold; and mF1), on held-out scenes of one grid-aligned object
   (:func:`~rscovlm.data.sources.synthetic.write_box_scenes`: the multi-object aerial scenes
   are beyond a tiny model trained for a minute), beside the mAP_nc of always answering the
   most common training box (the label prior), so that learning shows as a gap to it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from rscovlm.data.conversation import Conversation
from rscovlm.data.record import Record
from rscovlm.data.sources.synthetic import COLOUR_CLASSES, write_box_scenes, write_colour_scenes
from rscovlm.extras import require_torch
from rscovlm.formats.classes import DOTA_V1_0

__all__ = ["DemoSettings", "EndToEndResult", "run_end_to_end", "train_overrides"]

MIXTURE = "[synthetic%50, colours*4, boxes*4]"
"""The demo's mixture: half of the synthetic records (detection, VQA, scene labels), the colour
scenes four times, the one-object detection scenes (:func:`write_box_scenes`) four times."""

_OWNED = ("src", "built", "held_out", "run", "detect")
"""The folders the demo writes in its work dir (removed at the start of a run)."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the end-to-end demo (the defaults: about 75 s of CPU time, 3-5 min of wall
    time when the 2 cores are shared with other jobs)."""

    steps: int = 200
    """Optimizer steps of ``batch`` samples."""
    batch: int = 8
    lr: float = 1e-2
    scenes: int = 24
    """Synthetic training scenes (``scene_size``² px): detection, VQA and scene-label records."""
    scene_size: int = 160
    colours_per_class: int = 24
    """Training colour scenes per class (4 classes)."""
    held_scenes: int = 4
    """Held-out synthetic scenes: detection images and held-out loss samples."""
    held_colours_per_class: int = 6
    """Held-out colour scenes per class: the accuracy set."""
    box_scenes: int = 96
    """Training detection scenes of one large object (:func:`write_box_scenes`)."""
    held_box_scenes: int = 16
    """Held-out detection scenes of one large object: the detection set."""
    box_size: int = 112
    """Side of the detection scenes in px (112: inside the band, so never resized)."""
    max_new_tokens: int = 32
    """Generation budget of each detection answer."""
    min_pixels: int = 4 * 28 * 28
    """Pixel band of training and evaluation: 56² … 112²."""
    max_pixels: int = 16 * 28 * 28

    @classmethod
    def smallest(cls) -> DemoSettings:
        """The fastest settings that still show the loss falling (used by the tests)."""
        return cls(
            steps=40,
            scenes=8,
            colours_per_class=8,
            held_scenes=2,
            held_colours_per_class=3,
            box_scenes=24,
            held_box_scenes=6,
            max_new_tokens=48,
        )


@dataclass
class EndToEndResult:
    """What the three stages measured."""

    seed: int
    settings: DemoSettings
    workdir: Path | None
    """The work dir, or ``None`` when it was a temporary one and is gone."""
    built: dict[str, int]
    """``read``, ``kept``, ``rejected`` records of the build (read = kept + rejected)."""
    n_colour_images: int
    losses: list[float]
    """Training loss of every optimizer step."""
    heldout_tasks: dict[str, int]
    """Held-out loss samples per task."""
    loss_before: float
    loss_after: float
    n_accuracy: int
    accuracy_before: float
    accuracy_after: float
    chance: float
    det_images: int
    det_objects: int
    """Ground-truth objects of the held-out detection images."""
    det_counts: dict[str, int]
    """Summed :meth:`rscovlm.model.DetectionResult.counts` of the held-out images."""
    det_read: int
    """Predictions the evaluation read from the written JSONL."""
    det_scored: int
    """Of those, the ones matched to a ground-truth image and a class (all, when it works)."""
    det_map_nc: float
    det_mf1: float
    det_first_answer: str
    """The raw answer of the first held-out image (what the parser saw)."""
    det_prior_map_nc: float = 0.0
    """mAP_nc of always answering the most common training box (:func:`_prior_map_nc`)."""
    task_losses: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Held-out loss per task: (base, trained)."""
    seconds: dict[str, float] = field(default_factory=dict)

    def loss_tenths(self) -> list[float]:
        """Mean training loss of each tenth of the run (fewer parts for a short run)."""
        parts = np.array_split(np.asarray(self.losses), min(10, len(self.losses)))
        return [float(p.mean()) for p in parts]


def train_overrides(workdir: Path, recipe: Path, seed: int, settings: DemoSettings) -> list[str]:
    """The dotted overrides that turn the shipped ``tiny_cpu`` config into the demo's run."""
    classes = ", ".join(COLOUR_CLASSES)
    return [
        f"data.build_recipe={recipe}",
        f"data.built={workdir / 'built'}",
        f"data.mixture.datasets={MIXTURE}",
        f"data.mixture.seed={seed}",
        f"data.mixture.render.defaults={{min_pixels: {settings.min_pixels}, "
        f"max_pixels: {settings.max_pixels}}}",
        f"data.mixture.render.sources={{colours: {{classes: [{classes}]}}}}",
        "data.mixture.render.tasks.detection.box_kind=hbb",  # shorter answers, same task
        "data.mixture.render.tasks.detection.random_resize_prob=0.0",  # one scale per image
        f"log.output_dir={workdir / 'run'}",
        "log.progress=false",
        f"train.max_steps={settings.steps}",
        f"train.per_device_batch_size={settings.batch}",
        f"train.global_batch_size={settings.batch}",
        "train.max_length=512",
        "train.save_every=null",
        f"train.seed={seed}",
        f"optim.lr={settings.lr}",
    ]


@contextlib.contextmanager
def _quiet_and_single_threaded() -> Iterator[None]:
    """One torch thread (the tiny model's ops gain nothing from threads and oversubscribed
    busy cores made training ~8× slower) and no ``transformers`` progress bars; both restored."""
    import torch
    from transformers.utils import logging as hf_logging

    threads = torch.get_num_threads()
    bars = hf_logging.is_progress_bar_enabled()
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if bars:
            hf_logging.enable_progress_bar()


class _LogFollower(threading.Thread):
    """Moves a progress bar along the trainer's ``log.jsonl`` (one line per step); its text
    shows the loss of step 1 and the mean of the last 10 steps."""

    def __init__(self, path: Path, progress: Progress, task: TaskID) -> None:
        super().__init__(daemon=True)
        self.path, self.progress, self.task = path, progress, task
        self.done = threading.Event()
        self.first: float | None = None

    def _poll(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        if records:
            recent = [float(r["loss"]) for r in records[-10:]]
            self.first = float(records[0]["loss"]) if self.first is None else self.first
            self.progress.update(
                self.task,
                completed=int(records[-1]["step"]),
                description=f"train: loss {self.first:5.2f} → {sum(recent) / len(recent):5.2f}",
            )

    def run(self) -> None:
        while not self.done.wait(0.25):
            self._poll()
        self._poll()


def _recipe(workdir: Path, seed: int, settings: DemoSettings) -> Path:
    """The build recipe: the shipped ``synthetic_demo`` source at demo sizes plus the colour
    scenes (written beside the work dir's data, so ``rscovlm data build`` can rerun it)."""
    path = workdir / "recipe.yaml"
    path.write_text(
        "name: demo\nroot: src\nmax_pixels: 268435456\nsources:\n"
        "  - name: synthetic\n    adapter: synthetic\n    path: synthetic\n    classes: dota1.0\n"
        f"    options: {{n: {settings.scenes}, size: {settings.scene_size}, seed: {seed}}}\n"
        "  - name: colours\n    adapter: scene_folder\n    path: colours\n"
        "  - name: boxes\n    adapter: dota\n    path: boxes\n    classes: dota1.0\n",
        encoding="utf-8",
    )
    return path


def _held_out(
    held: Path, seed: int, settings: DemoSettings
) -> tuple[list[Record], list[Record], list[Record]]:
    """Held-out records of other seeds: (mixed for the loss, colour scenes, detection)."""
    from rscovlm.data.sources.dota import iter_dota_records
    from rscovlm.data.sources.scene_folder import iter_scene_folder_records
    from rscovlm.data.sources.synthetic import iter_synthetic_records

    write_colour_scenes(held / "colours", settings.held_colours_per_class, seed + 99)
    colours = [
        r
        for r in iter_scene_folder_records(held, "colours", source="colours")
        if isinstance(r, Record)
    ]
    synthetic = [
        r
        for r in iter_synthetic_records(
            held, "synthetic", n=settings.held_scenes, size=settings.scene_size, seed=seed + 7
        )
        if isinstance(r, Record)
    ]
    by_task: dict[str, list[Record]] = {}
    for record in synthetic:
        record.meta.setdefault("class_list", "dota1.0")
        by_task.setdefault(record.task, []).append(record)
    write_box_scenes(held / "boxes", settings.held_box_scenes, settings.box_size, seed + 13)
    boxes = [r for r in iter_dota_records(held, "boxes", source="boxes") if isinstance(r, Record)]
    for record in boxes:
        record.meta.setdefault("class_list", "dota1.0")
    n = settings.held_scenes
    mixed = by_task["detection"][:n] + boxes[:n] + by_task["vqa"][:n] + colours[::3]
    return mixed, colours, boxes


def _render(records: list[Record], policy: Any, root: Path, seed: int) -> list[Conversation]:
    from rscovlm.data.render import render

    return [
        render(r, np.random.default_rng([seed, 5, k]), policy, root=root, dataset=r.source)
        for k, r in enumerate(records)
    ]


def _mean_loss(loaded: Any, convs: list[Conversation], root: Path) -> float:
    """Mean next-token loss over the supervised tokens of ``convs``."""
    from rscovlm.train.trainer import heldout_loss

    return heldout_loss(loaded, convs, root)


def _accuracy(backend: Any, convs: list[Conversation]) -> float:
    """Greedy answers to the classification prompts, first line, compared with the labels."""
    from rscovlm.model.backends.base import GenerationParams

    prompts = [Conversation(c.messages[:-1], c.family, c.meta) for c in convs]
    labels = [c.messages[-1].text.strip().rstrip(".").lower() for c in convs]
    texts = [g.text for g in backend.generate(prompts, GenerationParams(max_new_tokens=4))]
    answers = [t.strip().split("\n")[0].strip().rstrip(".").lower() for t in texts]
    return sum(a == y for a, y in zip(answers, labels, strict=True)) / max(len(labels), 1)


def _prior_map_nc(train_labels: Path, held_labels: Path) -> float:
    """mAP_nc of a "detector" that ignores the image and answers, for every held-out image, the
    most common (class, box) of the training labels: the bar a model that only learned the
    label prior clears, so the demo's detection number can be told apart from it."""
    from collections import Counter

    from rscovlm.eval.detection_io import read_ground_truth
    from rscovlm.eval.metrics.boxes import DetBoxes
    from rscovlm.eval.metrics.detection import DetectionEvaluator

    train = read_ground_truth(train_labels, DOTA_V1_0).boxes
    counts = Counter(
        (int(c), tuple(np.round(q.reshape(8), 1).tolist()))
        for c, q in zip(train.label, train.quads, strict=True)
    )
    (label, quad), _ = counts.most_common(1)[0]
    held = read_ground_truth(held_labels, DOTA_V1_0)
    n = len(held.images)
    prior = DetBoxes.create(
        np.arange(n), [label] * n, np.tile(np.reshape(quad, (1, 4, 2)), (n, 1, 1))
    )
    result = DetectionEvaluator(held.boxes, prior, DOTA_V1_0).evaluate(unit_scores=True)
    return float(result.mean_ap or 0.0)


def _stage(console: Console, title: str) -> None:
    console.rule(title, align="left")


def run_end_to_end(
    seed: int = 0,
    console: Console | None = None,
    *,
    settings: DemoSettings | None = None,
    workdir: str | Path | None = None,
    keep: bool = False,
) -> EndToEndResult:
    """Generate and build the data, co-train the tiny model, evaluate it; print as it goes.

    Args:
        seed: Seeds the scenes, the mixture, the tiny model's weights and the training.
        console: Where the progress and the lines go.
        settings: Sizes (default :class:`DemoSettings`).
        workdir: Work dir (created); default a temporary one, removed unless ``keep``. The
            demo's own entries in it (``recipe.yaml``, ``src``, ``built``, ``held_out``,
            ``run``, ``detect``) are replaced; nothing else is touched.
        keep: Keep a temporary work dir (a given ``workdir`` is always kept).

    Raises:
        MissingExtraError: torch or transformers is missing (extra ``train``); checked before
            any file is written.
    """
    require_torch()
    console = console or Console()
    settings = settings or DemoSettings()
    temporary = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="rscovlm-demo-") if temporary else workdir).resolve()  # type: ignore[arg-type]
    wd.mkdir(parents=True, exist_ok=True)
    for name in _OWNED:  # a fresh run every time: no resumed training, no stale shards
        shutil.rmtree(wd / name, ignore_errors=True)
    (wd / "recipe.yaml").unlink(missing_ok=True)
    try:
        with _quiet_and_single_threaded():
            result = _run(wd, seed, settings, console)
    finally:
        if temporary and not keep:
            shutil.rmtree(wd, ignore_errors=True)
    return replace(result, workdir=None if temporary and not keep else wd)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _run(wd: Path, seed: int, settings: DemoSettings, console: Console) -> EndToEndResult:
    from rscovlm.data import build_dataset, load_recipe
    from rscovlm.data.split import TileSpec
    from rscovlm.eval.det_eval import run_det_eval
    from rscovlm.model import load_checkpoint
    from rscovlm.model.backends.base import GenerationParams
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.manifest import checkpoint_band
    from rscovlm.pipelines import detect_image, write_outputs
    from rscovlm.train.config import load_train_config, shipped_train_configs
    from rscovlm.train.trainer import run

    say = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    seconds: dict[str, float] = {}
    s = settings

    # --- 1. data ---------------------------------------------------------------------------
    _stage(console, "1/4 data: seeded synthetic scenes → rscovlm data build")
    started = time.perf_counter()
    say(f"work dir: {wd}")
    n_colours = s.colours_per_class * len(COLOUR_CLASSES)
    with _progress(console) as progress:
        task = progress.add_task("colour scenes", total=n_colours)
        write_colour_scenes(wd / "src" / "colours", s.colours_per_class, seed)
        write_box_scenes(wd / "src" / "boxes", s.box_scenes, s.box_size, seed)
        progress.update(task, completed=n_colours)
        recipe_path = _recipe(wd, seed, s)
        recipe, root = load_recipe(recipe_path)
        build = progress.add_task("build: records validated", total=None)

        def on_shard(done: dict[str, Any], skipped: bool) -> None:
            progress.advance(build, int(done["read"]))

        built = build_dataset(recipe, root, wd / "built", workers=0, on_shard=on_shard)
        totals = {k: int(built.manifest["totals"][k]) for k in ("read", "kept", "rejected")}
        progress.update(build, total=totals["read"], completed=totals["read"])
        held = wd / "held_out"
        mixed, colours, det_records = _held_out(held, seed, s)
    say(
        f"{s.scenes} synthetic scenes of {s.scene_size}² px (detection, VQA, scene labels) and "
        f"{n_colours} colour scenes ({', '.join(COLOUR_CLASSES)}): read {totals['read']} "
        f"records = kept {totals['kept']} + rejected {totals['rejected']}; held out (other "
        f"seeds, never built): {s.held_scenes} synthetic scenes, {len(colours)} colour scenes."
    )
    seconds["data"] = time.perf_counter() - started

    # --- 2. train --------------------------------------------------------------------------
    _stage(console, "2/4 train: co-train the tiny Qwen2.5-VL with configs/train/tiny_cpu.yaml")
    started = time.perf_counter()
    overrides = train_overrides(wd, recipe_path, seed, s)
    cfg = load_train_config(shipped_train_configs()["tiny_cpu"], overrides)
    say(f"mixture {MIXTURE}; {s.steps} steps × {s.batch} samples, lr {s.lr:g}, images 56²–112²")
    with _progress(console) as progress:
        task = progress.add_task("train", total=s.steps)
        follower = _LogFollower(Path(cfg.log.output_dir) / "log.jsonl", progress, task)
        follower.start()
        try:
            trained = run(cfg, say=say)  # the summary goes through the demo console
        finally:
            follower.done.set()
            follower.join()
    losses = list(trained.losses)
    seconds["train"] = time.perf_counter() - started
    tenths = np.array_split(np.asarray(losses), min(10, len(losses)))
    say(
        "training loss, mean of each tenth of the run: "
        + " → ".join(f"{float(p.mean()):.2f}" for p in tenths)
    )
    del trained

    # --- 3. eval ---------------------------------------------------------------------------
    _stage(console, "3/4 eval: held-out loss, scene accuracy, detection through the pipeline")
    started = time.perf_counter()
    run_dir = Path(cfg.log.output_dir)
    policy = cfg.data.mixture_config().policy()
    # the trained checkpoint remembers its band; the untrained base is run at the same band
    # so that before and after see the same pixels
    band = checkpoint_band(run_dir / "final")
    mixed_convs = _render(mixed, policy, held, seed)
    colour_convs = _render(colours, policy, held, seed)
    tasks: dict[str, int] = {}
    for conv in mixed_convs:
        tasks[str(conv.meta["task"])] = tasks.get(str(conv.meta["task"]), 0) + 1
    det_dir = wd / "detect"
    results = []
    with _progress(console) as progress:
        steps = progress.add_task("eval: held-out loss and accuracy", total=4)
        base = load_checkpoint(run_dir / "tiny_base", dtype="float32", device="cpu", attn="sdpa")
        by_task: dict[str, list[Conversation]] = {}
        for conv in mixed_convs:
            by_task.setdefault(str(conv.meta["task"]), []).append(conv)
        before = {t: _mean_loss(base, c, held) for t, c in by_task.items()}
        loss_before = _mean_loss(base, mixed_convs, held)
        progress.advance(steps)
        acc_before = _accuracy(HFBackend(base, band=band, root=held), colour_convs)
        progress.advance(steps)
        del base
        final = load_checkpoint(run_dir / "final", dtype="float32", device="cpu", attn="sdpa")
        after = {t: _mean_loss(final, c, held) for t, c in by_task.items()}
        loss_after = _mean_loss(final, mixed_convs, held)
        progress.advance(steps)
        backend = HFBackend(final, root=held)  # its own training band
        acc_after = _accuracy(backend, colour_convs)
        progress.advance(steps)
        images = progress.add_task("eval: detection", total=len(det_records))
        spec = TileSpec(size=s.box_size, gap=0)
        params = GenerationParams(max_new_tokens=s.max_new_tokens)
        lines: list[str] = []
        for record in det_records:
            image = held / record.images[0].path
            res = detect_image(backend, image, DOTA_V1_0, spec=spec, box="hbb", params=params)
            written = write_outputs(res, det_dir / res.image_id, ["jsonl"])
            lines.append(written["jsonl"].read_text(encoding="utf-8"))
            results.append(res)
            progress.advance(images)
    predictions = det_dir / "predictions.jsonl"
    predictions.write_text("".join(lines), encoding="utf-8")
    report = run_det_eval(
        held / "boxes" / "labelTxt",
        predictions,
        "jsonl",
        classes=DOTA_V1_0,
        nc=True,
        allow_empty=True,
    )
    counts: dict[str, int] = {}
    for res in results:
        for key, value in res.counts().items():
            counts[key] = counts.get(key, 0) + value
    pred_read = report.inputs["pred"]
    f1 = report.f1.best.mf1 if report.f1 is not None else 0.0
    seconds["eval"] = time.perf_counter() - started
    return EndToEndResult(
        seed=seed,
        settings=s,
        workdir=wd,
        built=totals,
        n_colour_images=n_colours,
        losses=losses,
        heldout_tasks=tasks,
        loss_before=loss_before,
        loss_after=loss_after,
        n_accuracy=len(colour_convs),
        accuracy_before=acc_before,
        accuracy_after=acc_after,
        chance=1 / len(COLOUR_CLASSES),
        det_images=len(results),
        det_objects=report.inputs["gt"].n_kept,
        det_counts=counts,
        det_read=pred_read.n_boxes,
        det_scored=pred_read.n_kept,
        det_map_nc=float(report.main.mean_ap or 0.0),
        det_mf1=float(f1),
        det_first_answer=(results[0].patches[0].output or "") if results else "",
        det_prior_map_nc=_prior_map_nc(
            wd / "src" / "boxes" / "labelTxt", held / "boxes" / "labelTxt"
        ),
        task_losses={t: (before[t], after[t]) for t in by_task},
        seconds=seconds,
    )
