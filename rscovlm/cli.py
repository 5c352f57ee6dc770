"""The ``rscovlm`` command line.

Each command is a thin adapter: parse options, call one library function, print a short summary.
Heavy imports happen inside the commands so ``rscovlm --help`` stays instant on a core install.
Errors of the project's family (:class:`rscovlm.errors.RscovlmError`) become one line on stderr
and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from rscovlm import __version__
from rscovlm.errors import RscovlmError

app = typer.Typer(
    name="rscovlm",
    help="Co-train and evaluate vision-language models for remote-sensing multi-task learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

eval_app = typer.Typer(help="Evaluate predictions against ground truth.", no_args_is_help=True)
data_app = typer.Typer(help="Build, inspect and export training data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(data_app, name="data")

_state = {"debug": False}

# The deepspeed launcher runs `python -m rscovlm --local_rank=<r> train ...` (its flag right
# after the module, before the command); `rscovlm train ... --local_rank <r>` is accepted too.
# The value is ignored: LOCAL_RANK in the environment, which every launcher sets, is what the
# trainer reads.
_LOCAL_RANK = typer.Option(None, "--local_rank", "--local-rank", hidden=True)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
    local_rank: int | None = _LOCAL_RANK,
) -> None:
    """rscovlm: data curation, co-training, inference and evaluation of RS VLMs.

    Examples:
      rscovlm demo
      rscovlm eval det --gt labelTxt/ --pred preds.jsonl --pred-format jsonl
    """
    _state["debug"] = debug


@app.command()
def version() -> None:
    """Print the installed rscovlm version."""
    typer.echo(__version__)


# --- eval commands (rscovlm eval ...) -------------------------------------------------------


def _choice(option: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` if allowed, else a one-line :class:`InputError` naming the option."""
    from rscovlm.errors import InputError

    if value not in allowed:
        raise InputError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value


@eval_app.command("det")
def eval_det(
    gt: str = typer.Option(..., "--gt", help="Ground truth: DOTA labelTxt folder or COCO json."),
    pred: str = typer.Option(..., "--pred", help="Predictions: a file or a folder of them."),
    pred_format: str = typer.Option(
        ..., "--pred-format", help="task1 (Task1_<class>.txt), vlm (model outputs), jsonl."
    ),
    classes: str | None = typer.Option(
        None,
        "--classes",
        help="dota1.0|dota1.5|dota2.0|dior|fair1m1.0|srsdd|rsar|hrsc or a file with one class "
        "per line (default: the COCO categories, dota1.0 for a labelTxt folder).",
    ),
    metric: str = typer.Option("voc07", "--metric", help="voc07 (11-point) or voc12 (area)."),
    iou_mode: str = typer.Option(
        "dota", "--iou-mode", help="dota (quad IoU > t) or mmrotate (rectangles, IoU >= t)."
    ),
    iou: list[float] = typer.Option([0.5], "--iou", help="IoU threshold; repeat for several."),
    nc: bool = typer.Option(False, "--nc", help="mAP_nc: score every kept prediction 1."),
    ties: str = typer.Option("group", "--ties", help="group (order-independent) or stable."),
    sweep_val: str | None = typer.Option(
        None, "--sweep-val", help="Validation predictions: pick tau there, apply it to --pred."
    ),
    sweep_val_gt: str | None = typer.Option(
        None, "--sweep-val-gt", help="Ground truth of --sweep-val (default: --gt)."
    ),
    count_difficult: bool = typer.Option(
        False, "--count-difficult", help="Count difficult objects as normal ground truth."
    ),
    family: str | None = typer.Option(
        None, "--family", help="Model family of vlm outputs without one (qwen2_5_vl)."
    ),
    f1: bool = typer.Option(True, "--f1/--no-f1", help="Also compute mF1 and strict F1."),
    json_out: str | None = typer.Option(None, "--json", help="Write all numbers as JSON."),
) -> None:
    """Evaluate rotated-box detections: per-class AP, mAP / mAP_nc, threshold sweep, mF1.

    \b
    Examples:
      rscovlm eval det --gt labelTxt/ --pred results/ --pred-format task1
      rscovlm eval det --gt val.json --pred outputs.jsonl --pred-format vlm --json out.json
      rscovlm eval det --gt test/ --pred test_det/ --pred-format task1 --sweep-val val_det/ \\
          --sweep-val-gt val/
    """
    from pathlib import Path

    from rich.console import Console

    from rscovlm.eval.det_eval import render_det_report, run_det_eval, write_json_atomic
    from rscovlm.eval.detection_io import PRED_FORMATS
    from rscovlm.formats.classes import get_classes

    fmt = _choice("--pred-format", pred_format, PRED_FORMATS)
    class_list = get_classes(classes) if classes else None
    if class_list is None and Path(gt).is_dir():
        class_list = get_classes("dota1.0")
    report = run_det_eval(
        gt,
        pred,
        fmt,  # type: ignore[arg-type]
        classes=class_list,
        metric=_choice("--metric", metric, ("voc07", "voc12")),  # type: ignore[arg-type]
        iou_mode=_choice("--iou-mode", iou_mode, ("dota", "mmrotate")),  # type: ignore[arg-type]
        iou_thresholds=iou,
        nc=nc,
        ties=_choice("--ties", ties, ("group", "stable")),  # type: ignore[arg-type]
        sweep_val=sweep_val,
        sweep_val_gt=sweep_val_gt,
        f1=f1,
        ignore_difficult=not count_difficult,
        family=family,
    )
    render_det_report(report, Console())
    if json_out is not None:
        write_json_atomic(json_out, report.to_dict())
        typer.echo(f"wrote {json_out}")


