"""``rscovlm eval …``: score predictions against ground truth."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from rscovlm.cli.app import eval_app
from rscovlm.cli.options import (
    Family,
    ModelOptions,
    examples,
    make_text_console,
    max_new_tokens_option,
    model_options,
    out_option,
)
from rscovlm.errors import InputError
from rscovlm.eval.runner.shards import DEFAULT_SHARDS


class PredFormat(str, Enum):
    """:data:`rscovlm.eval.detection_io.PRED_FORMATS`."""

    task1 = "task1"
    vlm = "vlm"
    jsonl = "jsonl"


class Metric(str, Enum):
    """``rscovlm.eval.metrics.ap.Metric``: 11-point (VOC07) or area (VOC12) AP."""

    voc07 = "voc07"
    voc12 = "voc12"


class IouMode(str, Enum):
    """``rscovlm.eval.metrics.detection.IouMode``."""

    dota = "dota"
    mmrotate = "mmrotate"


class Ties(str, Enum):
    """``rscovlm.eval.metrics.ap.Ties``."""

    group = "group"
    stable = "stable"


RESULTS_FILE = "results.json"
"""What ``eval det --out DIR`` writes: every number of the report."""
ZIP_FILE = "Task1.zip"
"""What ``eval merge --zip`` writes into ``--out``: the DOTA evaluation server's upload."""

_PRED_FORMAT_HELP = "task1 (Task1_<class>.txt), vlm (model outputs) or jsonl (predictions)."
_FAMILY_HELP = "Family of vlm outputs that record none (default: qwen2_5_vl)."


@eval_app.command(
    "det",
    epilog=examples(
        "rscovlm eval det --gt labelTxt/ --pred results/ --pred-format task1",
        "rscovlm eval det --gt labelTxt/P0706.txt --pred predictions.jsonl --pred-format jsonl",
        "rscovlm eval det --gt val.json --pred outputs.jsonl --pred-format vlm --out scores/",
        "rscovlm eval det --gt test/ --pred test_det/ --pred-format task1 --sweep-val val_det/ "
        "--sweep-val-gt val/",
    ),
)
def eval_det(
    gt: str = typer.Option(
        ..., "--gt", help="Ground truth: DOTA labelTxt folder, one labelTxt .txt, or COCO json."
    ),
    pred: str = typer.Option(..., "--pred", help="Predictions: a file or a folder of them."),
    pred_format: PredFormat = typer.Option(..., "--pred-format", help=_PRED_FORMAT_HELP),
    classes: str | None = typer.Option(
        None,
        "--classes",
        help="dota1.0|dota1.5|dota2.0|dior|fair1m1.0|srsdd|rsar|hrsc or a file with one class "
        "per line (default: the COCO categories, dota1.0 for labelTxt).",
    ),
    metric: Metric = typer.Option(Metric.voc07, "--metric", help="voc07 (11-point), voc12 (area)."),
    iou_mode: IouMode = typer.Option(
        IouMode.dota, "--iou-mode", help="dota (quad IoU > t) or mmrotate (rectangles, IoU >= t)."
    ),
    iou: list[float] = typer.Option([0.5], "--iou", help="IoU threshold; repeat for several."),
    nc: bool = typer.Option(False, "--nc", help="mAP_nc: score every kept prediction 1."),
    ties: Ties = typer.Option(Ties.group, "--ties", help="group (order-independent) or stable."),
    sweep_val: str | None = typer.Option(
        None, "--sweep-val", help="Validation predictions: pick tau there, apply it to --pred."
    ),
    sweep_val_gt: str | None = typer.Option(
        None, "--sweep-val-gt", help="Ground truth of --sweep-val (default: --gt)."
    ),
    count_difficult: bool = typer.Option(
        False, "--count-difficult", help="Count difficult objects as normal ground truth."
    ),
    family: Family | None = typer.Option(None, "--family", help=_FAMILY_HELP),
    f1: bool = typer.Option(True, "--f1/--no-f1", help="Also compute mF1 and strict F1."),
    out: str | None = typer.Option(
        None, "--out", metavar="DIR", help=f"Also write every number to DIR/{RESULTS_FILE}."
    ),
) -> None:
    """Evaluate rotated-box detections: per-class AP, mAP / mAP_nc, mAP@[.5:.95], sweep, mF1.

    Exits 2 when nothing could be read from --pred (with a guess at the right --pred-format),
    and counts the ground-truth images no prediction line names (a crashed run looks so).
    """

    from rscovlm.eval.det_eval import render_det_report, run_det_eval
    from rscovlm.files import atomic_write_json
    from rscovlm.formats.classes import get_classes

    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"--out {out} is a file; give a folder (results go to DIR/{RESULTS_FILE})")
    class_list = get_classes(classes) if classes else None
    if class_list is None and (Path(gt).is_dir() or Path(gt).suffix.lower() == ".txt"):
        class_list = get_classes("dota1.0")
    report = run_det_eval(
        gt,
        pred,
        pred_format.value,  # type: ignore[arg-type]
        classes=class_list,
        metric=metric.value,  # type: ignore[arg-type]
        iou_mode=iou_mode.value,  # type: ignore[arg-type]
        iou_thresholds=iou,
        nc=nc,
        ties=ties.value,  # type: ignore[arg-type]
        sweep_val=sweep_val,
        sweep_val_gt=sweep_val_gt,
        f1=f1,
        ignore_difficult=not count_difficult,
        family=family.value if family else None,
    )
    render_det_report(report, make_text_console())
    if out is not None:
        path = Path(out) / RESULTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, report.to_dict())
        typer.echo(f"wrote {path}")


