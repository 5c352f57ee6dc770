"""``rscovlm data …``: build, inspect and export training data."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from rscovlm.cli.app import data_app
from rscovlm.cli.options import BoxKind, Family, Overlong, examples, make_console, out_option
from rscovlm.errors import InputError


class ExportFormat(str, Enum):
    """:data:`rscovlm.data.export.EXPORT_FORMATS`."""

    coco = "coco"
    swift = "swift"
    llamafactory = "llamafactory"


EXPORT_FILES = {
    ExportFormat.coco: "coco.json",
    ExportFormat.swift: "swift.jsonl",
    ExportFormat.llamafactory: "llamafactory.jsonl",
}
"""The file ``data export`` writes into ``--out`` per format when no ``--name`` is given (chat
formats: images in ``<stem>_images/``, settings in ``<stem>.yaml`` / ``<stem>.sh`` and, for
LLaMA-Factory, the ``dataset_info.json`` entry beside it)."""
ZOOM_FILE = "zoom.jsonl"
"""The records ``data zoom-build`` writes into ``--out`` (rejects: ``zoom.rejected.jsonl``)."""


@data_app.command(
    "build",
    epilog=examples(
        "rscovlm data build synthetic_demo --out built/demo",
        "rscovlm data build recipe.yaml --out built/mix --workers 0",
        "rscovlm data build my_recipe.yaml --out built/mine --validate",
        "rscovlm data build my_recipe.yaml --root /data --out built/mine --follow-symlinks",
    ),
)
def data_build(
    recipe: str = typer.Argument(
        ..., help="Recipe YAML (sources, data root, limits), or a shipped name (synthetic_demo)."
    ),
    out: str = out_option(),
    workers: int = typer.Option(
        2, "--workers", min=0, help="Validation worker processes (0: inline)."
    ),
    root: str | None = typer.Option(
        None,
        "--root",
        help="Data root: source paths are relative to it (default: the working directory for a "
        "shipped recipe, the recipe file's own root otherwise; created for generated scenes).",
    ),
    validate_only: bool = typer.Option(
        False, "--validate", help="Check the recipe and stop (the data root is not needed)."
    ),
    follow_symlinks: bool = typer.Option(
        False,
        "--follow-symlinks",
        help="Read files and images through symlinks that leave the data root (default: refuse).",
    ),
) -> None:
    """Read a recipe's sources, validate every record, write shards, manifest, rejected.jsonl.

    Finished shards in --out are reused, so an interrupted build resumes.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rscovlm.data.build import build_dataset
    from rscovlm.data.recipe import load_recipe

    if validate_only:
        load_recipe(recipe, root, check_root=False)
        typer.echo(f"{recipe}: valid")
        return
    spec, data_root = load_recipe(recipe, root)
    console = make_console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("records validated", total=None)

        def on_shard(done: dict[str, object], skipped: bool) -> None:
            progress.advance(task, int(done["read"]))  # type: ignore[call-overload]

        result = build_dataset(
            spec, data_root, out, workers=workers, on_shard=on_shard,
            follow_symlinks=follow_symlinks,
        )  # fmt: skip
    totals = result.manifest["totals"]
    typer.echo(
        f"read {totals['read']} = kept {totals['kept']} + rejected {totals['rejected']}; "
        f"{result.written} shards written, {result.skipped} reused; see {out}/rejected.jsonl"
    )
    if result.problems:  # the other sources are built; a missing dataset must not look like one
        raise InputError(
            f"{len(result.problems)} source(s) could not be read: {'; '.join(result.problems)}"
        )


@data_app.command("stats", epilog=examples("rscovlm data stats built/demo"))
def data_stats(built: str = typer.Argument(..., help="A folder written by `data build`.")) -> None:
    """Print a built dataset's manifest: counts per source, split, task, class and reason."""

    from rscovlm.data.shards import read_manifest
    from rscovlm.data.stats import render_manifest

    render_manifest(read_manifest(built), make_console())


