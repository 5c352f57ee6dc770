"""``rscovlm chat | zoom | detect | serve``: run a model through any backend.

The four commands share the model option group of :func:`rscovlm.cli.options.model_options`
(``--model/--backend/--base-url/--api-key-env/--family/--device/--dtype/--adapter``), so a
released checkpoint on the CPU, the same checkpoint under vLLM and a remote OpenAI-compatible
server are one flag apart.
"""

from __future__ import annotations

import typer

from rscovlm.cli.app import app
from rscovlm.cli.options import (
    BackendName,
    DetectBox,
    DetectFormat,
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


@app.command(
    epilog=examples(
        "rscovlm detect --model Qingyun/RSCoVLM-det-7B-2512 --image big.tif --classes dota1.0 "
        "--out det/",
        "rscovlm detect --backend openai --base-url http://127.0.0.1:8000/v1 --model m "
        "--image P1.png --out det/ --format task1",
    )
)
@model_options
def detect(
    image: str = typer.Option(..., "--image", help="Image or raster of any size (GeoTIFF ok)."),
    out: str = out_option(),
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
    max_new_tokens: int | None = max_new_tokens_option(),
    *,
    models: ModelOptions,
) -> None:
    """Tiled detection: patches, detection prompt, parse, map back, rotated NMS, outputs.

    Writes predictions.jsonl, task1/, coco.json, detections.geojson (map coordinates and CRS
    for a georeferenced raster), raw_outputs.jsonl and summary.json into --out.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rscovlm.data.split import TileSpec
    from rscovlm.formats import get_classes
    from rscovlm.imaging import open_raster
    from rscovlm.model.backends import GenerationParams
    from rscovlm.pipelines.detect import detect_image
    from rscovlm.pipelines.detect_outputs import resolve_formats, write_outputs

    # Every input is checked before a model is loaded.
    class_list = get_classes(classes)
    chosen = resolve_formats([f.value for f in formats])
    spec = TileSpec(patch, gap, tuple(rates))
    models.check()
    open_raster(image)
    params = GenerationParams(max_new_tokens=max_new_tokens)
    backend = models.build()
    console = make_console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("patches", total=None)

        def on_batch(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = detect_image(
            backend,
            image,
            class_list,
            spec=spec,
            box=box.value,
            batch=batch,
            nms_iou=nms_iou,
            params=params,
            progress=on_batch,
        )
    written = write_outputs(result, out, chosen)
    for line in result.summary():
        typer.echo(line, err=True)
    typer.echo(f"{len(result.quads)} boxes written to {out} ({', '.join(written)})")


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
    from rscovlm.pipelines.serve import ServerConfig, bind_server, served_model_name
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
    typer.echo(f"serving {config.model_name} on http://{bound_host}:{bound_port}/v1", err=True)
    run_server(backend, config, server)