@eval_app.command(
    "merge",
    epilog=examples(
        "rscovlm eval merge --pred patches/ --pred-format task1 --out merged/ --zip",
        "rscovlm eval merge --pred outputs.jsonl --pred-format vlm --classes dior --out merged/",
    ),
)
def eval_merge(
    pred: str = typer.Option(..., "--pred", help="Predictions on split patches."),
    pred_format: PredFormat = typer.Option(..., "--pred-format", help=_PRED_FORMAT_HELP),
    out: str = out_option("Folder of the merged Task1_<class>.txt files (created)."),
    classes: str = typer.Option("dota1.0", "--classes", help="Class list name or file."),
    nms_iou: float = typer.Option(
        0.1, "--nms-iou", min=0.0, max=1.0, help="Class-wise rotated NMS threshold."
    ),
    zip_upload: bool = typer.Option(
        False, "--zip", help=f"Also write --out/{ZIP_FILE} for the DOTA evaluation server."
    ),
    family: Family | None = typer.Option(None, "--family", help=_FAMILY_HELP),
) -> None:
    """Merge patch predictions (name__rate__x___y) into whole images for the DOTA server."""
    from rscovlm.eval.merge import merge_files
    from rscovlm.formats.classes import get_classes

    zip_path = Path(out) / ZIP_FILE if zip_upload else None
    result = merge_files(
        pred,
        pred_format.value,  # type: ignore[arg-type]
        get_classes(classes),
        out,
        nms_iou=nms_iou,
        zip_path=zip_path,
        default_family=family.value if family else None,
    )
    for line in result.summary():
        typer.echo(line)
    typer.echo(
        f"wrote {len(result.files)} Task1 files to {out}" + (f" and {zip_path}" if zip_path else "")
    )


_BENCHMARK_HELP = "A registered benchmark name (rscovlm eval list shows them all)."
_ROOT_HELP = "The folder holding the benchmark's released files (see rscovlm eval list)."


@eval_app.command(
    "list",
    epilog=examples("rscovlm eval list", "rscovlm eval list --task grounding"),
)
def eval_list(
    task: str | None = typer.Option(None, "--task", help="Only benchmarks of this task."),
) -> None:
    """Every benchmark of the suite: its task, headline metric and where its files go."""
    from rscovlm.eval.benchmarks import get_benchmark, list_benchmarks

    for name in list_benchmarks():
        bench = get_benchmark(name)
        if task is not None and bench.task != task:
            continue
        typer.echo(f"{name}\t{bench.task}\t{bench.metric}\t{bench.files}")


@eval_app.command(
    "samples",
    epilog=examples(
        "rscovlm eval samples --benchmark cls_aid --root data/scene_cls_root --out runs/cls_aid",
        "rscovlm eval samples --benchmark geoground_224 --root data/refGeo --out runs/gg224",
    ),
)
def eval_samples(
    benchmark: str = typer.Option(..., "--benchmark", help=_BENCHMARK_HELP),
    root: Path = typer.Option(..., "--root", help=_ROOT_HELP),
    out: str = out_option("Folder of samples.jsonl (created)."),
) -> None:
    """Write a benchmark's prompts and references: DIR/samples.jsonl (id, messages, reference,
    meta with the benchmark's own record id)."""
    from rscovlm.eval.benchmarks import get_benchmark
    from rscovlm.eval.benchmarks.run import read_benchmark, write_samples

    bench = get_benchmark(benchmark)
    samples, read = read_benchmark(bench, root)
    path = write_samples(samples, Path(out))
    typer.echo(
        f"{bench.name}: {len(samples) + read.n_bad} records, {len(samples)} samples, "
        f"{read.n_bad} bad records"
    )
    for example in read.bad_examples:
        typer.echo(f"  bad: {example}")
    typer.echo(f"wrote {path}")


