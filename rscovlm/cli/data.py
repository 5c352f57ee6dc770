"""``rscovlm data …``: build, inspect and export training data."""

from __future__ import annotations

import typer

from rscovlm.cli.app import choice, data_app


@data_app.command("build")
def data_build(
    recipe: str = typer.Argument(
        ..., help="Recipe YAML (sources, data root, limits), or a shipped name (synthetic_demo)."
    ),
    out: str = typer.Option(..., "--out", help="Output folder (finished shards are reused)."),
    workers: int = typer.Option(2, "--workers", help="Validation worker processes (0: inline)."),
    root: str | None = typer.Option(None, "--root", help="Data root (overrides the recipe's)."),
    validate_only: bool = typer.Option(
        False, "--validate", help="Check the recipe and stop (the data root is not needed)."
    ),
) -> None:
    """Read a recipe's sources, validate every record, write shards, manifest, rejected.jsonl.

    Examples:
      rscovlm data build synthetic_demo --root . --out built/demo
      rscovlm data build my_recipe.yaml --out built/mine --validate
      rscovlm data stats built/demo
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rscovlm.data.build import build_dataset
    from rscovlm.data.recipe import load_recipe

    if workers < 0:
        from rscovlm.errors import InputError

        raise InputError(f"--workers must be >= 0, got {workers}")
    if validate_only:
        load_recipe(recipe, root, check_root=False)
        typer.echo(f"{recipe}: valid")
        return
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
        box = choice("--box", box, ("quad", "hbb", "obb"))
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
