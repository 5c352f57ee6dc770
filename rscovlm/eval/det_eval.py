"""The detection protocol end to end: read, align, evaluate, sweep, F1, report.

``rscovlm eval det`` is a thin adapter over :func:`run_det_eval`. Which number is "the" mAP:

- scored predictions, no option: the usual mAP, ranked by score;
- ``nc=True`` (or predictions without scores, e.g. VLM outputs): mAP_nc, every kept box
  scores 1 (one tie group);
- ``sweep_val``: mAP_nc of the test set at the ``tau`` picked on the validation predictions
  (keep ``score > tau``); both curves are reported. With several IoU thresholds, ``tau`` is
  picked at the first one and applied at all of them.

With several IoU thresholds the headline (``mAP``, ``per_class``) is the first; ``by_iou`` has
each, and ``mAP_mean_over_iou`` their mean. ``mAP_50_95`` is always computed too: the mean over
IoU 0.50, 0.55, ..., 0.95 (the COCO-style mAP@[.5:.95], same matching rule and scores).

Guards against a run that looks fine but is not: predictions of which nothing could be read
raise :class:`~rscovlm.errors.InputError` with a guess at the right format
(:func:`rscovlm.eval.sniff.sniff_predictions`) instead of scoring mAP 0; ground-truth images
that no prediction line names at all are counted and listed (``gt_images_without_prediction``),
since a crashed or partial inference job looks exactly like that.

The F1 block is LMMRotate's mF1 and the strict one-to-one F1 (:mod:`rscovlm.eval.metrics.mf1`),
best over score thresholds, always with LMMRotate's geometry (rectangles, IoU >= 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rscovlm.errors import InputError
from rscovlm.eval.detection_io import (
    GroundTruth,
    PredFormat,
    Predictions,
    ReadReport,
    align_to_gt,
    read_ground_truth,
    read_predictions,
)
from rscovlm.eval.metrics.ap import Metric, Ties
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.detection import (
    DetectionEvaluator,
    DetectionResult,
    IouMode,
    ThresholdSweep,
)
from rscovlm.eval.metrics.mf1 import F1Evaluator, F1Sweep
from rscovlm.eval.sniff import sniff_predictions
from rscovlm.tables import SECTION, Align, format_table

__all__ = ["COCO_IOUS", "DetEvalReport", "TextConsole", "render_det_report", "run_det_eval"]

COCO_IOUS: tuple[float, ...] = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
"""The thresholds of mAP@[.5:.95]: 0.50, 0.55, ..., 0.95."""
_EXAMPLES = 5  # image ids listed on screen (all are in the JSON)


@dataclass
class DetEvalReport:
    """Everything one ``eval det`` run computed (``results``: one per IoU threshold)."""

    results: list[DetectionResult]
    nc: bool
    has_scores: bool
    classes: tuple[str, ...]
    inputs: dict[str, ReadReport] = field(default_factory=dict)
    sweep_val: ThresholdSweep | None = None
    sweep_test: ThresholdSweep | None = None
    f1: F1Sweep | None = None
    map_50_95: float | None = None
    without_prediction: dict[str, list[str]] = field(default_factory=dict)
    n_gt_images: int = 0

    @property
    def main(self) -> DetectionResult:
        """The result at the first IoU threshold: the headline numbers."""
        return self.results[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``--json``: the headline result first, then everything else."""
        out: dict[str, Any] = self.main.to_dict()
        out["nc"] = self.nc
        out["has_scores"] = self.has_scores
        out["classes"] = list(self.classes)
        if len(self.results) > 1:
            out["by_iou"] = {f"{r.iou_threshold:g}": r.to_dict() for r in self.results}
            maps = [r.mean_ap for r in self.results]
            out["mAP_mean_over_iou"] = (
                None if None in maps else sum(m for m in maps if m is not None) / len(maps)
            )
        if self.sweep_val is not None and self.sweep_test is not None:
            out["sweep"] = {
                "tau": self.sweep_val.best_tau,
                "val": self.sweep_val.to_dict(),
                "test": self.sweep_test.to_dict(),
            }
        if self.f1 is not None:
            best, strict = self.f1.best, self.f1.best_strict
            out["f1"] = {
                "mF1": best.mf1,
                "mP": best.mp,
                "mR": best.mr,
                "score_threshold": best.score_threshold,
                "strict_f1": strict.strict_f1,
                "strict_p": strict.strict_p,
                "strict_r": strict.strict_r,
                "strict_score_threshold": strict.score_threshold,
                "curve": self.f1.to_dict()["curve"],
            }
        out["mAP_50_95"] = self.map_50_95
        missing = self.without_prediction.get("pred", [])
        out["n_gt_images"] = self.n_gt_images
        out["n_gt_images_without_prediction"] = len(missing)
        out["gt_images_without_prediction"] = missing
        if "val_pred" in self.without_prediction:
            out["val_gt_images_without_prediction"] = self.without_prediction["val_pred"]
        out["inputs"] = {name: rep.to_dict() for name, rep in self.inputs.items()}
        return out