class ZoomMode(str, Enum):
    """:data:`rscovlm.eval.runner.zoom.ZOOM_MODES`: how Zoom-in Chain samples run."""

    ours = "ours"
    official = "official"


_RUN_ROOT_HELP = (
    "Benchmark files: DIR for every benchmark, or BENCH=DIR for one (repeat; later wins)."
)


@eval_app.command(
    "run",
    epilog=examples(
        "rscovlm eval run rsvqa_lr cls_aid --root rsvqa_lr=data/RSVQA_LR --root cls_aid=data/AID "
        "--model Qingyun/RSCoVLM-7B-2512 --out runs/7b",
        "torchrun --nproc_per_node 8 -m rscovlm eval run lrsvqa_visual_cot --root data/LRS_VQA "
        "--model Qingyun/RSCoVLM-7B-2512 --device cuda --out runs/7b-uhr",
        "rscovlm eval run rsvqa_lr --root data/RSVQA_LR --backend openai --base-url "
        "http://127.0.0.1:8000/v1 --model served-name --out runs/served --shard 0/2",
        "rscovlm eval run cls_aid --root data/AID --backend replay --model old/predictions.jsonl "
        "--out runs/replayed",
    ),
)
@model_options
def eval_run(
    benchmarks: list[str] = typer.Argument(..., metavar="BENCH...", help=_BENCHMARK_HELP),
    root: list[str] = typer.Option(..., "--root", help=_RUN_ROOT_HELP),
    out: str = out_option("The run folder (created; rerun the same command to resume)."),
    shard: str | None = typer.Option(
        None, "--shard", metavar="I/N", help="This worker's slot (default: torchrun/SLURM env)."
    ),
    shards: int | None = typer.Option(
        None,
        "--shards",
        min=1,
        help=f"Shards of a new run, frozen in its manifest (default {DEFAULT_SHARDS}).",
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per generate call."),
    max_new_tokens: int | None = max_new_tokens_option(),
    zoom: ZoomMode = typer.Option(
        ZoomMode.ours, "--zoom", help="Zoom-in Chain samples: ours, or the official loop."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Only the first N samples of each benchmark."
    ),
    allow_mismatch: bool = typer.Option(
        False, "--allow-mismatch", help="Resume even if the run was made with another manifest."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
    log_every: float = typer.Option(
        10.0, "--log-every", min=0.0, help="Seconds between progress lines when not a TTY."
    ),
    *,
    models: ModelOptions,
) -> None:
    """Run a model over benchmarks, resumably: manifest, id-hash shards, one fsynced file per
    worker; a restart with any number of workers runs only what is missing."""
    from rscovlm.eval.runner.evaluate import evaluate
    from rscovlm.eval.runner.manifest import model_fingerprint
    from rscovlm.eval.runner.session import OpenedRun, parse_roots
    from rscovlm.eval.runner.shards import WorkerSlot, pin_visible_device
    from rscovlm.model.backends import GenerationParams

    slot = WorkerSlot.parse(shard) if shard is not None else WorkerSlot.from_env()
    roots = parse_roots(benchmarks, root)
    models.check()
    if models.backend.value in ("hf", "vllm") and ":" not in (models.device or ""):
        pin_visible_device()  # torchrun/SLURM: one GPU per worker, before any engine starts
    backend = models.build(batch_size=batch_size)  # one runner batch = one backend batch
    fingerprint = model_fingerprint(
        models.model, models.backend.value, models.adapter, models.base_url
    )

    def report_reads(opened: OpenedRun) -> None:
        for name, read in opened.reads.items():
            if read.n_bad:
                typer.echo(
                    f"{name}: {read.n_bad} bad benchmark records skipped, "
                    f"e.g. {read.bad_examples[0]}"
                )

    run = Path(out)
    _, summary = evaluate(
        run,
        roots,
        backend=backend,
        backend_name=models.backend.value,
        params=GenerationParams(max_new_tokens=max_new_tokens),
        model=fingerprint,
        slot=slot,
        n_shards=shards,
        zoom=zoom.value,
        limit=limit,
        allow_mismatch=allow_mismatch,
        batch_size=batch_size,
        progress=progress,
        log_every=log_every,
        on_open=report_reads,
    )
    typer.echo(summary.line())
    _print_next(run, slot.count)


def _print_next(run: Path, n_workers: int) -> None:
    """The exact commands after a worker: what a rerun would do, then score and report."""
    import shlex

    from rscovlm.eval.runner.merge import coverage, load_run, next_commands, rerun_line

    manifest, scan = load_run(run)
    typer.echo(rerun_line(coverage(manifest, scan)))
    if n_workers > 1:
        typer.echo(
            f"(other workers may still be running: rscovlm eval status {shlex.quote(str(run))})"
        )
    for cmd in next_commands(run):
        typer.echo(f"next: {cmd}")


@eval_app.command(
    "status",
    epilog=examples("rscovlm eval status runs/7b"),
)
def eval_status(
    run: Path = typer.Argument(..., metavar="RUN", help="A run folder of rscovlm eval run."),
) -> None:
    """Coverage of a run per benchmark (done, errors, missing), its workers' files, throughput."""
    from rscovlm.eval.runner.merge import status_lines

    for line in status_lines(run):
        typer.echo(line)


def _score_run(run: Path, roots: list[str] | None) -> None:
    from rscovlm.eval.runner.manifest import read_run_manifest
    from rscovlm.eval.runner.merge import RESULTS_FILE, result_lines, score_run
    from rscovlm.eval.runner.session import parse_roots

    manifest = read_run_manifest(run)
    if manifest is None:
        raise InputError(f"{run} is not a run folder (no manifest.json; see rscovlm eval run)")
    names = list(manifest.benchmarks)
    overrides = parse_roots(names, roots) if roots else None
    results = score_run(run, overrides)
    for line in result_lines(results):
        typer.echo(line)
    typer.echo(f"wrote {run / RESULTS_FILE} and {run}/scores/<benchmark>/")


@eval_app.command(
    "score",
    epilog=examples(
        "rscovlm eval score runs/7b",
        "rscovlm eval score --benchmark cls_aid --root data/scene_cls_root "
        "--pred runs/cls_aid/predictions.jsonl --out runs/cls_aid",
        "rscovlm eval score --benchmark geochat_referring --root data/geochat "
        "--pred preds.jsonl --out scores/",
    ),
)
def eval_score(
    run: Path | None = typer.Argument(
        None, metavar="[RUN]", help="A run folder of rscovlm eval run: merge, check, score all."
    ),
    benchmark: str | None = typer.Option(None, "--benchmark", help=_BENCHMARK_HELP),
    root: list[str] | None = typer.Option(
        None, "--root", help=_ROOT_HELP + " With RUN: BENCH=DIR overrides the recorded one."
    ),
    pred: Path | None = typer.Option(
        None, "--pred", help="Predictions JSONL: {id, output[, orig_size, resized_size]} lines."
    ),
    out: str | None = typer.Option(
        None, "--out", metavar="DIR", help="Folder of scores.json and sample_scores.jsonl."
    ),
) -> None:
    """Score predictions strictly and officially (CPU only); print every number in full.

    With RUN: merge the workers' files, check coverage against the manifest (missing ids go
    to RUN/missing.jsonl), write RUN/scores/<BENCH>/ and RUN/results.json."""
    from rscovlm.eval.benchmarks import get_benchmark
    from rscovlm.eval.benchmarks.run import (
        read_benchmark,
        read_predictions,
        render_report,
        score_benchmark,
        write_scores,
    )

    if run is not None:
        if benchmark is not None or pred is not None or out is not None:
            raise InputError("give either RUN or --benchmark/--pred/--out, not both")
        _score_run(run, root)
        return
    if benchmark is None or pred is None or out is None or not root:
        raise InputError("give a RUN folder, or all of --benchmark, --root, --pred and --out")
    if len(root) != 1:
        raise InputError("--root: one folder without RUN")
    bench = get_benchmark(benchmark)
    samples, read = read_benchmark(bench, Path(root[0]))
    preds, pred_report = read_predictions(pred, samples)
    scores, report = score_benchmark(bench, samples, preds)
    outputs = {sid: output for sid, (output, _) in preds.items()}
    crops = {sid: info["crop_boxes"] for sid, (_, info) in preds.items() if "crop_boxes" in info}
    path = write_scores(
        Path(out), bench, samples, scores, report, read, pred_report, outputs, Path(root[0]), crops
    )
    for line in render_report(bench.name, report, pred_report):
        typer.echo(line)
    if read.n_bad:
        typer.echo(f"  {read.n_bad} bad benchmark records skipped, e.g. {read.bad_examples[0]}")
    typer.echo(f"wrote {path}")
