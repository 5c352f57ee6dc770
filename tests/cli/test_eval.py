"""``rscovlm eval det``, ``rscovlm eval merge`` and ``rscovlm demo``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rscovlm.cli import main
from rscovlm.demo.run import run_demo
from rscovlm.eval.detection_io import GroundTruth
from rscovlm.formats.classes import DOTA_V1_0
from rscovlm.formats.results import write_task1


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), " ".join(out.split()), err  # undo console wrapping


@pytest.fixture
def perfect_task1(dota_gt: GroundTruth, tmp_path: Path) -> Path:
    scores = np.random.default_rng(0).random(len(dota_gt.boxes))
    write_task1(
        dota_gt.boxes.with_scores(scores).table(dota_gt.images, DOTA_V1_0), tmp_path / "pred"
    )
    return tmp_path / "pred"


def test_eval_det_prints_table_and_writes_json(
    dota_label_dir: Path, perfect_task1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "out" / "results.json"
    args = ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(perfect_task1)]
    code, out, err = _run(
        [
            *args,
            "--pred-format",
            "task1",
            "--iou",
            "0.5",
            "--iou",
            "0.75",
            "--out",
            str(out_json.parent),
        ],
        capsys,
    )
    assert code == 0, err
    assert "storage-tank" in out and "excluded (no ground truth)" in out and "mF1" in out
    data = json.loads(out_json.read_text())
    assert data["mAP"] == 1.0 and data["metric"] == "voc07" and data["iou_mode"] == "dota"
    assert set(data["per_class"]["ship"]) >= {"ap", "n_gt", "n_det", "precision", "recall"}
    assert data["per_class"]["helicopter"]["ap"] is None
    assert data["excluded_classes"] == ["basketball-court", "roundabout", "helicopter"]
    assert set(data["by_iou"]) == {"0.5", "0.75"} and data["mAP_mean_over_iou"] == 1.0
    assert data["f1"]["strict_f1"] == 1.0
    assert data["inputs"]["pred"]["n_kept"] == 984
    assert (
        data["mAP_50_95"] == 1.0
        and "mAP@[.5:.95] (mean over IoU > 0.50 to 0.95, step 0.05): 1.0000" in out
    )
    assert data["n_gt_images"] == 7 and data["n_gt_images_without_prediction"] == 0
    assert "no prediction line" not in out
    assert not list(out_json.parent.glob("*.tmp"))  # written by rename, no leftovers


def test_eval_det_sweep_and_nc(
    dota_label_dir: Path, perfect_task1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "sweep" / "results.json"
    code, out, err = _run(
        ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(perfect_task1),
         "--pred-format", "task1", "--sweep-val", str(perfect_task1), "--metric", "voc12",
         "--iou-mode", "mmrotate", "--ties", "stable", "--no-f1", "--out", str(out_json.parent)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out_json.read_text())
    assert data["nc"] is True and data["sweep"]["tau"] == 0.0
    assert len(data["sweep"]["val"]["curve"]) == 20
    assert data["mAP"] == 1.0 and data["score_threshold"] == 0.0 and "f1" not in data
    assert "tau picked on validation" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pred-format", "task1", "--iou", "1.5"], "IoU thresholds must lie in (0, 1)"),
        (["--pred-format", "task1", "--classes", "nosuchlist"], "unknown class list"),
    ],
)
def test_eval_det_bad_options_exit_2_with_one_line(
    dota_label_dir: Path,
    perfect_task1: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(perfect_task1), *extra]
    code, _, err = _run(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rscovlm: error: ") and message in lines[0]


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--pred-format", "csv"], "--pred-format"),
        (["--pred-format", "task1", "--metric", "voc99"], "--metric"),
    ],
)
def test_eval_det_bad_choice_is_a_usage_error(
    dota_label_dir: Path,
    perfect_task1: Path,
    extra: list[str],
    option: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(perfect_task1), *extra]
    code, _, err = _run(args, capsys)
    assert code == 2 and f"Invalid value for '{option}'" in err and "Traceback" not in err


def test_eval_det_missing_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "det", "--gt", str(tmp_path / "none"), "--pred", str(tmp_path)]
    code, _, err = _run([*args, "--pred-format", "vlm"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_eval_merge(
    dota_gt: GroundTruth, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two copies of each box on two overlapping patch names at offset 0: NMS keeps one
    boxes = dota_gt.boxes
    names = [f"{n}__1__0___0" for n in dota_gt.images] + [
        f"{n}__1024__0___0" for n in dota_gt.images
    ]
    doubled = type(boxes).concat([boxes, boxes.with_image(boxes.image + len(dota_gt.images))])
    write_task1(doubled.table(names, DOTA_V1_0), tmp_path / "patches")
    zip_path = tmp_path / "merged" / "Task1.zip"
    code, out, err = _run(
        ["eval", "merge", "--pred", str(tmp_path / "patches"), "--pred-format", "task1",
         "--out", str(tmp_path / "merged"), "--zip"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert f"-> {len(boxes)} boxes on {len(dota_gt.images)} images" in out
    assert zip_path.is_file()
    code, _, err = _run(
        ["eval", "merge", "--pred", str(tmp_path / "patches"), "--pred-format", "task1",
         "--out", str(tmp_path / "m2"), "--nms-iou", "2"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "--nms-iou" in err


def test_demo_command_says_it_is_simulated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(["demo", "--seed", "3", "--quick"], capsys)  # the table only
    assert code == 0, err
    assert "SIMULATED" in out and "No model was run" in out
    for row in ("mAP, ranked by score", "mAP, every score set to 1", "mAP_nc at tau*", "mF1"):
        assert row in out


def test_demo_numbers_show_the_point() -> None:
    result = run_demo(seed=0, console=__import__("rich.console").console.Console(quiet=True))
    assert len(set(result.vlm_group_values)) == 1  # grouped ties: order-independent
    assert result.vlm_stable_range[0] >= result.vlm_group_values[0]
    assert result.det_map > result.det_map_nc > result.det_map_unit
    assert 0.0 < result.det_tau < 1.0


def test_eval_det_on_vlm_outputs(
    dota_label_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"image_id": "P1888.png", "output": "There are none.", "orig_size": [707, 508],
         "resized_size": [700, 504]},
        {"image_id": "P0770.png", "output": "0,0,10,10 helicopter\nno idea",
         "orig_size": [1469, 1298], "resized_size": [1008, 896], "family": "qwen2.5-vl"},
    ]  # fmt: skip
    path = tmp_path / "vlm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out_json = tmp_path / "vlm" / "results.json"
    code, out, err = _run(
        ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(path), "--pred-format", "vlm",
         "--out", str(out_json.parent)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out_json.read_text())
    assert data["nc"] is True and data["has_scores"] is False and data["mAP"] == 0.0
    assert data["per_class"]["helicopter"]["fp"] == 1
    assert data["inputs"]["pred"]["n_outputs"] == 2 and data["inputs"]["pred"]["n_bad"] == 1
    assert "2 model outputs, 1 'none'" in out and "1 unreadable" in out
    # Five of the seven ground-truth images got no output line: counted, listed, said.
    missing = ["P0706", "P1088", "P1234", "P2598", "P2709"]
    assert data["n_gt_images_without_prediction"] == 5
    assert data["gt_images_without_prediction"] == missing
    assert f"5 ground-truth images have no prediction line at all ({', '.join(missing)})" in out


def _jsonl_predictions(path: Path) -> Path:
    path.write_text(json.dumps({"image_id": "P0706", "class": "ship", "quad": [0] * 8}) + "\n")
    return path


def _vlm_outputs(path: Path) -> Path:
    record = {"image_id": "P0706", "output": "x", "orig_size": [8, 8], "resized_size": [28, 28]}
    path.write_text(json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize(
    ("make", "given", "message"),
    [
        (None, "jsonl", "holds no prediction file (*.jsonl); it looks like a folder of DOTA Task1 "
         "files: try --pred-format task1"),
        (_jsonl_predictions, "vlm", "nothing could be read from"),
        (_jsonl_predictions, "task1", "try --pred-format jsonl"),
        (_vlm_outputs, "task1", "try --pred-format vlm"),
        (_vlm_outputs, "jsonl", "as --pred-format jsonl: 1 unreadable lines"),
    ],
)  # fmt: skip
def test_eval_det_wrong_format_exits_2_with_a_guess(
    dota_label_dir: Path,
    perfect_task1: Path,
    tmp_path: Path,
    make: object,
    given: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pred = perfect_task1 if make is None else make(tmp_path / "p.jsonl")  # type: ignore[operator]
    args = ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(pred)]
    code, out, err = _run([*args, "--pred-format", given], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "mAP" not in out  # no score of a run that read nothing
    if make is _vlm_outputs:
        assert "try --pred-format vlm" in lines[0]
    if make is _jsonl_predictions:
        assert "try --pred-format jsonl" in lines[0]


def test_eval_det_single_labeltxt_file(
    dota_label_dir: Path, perfect_task1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One labelTxt file is DOTA ground truth of one image (never read as COCO)."""
    out_dir = tmp_path / "one"
    code, out, err = _run(
        ["eval", "det", "--gt", str(dota_label_dir / "P0706.txt"), "--pred", str(perfect_task1),
         "--pred-format", "task1", "--out", str(out_dir)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((out_dir / "results.json").read_text())
    n_gt = sum(1 for ln in (dota_label_dir / "P0706.txt").read_text().splitlines() if ln.strip())
    assert data["n_gt_images"] == 1 and data["mAP"] == 1.0
    assert data["inputs"]["gt"]["n_boxes"] <= n_gt and data["inputs"]["gt"]["n_kept"] > 0
    assert len(data["inputs"]["pred"]["missing_images"]) == 6  # the other six images
    assert "on 6 images missing from the ground truth" in out


def test_demo_is_seeded() -> None:
    quiet = __import__("rich.console").console.Console(quiet=True)
    assert run_demo(seed=5, console=quiet) == run_demo(seed=5, console=quiet)


def test_eval_det_plain_console_prints_the_bytes_of_richs_piped_console(
    dota_label_dir: Path, perfect_task1: Path
) -> None:
    """In a pipe ``eval det`` prints through ``PlainConsole`` (no rich import); every block of
    the report (inputs, table, sweep, F1) must come out as rich's piped console prints it."""
    import io

    from rich.console import Console

    from rscovlm.cli.options import LOG_WIDTH, PlainConsole, make_text_console
    from rscovlm.eval.det_eval import render_det_report, run_det_eval

    assert isinstance(make_text_console(), PlainConsole)  # pytest's stdout is not a terminal
    report = run_det_eval(
        dota_label_dir, perfect_task1, "task1", classes=DOTA_V1_0, sweep_val=perfect_task1
    )
    rich_out = io.StringIO()
    rich = Console(file=rich_out, width=LOG_WIDTH, soft_wrap=True, no_color=True)
    render_det_report(report, rich)
    plain = PlainConsole()
    plain._stream = io.StringIO()
    render_det_report(report, plain)
    text = plain._stream.getvalue()
    assert "tau picked on validation" in text and "mF1" in text
    assert text == rich_out.getvalue()