class TextConsole(Protocol):
    """What :func:`render_det_report` prints to: a rich ``Console``, or the CLI's plain one
    in a pipe (``rscovlm.cli.options.PlainConsole``, no rich import)."""

    width: int

    def print(self, text: str, *, markup: bool, highlight: bool, soft_wrap: bool) -> None: ...


def _format_hint(path: str | Path, fmt: PredFormat) -> str:
    """``"; it looks like ...: try --pred-format X"`` when the sniffer recognises the input."""
    found = sniff_predictions(path)
    if found is None or found.format == fmt:
        return ""
    return f"; {found.hint()}"


def _load(
    gt: GroundTruth, path: str | Path, fmt: PredFormat, family: str | None, allow_empty: bool
) -> tuple[DetBoxes, Predictions]:
    """Read and align predictions; reading nothing at all is an error, never mAP 0 (unless
    the caller wrote the file itself and knows an empty one means "no boxes anywhere")."""
    try:
        pred = read_predictions(path, fmt, gt.classes, default_family=family)
    except InputError as exc:
        hint = _format_hint(path, fmt) if Path(path).exists() else ""
        raise InputError(f"{exc}{hint}") from None
    rep = pred.report
    if rep.n_boxes == 0 and rep.n_outputs == 0 and not allow_empty:
        why = f"{rep.n_bad} unreadable lines" if rep.n_bad else "no prediction line"
        example = f" (e.g. {rep.bad_examples[0]})" if rep.bad_examples else ""
        raise InputError(
            f"nothing could be read from {path} as --pred-format {fmt}: {why}{example}"
            f"{_format_hint(path, fmt)}"
        )
    return align_to_gt(pred, gt), pred


def _without_prediction(gt: GroundTruth, pred: Predictions) -> list[str]:
    """Ground-truth images that no prediction line names (in ground-truth order)."""
    covered = {i for name in pred.seen if (i := gt.index_of(name)) is not None}
    return [name for i, name in enumerate(gt.images) if i not in covered]


