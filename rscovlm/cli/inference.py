"""``rscovlm chat | zoom | detect | serve``: run a model through any backend.

The four commands share the model option group of :func:`rscovlm.cli.options.model_options`
(``--model/--backend/--base-url/--api-key-env/--family/--device/--dtype/--adapter``), so a
released checkpoint on the CPU, the same checkpoint under vLLM and a remote OpenAI-compatible
server are one flag apart.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rscovlm.cli.app import app
from rscovlm.cli.options import (
    BackendName,
    DetectBox,
    DetectFormat,
    GeoCrs,
    ModelOptions,
    announce_generation,
    examples,
    make_console,
    max_new_tokens_option,
    model_options,
    out_option,
    still_working,
)


@app.command(
    epilog=examples(
        'rscovlm chat --model Qingyun/RSCoVLM-7B-2512 --image scene.png "What is in the image?"',
        "rscovlm chat --backend openai --base-url http://127.0.0.1:8000/v1 --model served-name "
        '"Describe the airport."',
    )
)
@model_options
def chat(
    question: str = typer.Argument(..., help="The question."),
    image: str | None = typer.Option(None, "--image", help="Image or raster (any size)."),
    max_new_tokens: int | None = max_new_tokens_option(),
    *,
    models: ModelOptions,
) -> None:
    """Ask one question about one image (greedy decoding)."""
    from rscovlm.imaging import image_size
    from rscovlm.model.backends import GenerationParams
    from rscovlm.model.encoding import image_part, question_conversation

    params = GenerationParams(max_new_tokens=max_new_tokens)
    backend = models.build()
    part = None
    if image is not None:
        part = image_part(image, image_size(image), backend.band, backend.family)
    conv = question_conversation(question, part, family=backend.family)
    announce_generation(backend, params)
    with still_working("chat"):
        answer = backend.generate([conv], params)[0].text
    typer.echo(answer)


@app.command(
    epilog=examples(
        'rscovlm zoom --model tiny_model --image big.tif "What colour is the car?" --trace t.png',
        "rscovlm zoom --model Qingyun/RSCoVLM-7B-2512 --image big.tif --category count "
        '"How many ships?"',
    )
)
@model_options
def zoom(
    question: str = typer.Argument(..., help="The question."),
    image: str = typer.Option(..., "--image", help="Image or raster of any size (GeoTIFF ok)."),
    trace: str | None = typer.Option(
        None, "--trace", metavar="PNG", help="Draw the hops over the overview into this picture."
    ),
    max_hops: int = typer.Option(1, "--max-hops", min=0, help="Zoom calls followed (trained: 1)."),
    category: str | None = typer.Option(None, "--category", help="e.g. count (no zoom)."),
    max_new_tokens: int | None = max_new_tokens_option(),
    *,
    models: ModelOptions,
) -> None:
    """Answer with the Zoom-in Chain: overview, zoom call, full-resolution crop, answer."""
    import json

    from rscovlm.model.backends import GenerationParams
    from rscovlm.pipelines.zoom import ZoomAgent, draw_trace

    params = GenerationParams(max_new_tokens=max_new_tokens)
    backend = models.build()
    agent = ZoomAgent(backend, max_hops=max_hops, params=params)
    announce_generation(backend, params)
    with still_working("zoom"):
        result = agent.ask(image, question, category)
    for k, hop in enumerate(result.hops, 1):
        info = {"window": hop.window, "fallback": hop.fallback, "image_tokens": hop.image_tokens}
        typer.echo(f"hop {k}: " + json.dumps(info), err=True)
    if trace:
        draw_trace(result, trace)
        typer.echo(f"trace drawn to {trace}", err=True)
    typer.echo(result.answer)


_GEO_CRS_HELP = (
    "GeoJSON of a georeferenced raster: wgs84 (RFC 7946 lon/lat, what web maps read) or native "
    "(the raster's CRS, named in the pre-RFC 7946 'crs' member GDAL/QGIS read; not RFC 7946)."
)
IMAGES_FILE = "images.json"
"""What a folder or list run writes into ``--out``: per-image status, counts that add up."""


@app.command(
    epilog=examples(
        "rscovlm detect --model Qingyun/RSCoVLM-det-7B-2512 --image big.tif --classes dota1.0 "
        "--out det/",
        "rscovlm detect --model Qingyun/RSCoVLM-det-7B-2512 --image scenes/ --out det/ "
        "--draw drawn/",
        "rscovlm detect --model Qingyun/RSCoVLM-det-7B-2512 --image list.txt --out det/ "
        "--crs native",
        "rscovlm detect --backend openai --base-url http://127.0.0.1:8000/v1 --model m "
        "--image P1.png --out det/ --format task1",
    )
)
@model_options
def detect(
    image: str = typer.Option(
        ...,
        "--image",
        help="Image or raster of any size (GeoTIFF ok), a folder of them, or a .txt list "
        "(one path a line).",
    ),
    out: str = out_option("Output folder (created); one subfolder per image for a batch."),
    classes: str = typer.Option("dota1.0", "--classes", help="Class list name or file."),
    formats: list[DetectFormat] = typer.Option(
        [DetectFormat.all], "--format", help="Files written into --out (repeatable)."
    ),
    patch: int = typer.Option(1024, "--patch", min=1, help="Patch side in pixels."),
    gap: int = typer.Option(200, "--gap", min=0, help="Overlap of neighbouring patches."),
    rates: list[float] = typer.Option([1.0], "--rate", help="Resize rate (repeatable)."),
    box: DetectBox = typer.Option(DetectBox.quad, "--box", help="Boxes the prompt asks for."),
    batch: int = typer.Option(8, "--batch", min=1, help="Patches per generate call."),
    nms_iou: float = typer.Option(
        0.1, "--nms-iou", min=0.0, max=1.0, help="Class-wise NMS IoU threshold."
    ),
    draw: str | None = typer.Option(
        None,
        "--draw",
        metavar="DIR",
        help="Draw boxes and labels on each image (a big raster: on its overview) as "
        "DIR/<image>.png.",
    ),
    draw_side: int = typer.Option(
        2048, "--draw-side", min=64, help="Longer side of a drawn picture in pixels."
    ),
    crs: GeoCrs = typer.Option(GeoCrs.wgs84, "--crs", help=_GEO_CRS_HELP),
    max_new_tokens: int | None = max_new_tokens_option(),
    *,
    models: ModelOptions,
) -> None:
    """Tiled detection: patches, detection prompt, parse, map back, rotated NMS, outputs.

    Writes predictions.jsonl, task1/, coco.json, detections.geojson (RFC 7946 WGS 84 lon/lat
    for a georeferenced raster; --crs native keeps its CRS), raw_outputs.jsonl and summary.json
    into --out. A folder or .txt list writes each image into --out/<image>/ and the status of
    every image into --out/images.json; an image that cannot be read is reported and skipped.
    Progress goes to stderr: a bar on a terminal, lines with rate and ETA otherwise.
    """

    from rscovlm.cli.progress import progress_reporter
    from rscovlm.data.split import TileSpec
    from rscovlm.errors import InputError
    from rscovlm.files import atomic_write_json
    from rscovlm.formats import get_classes
    from rscovlm.imaging import open_raster
    from rscovlm.model.backends import GenerationParams
    from rscovlm.pipelines.detect import detect_image, image_inputs
    from rscovlm.pipelines.detect_outputs import resolve_formats, write_outputs
    from rscovlm.pipelines.draw import draw_result

    # Every input is checked before a model is loaded.
    class_list = get_classes(classes)
    chosen = resolve_formats([f.value for f in formats])
    spec = TileSpec(patch, gap, tuple(rates))
    models.check()
    images, many = image_inputs(image)
    failed: dict[str, str] = {}
    readable = []
    for path in images:
        try:
            open_raster(path)
            readable.append(path)
        except InputError as exc:
            if not many:
                raise
            failed[str(path)] = str(exc)
            typer.echo(f"skipped {path}: {exc}", err=True)
    if not readable:
        raise InputError(f"no readable image in {image} ({len(failed)} could not be opened)")
    if draw is not None:
        for path in readable:
            if (Path(draw) / f"{path.stem}.png").resolve() == path.resolve():
                raise InputError(f"--draw {draw} would overwrite the input {path}; pick a folder")
    params = GenerationParams(max_new_tokens=max_new_tokens)
    backend = models.build()
    announce_generation(backend, params, per="patch")
    console = make_console(stderr=True)
    done: dict[str, dict[str, object]] = {}
    n_boxes = 0
    for k, path in enumerate(readable, 1):
        label = f"[{k}/{len(readable)}] {path.stem}" if many else path.stem
        target = Path(out) / path.stem if many else Path(out)
        try:
            with progress_reporter(console, label) as on_batch:
                result = detect_image(
                    backend, path, class_list, spec=spec, box=box.value, batch=batch,
                    nms_iou=nms_iou, params=params, progress=on_batch,
                )  # fmt: skip
            written = write_outputs(result, target, chosen, crs=crs.value)  # type: ignore[arg-type]
            if draw is not None:
                written["draw"] = draw_result(
                    result, Path(draw) / f"{result.image_id}.png", max_side=draw_side
                )
        except InputError as exc:  # one bad image never stops a batch
            if not many:
                raise
            failed[str(path)] = str(exc)
            typer.echo(f"skipped {path}: {exc}", err=True)
            continue
        for line in result.summary():
            typer.echo(line, err=True)
        n_boxes += len(result.quads)
        done[str(path)] = {"out": str(target), "n_kept": len(result.quads)}
        if draw is not None:
            typer.echo(f"drawn to {written['draw']}", err=True)
        if not many:
            typer.echo(f"{len(result.quads)} boxes written to {out} ({', '.join(written)})")
    if many:
        status = {
            "n_images": len(images), "n_done": len(done), "n_failed": len(failed),
            "done": done, "failed": failed,
        }  # fmt: skip
        atomic_write_json(Path(out) / IMAGES_FILE, status)
        typer.echo(
            f"{len(images)} images: {len(done)} done, {len(failed)} skipped as unreadable; "
            f"{n_boxes} boxes written to {out}/<image>/ (status in {Path(out) / IMAGES_FILE})"
        )
        if not done:
            raise InputError(f"no image of {image} could be processed ({len(failed)} failed)")


@app.command(
    epilog=examples(
        "rscovlm serve --model Qingyun/RSCoVLM-7B-2512 --port 8000",
        "rscovlm serve --model Qingyun/RSCoVLM-7B-2512 --host 0.0.0.0 "
        "--require-key-env RSCOVLM_KEY",
        "rscovlm serve --model runs/dota/final --served-name dota-7b --max-batch 16",
        "rscovlm serve --backend vllm --model Qingyun/RSCoVLM-7B-2512 --dtype bfloat16",
    )
)
@model_options
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    port: int = typer.Option(8000, "--port", help="TCP port (0: any free)."),
    name: str | None = typer.Option(
        None, "--served-name", "--name", help="Served model id (default: the checkpoint's run)."
    ),
    require_key_env: str | None = typer.Option(
        None, "--require-key-env", help="Env variable of the API key clients must send."
    ),
    max_images: int = typer.Option(8, "--max-images", min=1, help="Images per request at most."),
    max_body_mb: int = typer.Option(32, "--max-body-mb", min=1, help="Request body limit (MB)."),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Requests per generate call."),
    max_queue: int = typer.Option(64, "--max-queue", min=1, help="Waiting requests (then 429)."),
    default_max_tokens: int = typer.Option(
        512, "--default-max-tokens", min=1, help="max_tokens of a request that gives none."
    ),
    *,
    models: ModelOptions,
) -> None:
    """Serve a model as an OpenAI-compatible /v1/chat/completions (streaming too) and /v1/models.

    The address, port and key variable are checked before the model loads.
    """
    from rscovlm.pipelines.serve import ServerConfig, bind_server, served_model_name, token_cap
    from rscovlm.pipelines.serve import serve as run_server

    models.check()
    served = name or (
        models.model if models.backend is BackendName.openai else served_model_name(models.model)
    )
    config = ServerConfig(
        served,
        host=host,
        port=port,
        api_key_env=require_key_env,
        max_images=max_images,
        max_body_bytes=max_body_mb * 1024 * 1024,
        max_batch=max_batch,
        max_queue=max_queue,
        default_max_tokens=default_max_tokens,
    )
    server = bind_server(config)  # before the (slow) model load
    try:
        backend = models.build()
    except BaseException:
        server.server_close()
        raise
    bound_host, bound_port = server.server_address[:2]
    # The per-request token bounds, said once: a client that sends no max_tokens gets the
    # default, and no request may exceed the cap (the backend's own limit).
    cap = token_cap(backend, config)
    typer.echo(
        f"max_tokens: {min(config.default_max_tokens, cap):,} when a request gives none "
        f"(--default-max-tokens), at most {cap:,} per request (the model's limit)",
        err=True,
    )
    typer.echo(f"serving {config.model_name} on http://{bound_host}:{bound_port}/v1", err=True)
    run_server(backend, config, server)
