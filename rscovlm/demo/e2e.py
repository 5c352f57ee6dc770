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
3. **eval** — held-out next-token loss of the base and the trained checkpoint, then the
   evaluation suite as a user runs it: :func:`rscovlm.eval.runner.evaluate.evaluate` (what
   ``rscovlm eval run`` does: manifest, shards, journal) runs the trained checkpoint AND the
   untrained base over the held-out synthetic benchmarks (:data:`~rscovlm.eval.benchmarks.
   synthetic.SYNTHETIC_BENCHMARKS`: scene classification, VQA, grounding, detection) with the
   HF backend at the same band, :func:`~rscovlm.eval.runner.merge.score_run` scores them
   (``eval score RUN``) and :func:`~rscovlm.eval.report.write_report` writes the HTML report
   comparing the two (``eval report``), kept even when the work dir is temporary. Detection is
   scored under the fair protocol (mAP_nc, mF1) beside the mAP_nc of always answering the most
   common training box (the label prior), so that learning shows as a gap to it.
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

__all__ = [
    "BenchResult",
    "DemoSettings",
    "EndToEndResult",
    "run_end_to_end",
    "train_overrides",
]

MIXTURE = "[synthetic%50, colours*8, boxes*2]"
"""The demo's mixture: half of the synthetic records (detection, VQA, scene labels), the colour
scenes eight times, the one-object detection scenes (:func:`write_box_scenes`) twice (768 of
them: 96 four times covered too few of the ~200 box layouts)."""

_OWNED = ("src", "built", "held_out", "run", "eval")
"""The folders the demo writes in its work dir (removed at the start of a run)."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the end-to-end demo (the defaults: see the README for the measured wall time;
    about 3 min when the 2 cores are shared with other jobs)."""

    steps: int = 300
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
    box_scenes: int = 768
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


@dataclass(frozen=True)
class BenchResult:
    """One held-out benchmark of the runner, for the trained and the base checkpoint."""

    metric: str
    strict: float | None
    official: float | None
    base_strict: float | None
    n: int
    """Samples of the benchmark."""
    n_done: int
    """Of those, the ones with a prediction of the trained checkpoint (the rest are errors
    or missing, scored as failures)."""
    gain_ci95: tuple[float, float] | None = None
    """Paired bootstrap 95 % interval of the per-sample gain (trained − base), where the
    per-sample scores say something about the metric (not detection: mAP is a set number)."""


@dataclass
class EndToEndResult:
    """What the three stages measured."""

    seed: int
    settings: DemoSettings
    workdir: Path | None
    """The work dir, or ``None`` when it was a temporary one and is gone (but its report)."""
    built: dict[str, int]
    """``read``, ``kept``, ``rejected`` records of the build (read = kept + rejected)."""
    n_colour_images: int
    losses: list[float]
    """Training loss of every optimizer step."""
    heldout_tasks: dict[str, int]
    """Held-out loss samples per task."""
    loss_before: float
    loss_after: float
    benchmarks: dict[str, BenchResult]
    """The runner's held-out benchmarks (:data:`SYNTHETIC_BENCHMARKS`), by name."""
    report: Path
    """The HTML report (trained compared with base), kept with the two run folders."""
    runs: dict[str, Path]
    """The run folders of ``eval run``: ``trained`` and ``base``."""
    chance: float
    """Scene accuracy of a uniform guess among the colour classes."""
    det_first_answer: str
    """The raw answer of the first held-out ``synthetic_det`` image (what the parser saw)."""
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


def _held_out(held: Path, seed: int, settings: DemoSettings) -> tuple[list[Record], list[Record]]:
    """Held-out records of other seeds, written under ``held`` (where the synthetic benchmarks
    read them): (mixed for the loss, colour scenes)."""
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
    return mixed, colours


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
        workdir: Work dir (created); default a temporary one, removed unless ``keep`` — all
            but its ``eval/`` folder (the runs and the HTML report). The demo's own entries in
            it (``recipe.yaml``, ``src``, ``built``, ``held_out``, ``run``, ``eval``) are
            replaced; nothing else is touched.
        keep: Keep all of a temporary work dir (a given ``workdir`` is always kept).

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
    finished = False
    try:
        with _quiet_and_single_threaded():
            result = _run(wd, seed, settings, console)
        finished = True
    finally:
        if temporary and not keep:
            _remove_but_the_evaluation(wd, keep_eval=finished)
    return replace(result, workdir=None if temporary and not keep else wd)