@eval_app.command("merge")
def eval_merge(
    pred: str = typer.Option(..., "--pred", help="Predictions on split patches."),
    pred_format: str = typer.Option(..., "--pred-format", help="task1, vlm or jsonl."),
    out: str = typer.Option(..., "--out", help="Folder for the merged Task1_<class>.txt files."),
    classes: str = typer.Option("dota1.0", "--classes", help="Class list name or file."),
    nms_iou: float = typer.Option(0.1, "--nms-iou", help="Class-wise rotated NMS threshold."),
    zip_path: str | None = typer.Option(None, "--zip", help="Also write this server zip."),
    family: str | None = typer.Option(None, "--family", help="Family of vlm outputs."),
) -> None:
    """Merge patch predictions (name__rate__x___y) into whole images for the DOTA server.

    \b
    Examples:
      rscovlm eval merge --pred patches/ --pred-format task1 --out merged/ --zip Task1.zip
    """
    from rscovlm.eval.detection_io import PRED_FORMATS
    from rscovlm.eval.merge import merge_files
    from rscovlm.formats.classes import get_classes

    fmt = _choice("--pred-format", pred_format, PRED_FORMATS)
    if not 0.0 <= nms_iou <= 1.0:
        from rscovlm.errors import InputError

        raise InputError(f"--nms-iou must lie in [0, 1], got {nms_iou}")
    result = merge_files(
        pred,
        fmt,  # type: ignore[arg-type]
        get_classes(classes),
        out,
        nms_iou=nms_iou,
        zip_path=zip_path,
        default_family=family,
    )
    for line in result.summary():
        typer.echo(line)
    typer.echo(
        f"wrote {len(result.files)} Task1 files to {out}" + (f" and {zip_path}" if zip_path else "")
    )


# --- data commands (rscovlm data ...) -------------------------------------------------------


