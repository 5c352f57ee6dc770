"""``rscovlm.eval.report`` on run folders that the real ``eval score`` wrote from real model
outputs: loading both layouts, the results JSON and Markdown (every digit), the paired
comparison, the self-contained and escaped HTML, and the gallery's drawn boxes."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.errors import InputError
from rscovlm.eval.metrics.score import bootstrap_ci
from rscovlm.eval.report import compare_runs, load_run, summarize_run, write_report
from rscovlm.eval.report.charts import bar_chart, confusion_svg
from rscovlm.eval.report.images import gallery_image
from rscovlm.eval.report.markdown import results_markdown

from .conftest import INJECTION

Runs = Callable[[], tuple[Path, Path]]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_load_run_and_single_folder(report_runs: Runs, tmp_path: Path) -> None:
    run_a, run_b = report_runs()
    run = load_run(run_a)
    assert sorted(run.benchmarks) == ["cls_aid", "dota_test512", "geochat_referring"]
    assert run.manifest["model"]["family"] == "qwen2_5_vl" and run.results == {}
    assert load_run(run_b).manifest == {}  # absent: shown as absent, not an error
    one = load_run(run_a / "scores/cls_aid")
    assert list(one.benchmarks) == ["cls_aid"] and len(one.benchmarks["cls_aid"].samples) == 600
    # a torn / garbage sample line is counted and skipped
    copy = tmp_path / "geo"
    shutil.copytree(run_a / "scores/geochat_referring", copy)
    with (copy / "sample_scores.jsonl").open("a") as fh:
        fh.write('{"id": 3}\n{"torn": ')
    bench = load_run(copy).benchmarks["geochat_referring"]
    assert bench.n_bad_lines == 2 and len(bench.samples) == 120


@pytest.mark.parametrize("make", ["missing", "empty", "no_scores_json"])
def test_load_run_errors(tmp_path: Path, make: str) -> None:
    path = tmp_path / "run"
    if make != "missing":
        (path / "scores/cls_aid").mkdir(parents=True)
    if make == "no_scores_json":
        (path / "scores/cls_aid/sample_scores.jsonl").write_text("")
    with pytest.raises(InputError, match="not found" if make == "missing" else "holds no scores"):
        load_run(path)


def test_summary_is_the_scored_numbers(report_runs: Runs, real_data: Path) -> None:
    run_a, _ = report_runs()
    summary = summarize_run(load_run(run_a))
    rows = {r["benchmark"]: r for r in summary["benchmarks"]}
    scores = json.loads((run_a / "scores/cls_aid/scores.json").read_text())["report"]
    aid = rows["cls_aid"]
    assert aid["key"] == "acc" and aid["n"] == 600
    assert aid["strict"] == scores["strict"]["acc"] and aid["official"] == scores["official"]["acc"]
    assert aid["strict_ci95"] == scores["ci95"]["strict"]["acc"]
    lo, hi = aid["strict_ci95"]
    assert lo < aid["strict"] < hi
    # EarthDial's "Medium Residential": strict maps it, official contain-acc does not
    assert aid["strict"] > aid["official"] + 0.1
    assert aid["parse_failure_rate"] == scores["counts"]["parse_failure_rate"] > 0
    geo = rows["geochat_referring"]
    assert geo["key"] == "Pr(F1=1, IoU=0.5)" and 0 < geo["strict"] < 0.5
    assert geo["official"] is None  # the original crashes on GeoChat's 5-number boxes
    det_scores = json.loads((run_a / "scores/dota_test512/scores.json").read_text())
    assert det_scores["root"] == str((real_data / "dota").resolve())  # where the images are
    det = rows["dota_test512"]
    assert det["key"] == "mAP_nc" and 0 < det["strict"] < 1 and det["strict_ci95"] is None


def test_results_files_print_every_digit(report_runs: Runs, tmp_path: Path) -> None:
    run_a, _ = report_runs()
    result = write_report(load_run(run_a), tmp_path)
    assert {p.name for p in result["files"]} == {"results.json", "results.md"}
    data = json.loads((tmp_path / "results.json").read_text())
    assert data == result["summary"]
    md = (tmp_path / "results.md").read_text()
    for row in data["benchmarks"]:
        assert f"| {row['benchmark']} |" in md
        if row["strict"] is not None:
            assert repr(row["strict"]) in md
        if row["strict_ci95"]:
            assert f"[{row['strict_ci95'][0]!r}, {row['strict_ci95'][1]!r}]" in md
    assert results_markdown(data).count("\n|") == 2 + len(data["benchmarks"])


def test_compare_is_paired_over_shared_ids(report_runs: Runs, tmp_path: Path) -> None:
    run_a, run_b = report_runs()
    diffs = {d.benchmark: d for d in compare_runs(load_run(run_a), load_run(run_b))}
    a = {r["id"]: r for r in _lines(run_a / "scores/cls_aid/sample_scores.jsonl")}
    b = {r["id"]: r for r in _lines(run_b / "scores/cls_aid/sample_scores.jsonl")}
    by_hand = [b[i]["strict"] - a[i]["strict"] for i in a]
    aid = diffs["cls_aid"]
    assert aid.n_shared == 600 and aid.mean_diff == pytest.approx(np.mean(by_hand))
    assert aid.ci95 == bootstrap_ci(by_hand)
    assert aid.mean_diff > 0 and aid.ci95[0] > 0  # run B fixed every fifth answer
    assert aid.diff == pytest.approx(aid.b - aid.a) and aid.diff == pytest.approx(aid.mean_diff)
    assert diffs["geochat_referring"].ci95[1] < 0  # run B emptied every fourth answer
    det = diffs["dota_test512"]
    assert det.diff is not None and det.diff < 0 and det.ci95 is None and "mAP" in det.note
    # only the ids both runs scored are paired
    cut = tmp_path / "b"
    shutil.copytree(run_b, cut)
    lines = (cut / "scores/cls_aid/sample_scores.jsonl").read_text().splitlines()
    (cut / "scores/cls_aid/sample_scores.jsonl").write_text("\n".join(lines[:450]) + "\n")
    part = {d.benchmark: d for d in compare_runs(load_run(run_a), load_run(cut))}["cls_aid"]
    assert (part.n_shared, part.only_a, part.only_b) == (450, 150, 0)
    write_report(load_run(run_a), tmp_path / "out", other=load_run(cut))
    payload = json.loads((tmp_path / "out/comparison.json").read_text())
    assert {d["benchmark"]: d["n_shared"] for d in payload["benchmarks"]}["cls_aid"] == 450
    assert "paired 95% CI" in (tmp_path / "out/comparison.md").read_text()


def test_html_is_self_contained_and_escapes_outputs(report_runs: Runs, tmp_path: Path) -> None:
    run_a, run_b = report_runs()
    write_report(load_run(run_a), tmp_path, other=load_run(run_b), html=True)
    page = (tmp_path / "report.html").read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page  # markup became text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    # nothing is fetched: the only URL is the SVG namespace
    for marker in ("http://", "https://", "//cdn", 'src="http'):
        assert page.replace('xmlns="http://www.w3.org/2000/svg"', "").count(marker) == 0
    assert page.count("<svg") >= 6 and page.count('src="data:image/png;base64,') >= 10
    assert "confusion matrix" in page and "IoU of the predicted box" in page
    assert "precision / recall per class" in page and "weights_sha256" in page
    assert INJECTION not in page


def test_gallery_draws_true_and_predicted_boxes(real_data: Path) -> None:
    line = {
        "image": {"source": "images/P0706.png", "window": [0, 0, 512, 512], "grid": None},
        "reference": [{"label": "ship", "quad": [100, 100, 300, 100, 300, 300, 100, 300]}],
        "extra": {"quads": [[20, 20, 60, 20, 60, 60, 20, 60]]},
    }
    picture = gallery_image(line, real_data / "dota")
    assert picture is not None and picture[1]
    img = Image.open(io.BytesIO(base64.b64decode(picture[0].split(",", 1)[1]))).convert("RGB")
    assert max(img.size) == 320
    f = 320 / 512
    px = np.asarray(img).astype(int)

    def near(x: float, y: float) -> np.ndarray:  # the pixels around a point of an edge
        cx, cy = round(x * f), round(y * f)
        return px[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3)

    def green(p: np.ndarray) -> bool:
        return bool(np.any((p[:, 1] > 140) & (p[:, 1] > p[:, 0] + 80)))

    def red(p: np.ndarray) -> bool:
        return bool(np.any((p[:, 0] > 140) & (p[:, 0] > p[:, 1] + 80)))

    assert green(near(200, 100)) and not red(near(200, 100))  # the true box's top edge
    assert red(near(40, 20)) and not green(near(40, 20))  # the predicted box's top edge
    assert not red(near(200, 200)) and not green(near(200, 200))  # inside: the image itself
    # a source outside the root is not followed: the boxes go on a blank canvas
    line["image"]["source"] = "../../../../etc/passwd"
    assert gallery_image(line, real_data / "dota")[1] is False
    assert gallery_image({"image": {"source": "x.png"}, "reference": "Beach"}, None) is None


def test_charts_escape_labels() -> None:
    svg = bar_chart("<t>", [("<b>x</b>", 0.5), ("none", None)])
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "0.5" in svg
    conf = confusion_svg(["a&b"], ["a&b", "<unparsed>"], [[3, 1]])
    assert "a&amp;b" in conf and "&lt;unparsed&gt;" in conf and "<unparsed>" not in conf


def test_old_sample_lines_still_report(report_runs: Runs, tmp_path: Path) -> None:
    """Folders written before sample lines carried output/reference/image still render."""
    run_a, _ = report_runs()
    old = tmp_path / "old"
    shutil.copytree(run_a / "scores/dota_test512", old)
    lines = _lines(old / "sample_scores.jsonl")
    assert {"output", "reference", "image"} <= set(lines[0])
    stripped = [
        {k: v for k, v in r.items() if k not in {"output", "reference", "image"}} for r in lines
    ]
    (old / "sample_scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stripped))
    write_report(load_run(old), tmp_path / "out", html=True)
    page = (tmp_path / "out/report.html").read_text()
    assert "(output not recorded)" in page and "dota_test512" in page


def test_zoom_trace_crop_boxes_reach_the_gallery(real_data: Path, tmp_path: Path) -> None:
    """A predictions line with a zoom ``trace`` (ZoomResult.to_dict) on the real LRS-VQA
    questions: ``eval score`` keeps its crop windows and the gallery draws them (blue)."""
    from rscovlm.cli import main
    from rscovlm.eval.benchmarks import get_benchmark
    from rscovlm.eval.benchmarks.run import read_benchmark

    root = real_data / "lrs_vqa"
    samples, _ = read_benchmark(get_benchmark("lrsvqa_visual_cot"), root)
    trace = {"hops": [{"window": [0, 0, 2000, 2000]}, {"window": [500, 400, 1500, 1200]}]}
    preds = [{"id": s.id, "output": "<b>no</b>", "trace": trace} for s in samples[:5]]
    preds.append({"id": samples[5].id, "output": "no", "trace": {"hops": [{"window": "x"}]}})
    pred = tmp_path / "preds.jsonl"
    pred.write_text("".join(json.dumps(p) + "\n" for p in preds))
    out = tmp_path / "run/scores/lrsvqa_visual_cot"
    args = ["eval", "score", "--benchmark", "lrsvqa_visual_cot", "--root", str(root)]
    code = 0
    try:
        main([*args, "--pred", str(pred), "--out", str(out)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0
    lines = {r["id"]: r for r in _lines(out / "sample_scores.jsonl")}
    assert lines[samples[0].id]["crop_boxes"] == [
        [0, 0, 2000, 2000],
        [500, 400, 1500, 1200],
    ]
    assert "crop_boxes" not in lines[samples[5].id]  # a malformed trace draws nothing
    picture = gallery_image(lines[samples[0].id], root)
    assert picture is not None and picture[1] is False  # the images are not shipped
    img = Image.open(io.BytesIO(base64.b64decode(picture[0].split(",", 1)[1]))).convert("RGB")
    rgb = np.asarray(img).astype(int).reshape(-1, 3)
    assert np.any((rgb[:, 2] > 180) & (rgb[:, 2] > rgb[:, 0] + 80))  # blue crop outlines
    write_report(load_run(tmp_path / "run"), tmp_path / "rep", html=True)
    page = (tmp_path / "rep/report.html").read_text()
    assert "&lt;b&gt;no&lt;/b&gt;" in page and page.count('src="data:image/png') >= 5


def test_grid_boxes_fill_a_square_canvas() -> None:
    """GeoChat boxes live on a 0–100 grid (recorded as ``grid`` 100.0): without the image the
    canvas is that grid, so every picture has one scale whatever the boxes' extent."""
    line = {
        "image": {"source": "images/0.png", "window": None, "grid": 100.0},
        "reference": {"boxes": [[10, 10, 30, 20, 0]]},
        "extra": {"boxes": [[50, 30, 60, 30, 60, 40, 50, 40]]},  # extent 60 × 40
    }
    uri, found = gallery_image(line, None) or ("", True)
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert not found and img.size == (320, 320)
