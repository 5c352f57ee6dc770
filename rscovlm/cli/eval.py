"""``rscovlm eval …``: score predictions against ground truth."""

from __future__ import annotations

import typer

from rscovlm.cli.app import choice, eval_app


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

    from rscovlm.eval.det_eval import render_det_report, run_det_eval
    from rscovlm.eval.detection_io import PRED_FORMATS
    from rscovlm.files import atomic_write_json
    from rscovlm.formats.classes import get_classes

    fmt = choice("--pred-format", pred_format, PRED_FORMATS)
    class_list = get_classes(classes) if classes else None
    if class_list is None and Path(gt).is_dir():
        class_list = get_classes("dota1.0")
    report = run_det_eval(
        gt,
        pred,
        fmt,  # type: ignore[arg-type]
        classes=class_list,
        metric=choice("--metric", metric, ("voc07", "voc12")),  # type: ignore[arg-type]
        iou_mode=choice("--iou-mode", iou_mode, ("dota", "mmrotate")),  # type: ignore[arg-type]
        iou_thresholds=iou,
        nc=nc,
        ties=choice("--ties", ties, ("group", "stable")),  # type: ignore[arg-type]
        sweep_val=sweep_val,
        sweep_val_gt=sweep_val_gt,
        f1=f1,
        ignore_difficult=not count_difficult,
        family=family,
    )
    render_det_report(report, Console())
    if json_out is not None:
        atomic_write_json(json_out, report.to_dict())
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

    fmt = choice("--pred-format", pred_format, PRED_FORMATS)
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