@data_app.command("build")
def data_build(
    recipe: str = typer.Argument(..., help="Recipe YAML (sources, data root, limits)."),
    out: str = typer.Option(..., "--out", help="Output folder (finished shards are reused)."),
    workers: int = typer.Option(2, "--workers", help="Validation worker processes (0: inline)."),
    root: str | None = typer.Option(None, "--root", help="Data root (overrides the recipe's)."),
) -> None:
    """Read a recipe's sources, validate every record, write shards, manifest, rejected.jsonl.

    Examples:
      rscovlm data build rscovlm/configs/data/synthetic_demo.yaml --root data --out built/demo
      rscovlm data stats built/demo
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rscovlm.data.build import build_dataset
    from rscovlm.data.recipe import load_recipe

    if workers < 0:
        from rscovlm.errors import InputError

        raise InputError(f"--workers must be >= 0, got {workers}")
    spec, data_root = load_recipe(recipe, root)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("records validated", total=None)

        def on_shard(done: dict[str, object], skipped: bool) -> None:
            progress.advance(task, int(done["read"]))  # type: ignore[call-overload]

        result = build_dataset(spec, data_root, out, workers=workers, on_shard=on_shard)
    totals = result.manifest["totals"]
    typer.echo(
        f"read {totals['read']} = kept {totals['kept']} + rejected {totals['rejected']}; "
        f"{result.written} shards written, {result.skipped} reused; see {out}/rejected.jsonl"
    )


@data_app.command("stats")
def data_stats(built: str = typer.Argument(..., help="A folder written by `data build`.")) -> None:
    """Print a built dataset's manifest: counts per source, split, task, class and reason.

    Examples:
      rscovlm data stats built/demo
    """
    from rich.console import Console

    from rscovlm.data.shards import read_manifest
    from rscovlm.data.stats import render_manifest

    render_manifest(read_manifest(built), Console())


@data_app.command("export")
def data_export(
    built: str = typer.Argument(..., help="A folder written by `data build`."),
    fmt: str = typer.Option("coco", "--format", help="coco, swift or llamafactory."),
    out: str = typer.Option(..., "--out", help="Output file."),
    source: str | None = typer.Option(None, "--source", help="Export only this source."),
    min_pixels: int = typer.Option(64 * 28 * 28, "--min-pixels", help="Band minimum (chat)."),
    max_pixels: int = typer.Option(1296 * 28 * 28, "--max-pixels", help="Band maximum (chat)."),
    family: str = typer.Option("qwen2_5_vl", "--family", help="Model family (chat coords)."),
    box: str = typer.Option("quad", "--box", help="Det./grounding box (chat): quad, hbb, obb."),
    seed: int = typer.Option(0, "--seed", help="Render seed (chat; drawn per record uid)."),
) -> None:
    """Export a built dataset: COCO json of detections, or fixed-resolution conversations.

    Examples:
      rscovlm data export built/demo --format coco --out demo_coco.json
      rscovlm data export built/demo --format swift --out demo_swift.jsonl
    """
    from rscovlm.data.export import export_dataset
    from rscovlm.resolution import PixelBand

    options = {}
    if fmt != "coco":
        box = _choice("--box", box, ("quad", "hbb", "obb"))
        band = PixelBand(min_pixels, max_pixels)
        options = {"band": band, "family": family, "kind": box, "seed": seed}
    counts = export_dataset(built, out, fmt, source, **options)
    typer.echo(f"wrote {out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@data_app.command("zoom-build")
def data_zoom_build(
    annotations: str = typer.Argument(..., help="LRS-VQA json / JSONL, relative to --root."),
    out: str = typer.Option(..., "--out", help="Output JSONL of zoom records."),
    root: str = typer.Option(".", "--root", help="Data root (image paths are relative to it)."),
    image_root: str | None = typer.Option(None, "--image-root", help="Image folder under root."),
    crops: str | None = typer.Option(None, "--crops", help="Also write crops (PNG) here."),
    source: str = typer.Option("lrsvqa_zoom", "--source", help="Source name of the records."),
    pad_ratio: float = typer.Option(0.5, "--pad-ratio", help="Context per side (x region)."),
    min_size: int = typer.Option(448, "--min-size", help="Minimum crop side (pixels)."),
    max_aspect: float = typer.Option(4.0, "--max-aspect", help="Largest crop side ratio."),
    max_fraction: float = typer.Option(0.5, "--max-fraction", help="Larger crops: no zoom."),
) -> None:
    """Build LRS-VQA-Zoom: one evidence region -> Zoom-in Chain record, else single-turn QA.

    Examples:
      rscovlm data zoom-build LRS_VQA/train.jsonl --root data --out built/lrsvqa_zoom.jsonl
      rscovlm data zoom-build zoom_vqa.jsonl --root demo --out zoom.jsonl --crops crops
    """
    from rscovlm.data.zoom_build import CropPolicy, build_zoom_dataset

    policy = CropPolicy(pad_ratio, min_size, max_aspect, max_fraction)
    result = build_zoom_dataset(
        root, annotations, out, policy=policy, source=source, image_root=image_root, crops_dir=crops
    )
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(result.decisions.items()))
    typer.echo(
        f"read {result.read} = zoom {result.zoom} + single-turn {result.single} + rejected "
        f"{result.rejected} ({decisions}); wrote {out}"
    )


# --- model commands (rscovlm chat / zoom / serve / detect) ------------------------------------


def _hf_backend(model: str, device: str, dtype: str, adapter: str | None) -> object:
    from rscovlm.model.backends.hf import HFBackend

    return HFBackend(model, device=device, dtype=dtype, adapter=adapter)


@app.command()
def chat(
    question: str = typer.Argument(..., help="The question."),
    model: str = typer.Option(..., "--model", help="Checkpoint directory."),
    image: str | None = typer.Option(None, "--image", help="Image or raster (any size)."),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
    adapter: str | None = typer.Option(None, "--adapter", help="PEFT adapter directory."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", help="Token cap."),
) -> None:
    """Ask one question about one image with the hf backend (greedy).

    Examples:
      rscovlm chat --model RSCoVLM-7B --image scene.png "What is in the image?"
    """
    from rscovlm.imaging import image_size
    from rscovlm.model.backends import GenerationParams
    from rscovlm.model.encoding import image_part, question_conversation

    backend = _hf_backend(model, device, dtype, adapter)
    part = None
    if image is not None:
        part = image_part(image, image_size(image), backend.band, backend.family)  # type: ignore[attr-defined]
    conv = question_conversation(question, part, family=backend.family)  # type: ignore[attr-defined]
    params = GenerationParams(max_new_tokens=max_new_tokens)
    typer.echo(backend.generate([conv], params)[0])  # type: ignore[attr-defined]


@app.command()
def zoom(
    question: str = typer.Argument(..., help="The question."),
    model: str = typer.Option(..., "--model", help="Checkpoint directory."),
    image: str = typer.Option(..., "--image", help="Image or raster of any size (GeoTIFF ok)."),
    trace: str | None = typer.Option(None, "--trace", help="Draw the hops over the overview."),
    max_hops: int = typer.Option(1, "--max-hops", help="Zoom calls followed (trained: 1)."),
    category: str | None = typer.Option(None, "--category", help="e.g. count (no zoom)."),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
    adapter: str | None = typer.Option(None, "--adapter", help="PEFT adapter directory."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", help="Token cap."),
) -> None:
    """Answer with the Zoom-in Chain: overview, zoom call, full-resolution crop, answer.

    Examples:
      rscovlm zoom --model RSCoVLM-7B --image big.tif "What colour is the car?" --trace t.png
    """
    import json

    from rscovlm.model.backends import GenerationParams
    from rscovlm.model.zoom import ZoomAgent, draw_trace

    backend = _hf_backend(model, device, dtype, adapter)
    agent = ZoomAgent(
        backend,  # type: ignore[arg-type]
        max_hops=max_hops,
        params=GenerationParams(max_new_tokens=max_new_tokens),
    )
    result = agent.ask(image, question, category)
    for k, hop in enumerate(result.hops, 1):
        info = {"window": hop.window, "fallback": hop.fallback, "image_tokens": hop.image_tokens}
        typer.echo(f"hop {k}: " + json.dumps(info), err=True)
    if trace:
        draw_trace(result, trace)
        typer.echo(f"trace drawn to {trace}", err=True)
    typer.echo(result.answer)


@app.command()
def serve(
    model: str = typer.Option(..., "--model", help="Checkpoint directory."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    name: str | None = typer.Option(None, "--name", help="Served model id (dir name)."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Env variable holding the required API key."
    ),
    max_images: int = typer.Option(8, "--max-images", help="Images per request at most."),
    max_body_mb: int = typer.Option(32, "--max-body-mb", help="Request body limit (MB)."),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
    adapter: str | None = typer.Option(None, "--adapter", help="PEFT adapter directory."),
) -> None:
    """Serve the model as an OpenAI-compatible /v1/chat/completions and /v1/models.

    Examples:
      rscovlm serve --model RSCoVLM-7B --port 8000
    """
    from pathlib import Path

    from rscovlm.model.serve import ServerConfig
    from rscovlm.model.serve import serve as run_server

    backend = _hf_backend(model, device, dtype, adapter)
    config = ServerConfig(
        name or Path(model).name,
        host=host,
        port=port,
        api_key_env=api_key_env,
        max_images=max_images,
        max_body_bytes=max_body_mb * 1024 * 1024,
    )
    typer.echo(f"serving {config.model_name} on http://{host}:{port}/v1", err=True)
    run_server(backend, config)  # type: ignore[arg-type]


@app.command()
def detect(
    model: str = typer.Option(..., "--model", help="Checkpoint dir (openai: served model name)."),
    image: str = typer.Option(..., "--image", help="Image or raster of any size (GeoTIFF ok)."),
    out: str = typer.Option(..., "--out", help="Output folder."),
    classes: str = typer.Option("dota1.0", "--classes", help="Class list name or file."),
    formats: list[str] = typer.Option(
        ["all"], "--format", help="jsonl, task1, coco, geojson or all (repeatable)."
    ),
    patch: int = typer.Option(1024, "--patch", help="Patch side in pixels."),
    gap: int = typer.Option(200, "--gap", help="Overlap of neighbouring patches."),
    rates: list[float] = typer.Option([1.0], "--rate", help="Resize rate (repeatable)."),
    box: str = typer.Option("quad", "--box", help="quad (oriented) or hbb."),
    batch: int = typer.Option(8, "--batch", help="Patches per generate call."),
    nms_iou: float = typer.Option(0.1, "--nms-iou", help="Class-wise NMS IoU threshold."),
    backend_name: str = typer.Option("hf", "--backend", help="hf, vllm or openai."),
    base_url: str | None = typer.Option(None, "--base-url", help="openai: the API root."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="openai: env variable of the API key (OPENAI_API_KEY)."
    ),
    family: str = typer.Option("qwen2_5_vl", "--family", help="openai: the model family."),
    device: str = typer.Option("cpu", "--device", help="hf: torch device."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
    adapter: str | None = typer.Option(None, "--adapter", help="hf: PEFT adapter directory."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", help="Token cap."),
) -> None:
    """Tiled detection: patches, detection prompt, parse, map back, rotated NMS, outputs.

    Writes predictions.jsonl, task1/, coco.json, detections.geojson (map coordinates and CRS
    for a georeferenced raster), raw_outputs.jsonl and summary.json into --out.

    Examples:
      rscovlm detect --model RSCoVLM-det-7B --image big.tif --classes dota1.0 --out det/
      rscovlm detect --backend openai --base-url URL --model m --image P1.png --out d --format task1
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rscovlm.data.split import TileSpec
    from rscovlm.errors import InputError
    from rscovlm.formats import get_classes
    from rscovlm.imaging import open_raster
    from rscovlm.model.backends import GenerationParams, make_backend
    from rscovlm.model.detect import detect_image
    from rscovlm.model.detect_outputs import resolve_formats, write_outputs

    # Every input is checked before a model is loaded.
    class_list = get_classes(classes)
    chosen = resolve_formats(formats)
    spec = TileSpec(patch, gap, tuple(rates))
    if box not in ("quad", "hbb"):
        raise InputError(f"--box must be quad or hbb, got {box!r}")
    open_raster(image)
    params = GenerationParams(max_new_tokens=max_new_tokens)
    if backend_name == "hf":
        backend = _hf_backend(model, device, dtype, adapter)
    elif backend_name == "openai":
        options: dict[str, object] = {"base_url": base_url, "family": family}
        if api_key_env is not None:
            options["api_key_env"] = api_key_env
        backend = make_backend("openai", model, **options)
    else:
        backend = make_backend(backend_name, model, dtype=dtype)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("patches", total=None)

        def on_batch(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = detect_image(
            backend,  # type: ignore[arg-type]
            image,
            class_list,
            spec=spec,
            box=box,  # type: ignore[arg-type]
            batch=batch,
            nms_iou=nms_iou,
            params=params,
            progress=on_batch,
        )
    written = write_outputs(result, out, chosen)
    for line in result.summary():
        typer.echo(line, err=True)
    typer.echo(f"{len(result.quads)} boxes written to {out} ({', '.join(written)})")


# --- train commands -----------------------------------------------------------------------------


@app.command()
def train(
    config: str = typer.Argument(..., help="A training YAML, or a shipped name (tiny_cpu, ...)."),
    overrides: list[str] = typer.Argument(None, help="Dotted key=value overrides."),
    validate_only: bool = typer.Option(False, "--validate", help="Check the config and stop."),
    local_rank: int | None = _LOCAL_RANK,
) -> None:
    """Co-train a model on a data mixture (one process; launch with torchrun for several).

    Examples:
      rscovlm train tiny_cpu train.max_steps=20
      torchrun --nproc_per_node 8 -m rscovlm train rscovlm_official
      deepspeed --num_gpus 8 --module rscovlm train rscovlm_official
    """
    from rscovlm.train.config import load_train_config, shipped_train_configs

    shipped = shipped_train_configs()
    cfg = load_train_config(shipped.get(config, config), list(overrides or []))
    if validate_only:
        typer.echo(f"{config}: valid")
        return
    from rscovlm.train.trainer import run

    result = run(cfg)
    typer.echo(f"trained {result.steps} steps; checkpoints in {result.output_dir}")


# --- demo -------------------------------------------------------------------------------------


@app.command()
def demo(
    seed: int = typer.Option(0, "--seed", help="Seed of the data, the model and the simulation."),
    quick: bool = typer.Option(
        False, "--quick", help="Skip data, training and evaluation: the protocol table only."
    ),
    steps: int = typer.Option(100, "--steps", help="Training steps of 8 samples.", min=1),
    workdir: str | None = typer.Option(
        None, "--workdir", help="Work dir for data, run and predictions (default: a temp dir)."
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary work dir."),
) -> None:
    """Co-train and evaluate a tiny model end to end, offline on the CPU (about a minute).

    \b
    1. data:  seeded synthetic aerial scenes and colour scenes, built with `data build`;
    2. train: the tiny Qwen2.5-VL (real vocabulary) co-trained on classification + VQA +
              detection with configs/train/tiny_cpu.yaml; the loss falls;
    3. eval:  held-out loss before/after, scene accuracy vs chance, and detection through
              the real pipeline (prompt, generate, parse, map back) scored by mAP_nc and mF1;
    4. the fair detection protocol on SIMULATED predictions (a scored detector vs a
              score-less VLM): mAP, mAP with scores forced to 1, mAP_nc at tau*, mF1.
    Ends with a summary. The same seed gives the same numbers.

    \b
    Examples:
      rscovlm demo
      rscovlm demo --quick                      # the protocol table only (a few seconds)
      rscovlm demo --workdir demo_run --steps 50
    """
    from rich.console import Console

    if quick:
        from rscovlm.eval.demo import run_demo

        run_demo(seed=seed, console=Console())
        return
    from dataclasses import replace

    from rscovlm.eval.demo import run_full_demo
    from rscovlm.eval.demo_e2e import DemoSettings

    settings = replace(DemoSettings(), steps=steps)
    run_full_demo(seed, Console(), settings=settings, workdir=workdir, keep=keep)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script; maps project errors to one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="rscovlm")
    except RscovlmError as exc:
        if _state["debug"] or "--debug" in args:
            raise
        typer.echo(f"rscovlm: error: {exc}", err=True)
        sys.exit(2)
