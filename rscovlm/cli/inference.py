"""``rscovlm chat | zoom | serve | detect``: run a model."""

from __future__ import annotations

import typer

from rscovlm.cli.app import app


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
    typer.echo(backend.generate([conv], params)[0].text)  # type: ignore[attr-defined]


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
    from rscovlm.pipelines.zoom import ZoomAgent, draw_trace

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

    from rscovlm.pipelines.serve import ServerConfig
    from rscovlm.pipelines.serve import serve as run_server

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
    from rscovlm.pipelines.detect import detect_image
    from rscovlm.pipelines.detect_outputs import resolve_formats, write_outputs

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