def _remove_but_the_evaluation(wd: Path, *, keep_eval: bool) -> None:
    """A temporary work dir goes, but for ``eval/`` (the two runs and the report the summary
    points at: a few hundred kB) after a finished demo."""
    for entry in wd.iterdir() if wd.is_dir() else []:
        if keep_eval and entry.name == "eval":
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if not keep_eval:
        shutil.rmtree(wd, ignore_errors=True)


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
    from rscovlm.eval.benchmarks.synthetic import SYNTHETIC_BENCHMARKS
    from rscovlm.eval.report import load_run, write_report
    from rscovlm.eval.runner.evaluate import evaluate
    from rscovlm.eval.runner.manifest import model_fingerprint
    from rscovlm.eval.runner.merge import result_lines, score_run
    from rscovlm.model import load_checkpoint
    from rscovlm.model.backends.base import GenerationParams
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.manifest import checkpoint_band
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
        mixed, colours = _held_out(held, seed, s)
    say(
        f"{s.scenes} synthetic scenes of {s.scene_size}² px (detection, VQA, scene labels) and "
        f"{n_colours} colour scenes ({', '.join(COLOUR_CLASSES)}) and {s.box_scenes} one-object "
        f"detection scenes of {s.box_size}² px: read {totals['read']} "
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
    _stage(console, "3/4 eval: held-out loss, then eval run → eval score → eval report")
    started = time.perf_counter()
    run_dir = Path(cfg.log.output_dir)
    policy = cfg.data.mixture_config().policy()
    # the trained checkpoint remembers its band; the untrained base is run at the same band
    # so that before and after see the same pixels
    band = checkpoint_band(run_dir / "final")
    mixed_convs = _render(mixed, policy, held, seed)
    tasks: dict[str, int] = {}
    by_task: dict[str, list[Conversation]] = {}
    for conv in mixed_convs:
        tasks[str(conv.meta["task"])] = tasks.get(str(conv.meta["task"]), 0) + 1
        by_task.setdefault(str(conv.meta["task"]), []).append(conv)
    checkpoints = {"trained": run_dir / "final", "base": run_dir / "tiny_base"}
    losses_by: dict[str, dict[str, float]] = {}
    mean_by: dict[str, float] = {}
    runs = {label: wd / "eval" / label for label in checkpoints}
    roots = dict.fromkeys(SYNTHETIC_BENCHMARKS, wd)
    params = GenerationParams(max_new_tokens=s.max_new_tokens)
    for label, checkpoint in checkpoints.items():
        loaded = load_checkpoint(checkpoint, dtype="float32", device="cpu", attn="sdpa")
        losses_by[label] = {t: _mean_loss(loaded, c, held) for t, c in by_task.items()}
        mean_by[label] = _mean_loss(loaded, mixed_convs, held)
        say(f"eval run: the {label} checkpoint over {', '.join(SYNTHETIC_BENCHMARKS)}")
        _, summary = evaluate(
            runs[label],
            roots,
            backend=HFBackend(loaded, band=band, batch_size=s.batch),
            backend_name="hf",
            params=params,
            model=model_fingerprint(str(checkpoint), "hf"),
            batch_size=s.batch,
            console=console,
        )
        say(summary.line())
        del loaded
        for line in result_lines(score_run(runs[label]), width=console.width):
            say(line)
    written = write_report(
        load_run(runs["trained"]), wd / "eval" / "report", other=load_run(runs["base"]), html=True
    )
    report = next(Path(f) for f in written["files"] if Path(f).suffix == ".html")
    benchmarks = _bench_results(written, runs)
    say(f"eval report: {report}")
    seconds["eval"] = time.perf_counter() - started
    return EndToEndResult(
        seed=seed,
        settings=s,
        workdir=wd,
        built=totals,
        n_colour_images=n_colours,
        losses=losses,
        heldout_tasks=tasks,
        loss_before=mean_by["base"],
        loss_after=mean_by["trained"],
        benchmarks=benchmarks,
        report=report,
        runs=runs,
        chance=1 / len(COLOUR_CLASSES),
        det_first_answer=_first_output(runs["trained"], "synthetic_det"),
        det_prior_map_nc=_prior_map_nc(
            wd / "src" / "boxes" / "labelTxt", held / "boxes" / "labelTxt"
        ),
        task_losses={t: (losses_by["base"][t], losses_by["trained"][t]) for t in by_task},
        seconds=seconds,
    )


def _bench_results(written: dict[str, Any], runs: dict[str, Path]) -> dict[str, BenchResult]:
    """Per benchmark: the trained run's numbers and coverage, the base's strict value and the
    paired interval of the gain (the report pairs trained = A with base = B, so the gain
    trained − base is minus its B − A)."""
    results = json.loads((runs["trained"] / "results.json").read_text(encoding="utf-8"))
    diffs = {d["benchmark"]: d for d in written["diffs"] or []}
    out: dict[str, BenchResult] = {}
    for name, entry in results["benchmarks"].items():
        ci = diffs.get(name, {}).get("ci95")
        out[name] = BenchResult(
            metric=str(entry["metric"]),
            strict=entry["strict"],
            official=entry["official"],
            base_strict=diffs.get(name, {}).get("b"),
            n=int(entry["coverage"]["n_samples"]),
            n_done=int(entry["coverage"]["n_done"]),
            gain_ci95=None if ci is None else (-float(ci[1]), -float(ci[0])),
        )
    return out


def _first_output(run: Path, bench: str) -> str:
    """The first merged answer of ``bench`` in ``run`` (raw model text)."""
    path = run / "scores" / bench / "predictions.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        output = json.loads(line).get("output")
        return output if isinstance(output, str) else ""
    return ""