@data_app.command(
    "export",
    epilog=examples(
        "rscovlm data export built/demo --format coco --out exported/",
        "rscovlm data export built/demo --format swift --box obb --out exported/",
        "rscovlm data export built/demo --format llamafactory --name demo_quad --out exported/",
    ),
)
def data_export(
    built: str = typer.Argument(..., help="A folder written by `data build`."),
    fmt: ExportFormat = typer.Option(ExportFormat.coco, "--format", help="What to write."),
    out: str = out_option(),
    source: str | None = typer.Option(None, "--source", help="Export only this source."),
    name: str | None = typer.Option(
        None, "--name", help="Chat: dataset name and file stem (default: the format's name)."
    ),
    min_pixels: int = typer.Option(64 * 28 * 28, "--min-pixels", help="Band minimum (chat)."),
    max_pixels: int = typer.Option(1296 * 28 * 28, "--max-pixels", help="Band maximum (chat)."),
    family: Family = typer.Option(Family.qwen2_5_vl, "--family", help="Chat: coordinate family."),
    box: BoxKind = typer.Option(BoxKind.quad, "--box", help="Chat: detection/grounding boxes."),
    seed: int = typer.Option(0, "--seed", help="Render seed (chat; drawn per record uid)."),
    max_length: int = typer.Option(
        6144, "--max-length", min=1, help="Chat: longest sample kept, in tokens."
    ),
    overlong: Overlong = typer.Option(
        Overlong.drop, "--overlong", help="Chat: a longer sample is dropped or re-rendered smaller."
    ),
) -> None:
    """Export a built dataset: COCO json of detections, or fixed-resolution conversations.

    Writes coco.json, swift.jsonl or llamafactory.jsonl into --out. A chat export writes every
    image at the size its boxes assume into <name>_images/, applies the over-long rule (counted)
    and writes and prints the settings the framework needs to feed those images unchanged and
    never cut a sample (<name>.yaml for LLaMA-Factory, registered in dataset_info.json beside
    the other datasets there; <name>.sh for ms-swift).
    """
    from rscovlm.data.export import export_dataset
    from rscovlm.data.export_chat import export_chat
    from rscovlm.errors import InputError
    from rscovlm.resolution import PixelBand

    folder = Path(out)
    if fmt is ExportFormat.coco:
        path = folder / EXPORT_FILES[fmt]
        folder.mkdir(parents=True, exist_ok=True)
        counts = export_dataset(built, path, fmt.value, source)
        typer.echo(f"wrote {path}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return
    if name is not None and not name.replace("_", "").replace("-", "").isalnum():
        raise InputError(f"--name {name!r}: use letters, digits, '_' and '-' only")
    path = folder / (f"{name}.jsonl" if name else EXPORT_FILES[fmt])
    folder.mkdir(parents=True, exist_ok=True)
    result = export_chat(
        built,
        path,
        fmt.value,
        band=PixelBand(min_pixels, max_pixels),
        family=family.value,
        kind=box.value,
        source=source,
        seed=seed,
        measure=_token_counter(family.value),
        max_length=max_length,
        overlong=overlong.value,
    )
    typer.echo(f"wrote {path}: " + ", ".join(f"{v} {k}" for k, v in result.counts.items()))
    if result.band is not None:
        low, high = result.band["pixel_band"]
        where = (
            f"recorded in {folder / 'dataset_info.json'} under {path.stem}.rscovlm"
            if fmt is ExportFormat.llamafactory
            else f"held by MAX_PIXELS/MIN_PIXELS in {result.settings_path}"
        )
        typer.echo(
            f"boxes assume the {result.band['family']} pixel band {low}..{high} "
            f"(images written at that size; {where})"
        )
    typer.echo(f"settings ({result.settings_path}):")
    typer.echo(result.settings, nl=False)


def _token_counter(family: str) -> Callable[[Any], int] | None:
    """rscovlm's token count of a rendered sample, or ``None`` (said on stderr) without the
    ``train`` extra: the export then cannot measure lengths, so it applies no limit."""
    from rscovlm.errors import MissingExtraError

    try:
        from rscovlm.model.encoding import count_tokens
        from rscovlm.model.tokenizer import build_qwen2_tokenizer

        tokenizer = build_qwen2_tokenizer(family=family)
    except MissingExtraError as exc:
        typer.echo(f"warning: lengths not measured, no token limit applied ({exc})", err=True)
        return None
    return lambda conv: count_tokens(conv, tokenizer, family=family)


@data_app.command(
    "zoom-build",
    epilog=examples(
        "rscovlm data zoom-build LRS_VQA/train.jsonl --root data --out built/lrsvqa_zoom",
        "rscovlm data zoom-build zoom_vqa.jsonl --root demo --out zoom/ --crops",
    ),
)
def data_zoom_build(
    annotations: str = typer.Argument(..., help="LRS-VQA json / JSONL, relative to --root."),
    out: str = out_option(),
    root: str = typer.Option(
        ".", "--root", help="Data root: annotation and image paths are relative to it."
    ),
    image_root: str | None = typer.Option(None, "--image-root", help="Image folder under root."),
    crops: bool = typer.Option(False, "--crops", help="Also write the crops (PNG) to crops/."),
    source: str = typer.Option("lrsvqa_zoom", "--source", help="Source name of the records."),
    pad_ratio: float = typer.Option(0.5, "--pad-ratio", help="Context per side (x region)."),
    min_size: int = typer.Option(448, "--min-size", help="Minimum crop side (pixels)."),
    max_aspect: float = typer.Option(4.0, "--max-aspect", help="Largest crop side ratio."),
    max_fraction: float = typer.Option(0.5, "--max-fraction", help="Larger crops: no zoom."),
) -> None:
    """Build LRS-VQA-Zoom: one evidence region -> Zoom-in Chain record, else single-turn QA.

    Writes zoom.jsonl and zoom.rejected.jsonl (with the reasons) into --out.
    """
    from rscovlm.data.zoom_build import CropPolicy, build_zoom_dataset

    policy = CropPolicy(pad_ratio, min_size, max_aspect, max_fraction)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result = build_zoom_dataset(
        root,
        annotations,
        folder / ZOOM_FILE,
        policy=policy,
        source=source,
        image_root=image_root,
        crops_dir=folder / "crops" if crops else None,
    )
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(result.decisions.items()))
    typer.echo(
        f"read {result.read} = zoom {result.zoom} + single-turn {result.single} + rejected "
        f"{result.rejected} ({decisions}); wrote {folder / ZOOM_FILE}"
    )