def run_det_eval(
    gt_path: str | Path,
    pred_path: str | Path,
    pred_format: PredFormat,
    *,
    classes: Sequence[str] | None = None,
    metric: Metric = "voc07",
    iou_mode: IouMode = "dota",
    iou_thresholds: Sequence[float] = (0.5,),
    nc: bool = False,
    ties: Ties = "group",
    sweep_val: str | Path | None = None,
    sweep_val_gt: str | Path | None = None,
    f1: bool = True,
    ignore_difficult: bool = True,
    family: str | None = None,
    allow_empty: bool = False,
) -> DetEvalReport:
    """Run the protocol on files (see the module header for which mAP is reported).

    ``allow_empty`` scores a prediction file without any box as mAP 0 instead of refusing it:
    for callers that wrote the file themselves (the demo), where empty means the model found
    nothing, not that the wrong file or format was given.

    Raises:
        InputError: unreadable inputs or options that contradict each other.
    """
    if not iou_thresholds or not all(0.0 < t < 1.0 for t in iou_thresholds):
        raise InputError(f"IoU thresholds must lie in (0, 1), got {list(iou_thresholds)}")
    gt = read_ground_truth(gt_path, classes)
    boxes, pred = _load(gt, pred_path, pred_format, family, allow_empty)
    report = DetEvalReport([], nc, pred.has_scores, gt.classes, {"gt": gt.report})
    report.inputs["pred"] = pred.report
    report.n_gt_images = len(gt.images)
    report.without_prediction["pred"] = _without_prediction(gt, pred)
    report.nc = nc or sweep_val is not None or not pred.has_scores
    kw: dict[str, Any] = {"iou_mode": iou_mode, "ignore_difficult": ignore_difficult}
    test = DetectionEvaluator(gt.boxes, boxes, gt.classes, cross_class=f1, **kw)
    tau = None
    if sweep_val is not None:
        val_gt = gt if sweep_val_gt is None else read_ground_truth(sweep_val_gt, gt.classes)
        if sweep_val_gt is not None:
            report.inputs["val_gt"] = val_gt.report
        val_boxes, val_pred = _load(val_gt, sweep_val, pred_format, family, allow_empty)
        val_pred.report.source = f"validation {val_pred.report.source}"
        report.inputs["val_pred"] = val_pred.report
        report.without_prediction["val_pred"] = _without_prediction(val_gt, val_pred)
        val = DetectionEvaluator(val_gt.boxes, val_boxes, val_gt.classes, **kw)
        t0 = iou_thresholds[0]
        report.sweep_val = val.sweep(iou_threshold=t0, metric=metric)
        report.sweep_test = test.sweep(iou_threshold=t0, metric=metric)
        tau = report.sweep_val.best_tau
    done: dict[float, DetectionResult] = {}
    for t in (*iou_thresholds, *COCO_IOUS):
        if t not in done:
            done[t] = test.evaluate(
                t, metric=metric, ties=ties, unit_scores=report.nc, score_threshold=tau
            )
    report.results = [done[t] for t in iou_thresholds]
    coco = [done[t].mean_ap for t in COCO_IOUS]
    report.map_50_95 = None if None in coco else sum(m for m in coco if m is not None) / len(coco)
    if f1:
        f1_eval = F1Evaluator(
            gt.boxes, boxes, gt.classes, ignore_difficult=ignore_difficult,
            overlaps=test.overlaps, overlaps_mode=test.iou_mode,
        )  # fmt: skip
        report.f1 = f1_eval.sweep()
    return report


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_det_report(report: DetEvalReport, console: TextConsole) -> None:
    """Print the input counts, the per-class table, the sweep and the F1 block."""
    say = lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    for rep in report.inputs.values():
        for line in rep.summary():
            say(line)
    main = report.main
    rule = ">" if main.iou_mode == "dota" else ">="
    kind = "mAP_nc" if report.nc else "mAP"
    title = (
        f"{kind} ({main.metric}, IoU {rule} {main.iou_threshold:g}, {main.iou_mode} matching, "
        f"ties={main.ties})"
    )
    rows: list[list[str | int] | None] = [
        [name, c.n_gt, c.n_difficult, c.n_det, c.tp, c.fp,
         _num(c.recall), _num(c.precision), _num(c.ap)]
        for name, c in main.per_class.items()
    ]  # fmt: skip
    rows += [SECTION, [kind, *[""] * 7, _num(main.mean_ap)]]
    columns = ["class", "GT", "diff", "det", "TP", "FP", "recall", "prec", "AP"]
    align: list[Align] = ["left", *["right"] * 8]
    say(format_table(title, columns, rows, align=align, width=console.width))
    counted = len(main.per_class) - len(main.excluded)
    note = f"{kind} = mean AP over the {counted} classes with a non-difficult ground truth"
    if main.excluded:
        note += f"; excluded (no ground truth): {', '.join(main.excluded)}"
    say(note)
    for r in report.results[1:]:
        say(f"{kind} at IoU {r.iou_threshold:g}: {_num(r.mean_ap)}")
    say(f"{kind}@[.5:.95] (mean over IoU {rule} 0.50 to 0.95, step 0.05): {_num(report.map_50_95)}")
    for name, missing in report.without_prediction.items():
        if missing:
            more = len(missing) - _EXAMPLES
            shown = ", ".join(missing[:_EXAMPLES]) + (f" and {more} more" if more > 0 else "")
            which = "validation " if name == "val_pred" else ""
            say(
                f"{len(missing)} {which}ground-truth images have no prediction line at all "
                f"({shown}); scored as misses — a crashed or partial inference run looks like this"
            )
    if report.sweep_val is not None and report.sweep_test is not None:
        best_tau = report.sweep_val.best_tau
        sweep_rows: list[list[str] | None] = [
            [f"{t:.2f}", _num(v), _num(m), "<- tau*" if t == best_tau else ""]
            for t, v, m in zip(
                report.sweep_val.taus, report.sweep_val.maps, report.sweep_test.maps, strict=True
            )
        ]
        say(
            format_table(
                "sweep: keep score > tau, set to 1",
                ["tau", "val mAP_nc", "test mAP_nc", ""],
                sweep_rows,
                align=["right", "right", "right", "left"],
                width=console.width,
            )
        )
        say(
            f"tau picked on validation: {best_tau:.2f} "
            f"(val mAP_nc {_num(report.sweep_val.best_map)}); test mAP_nc at it: "
            f"{_num(main.mean_ap)}"
        )
    if report.f1 is not None:
        best, strict = report.f1.best, report.f1.best_strict
        say(
            f"mF1 (LMMRotate, background in the means) {best.mf1:.4f} "
            f"[mP {best.mp:.4f}, mR {best.mr:.4f}, score >= {best.score_threshold:g}]; "
            f"strict one-to-one F1 {_num(strict.strict_f1)} "
            f"[score >= {strict.score_threshold:g}]"
        )
