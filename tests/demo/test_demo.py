"""``rscovlm demo`` end to end at its smallest settings: data, co-training, evaluation, the
protocol table and the summary, in one run (the protocol table alone is tested in
``tests/eval/test_cli_eval.py``)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tiktoken")


@pytest.mark.integration
def test_full_demo_trains_evaluates_and_sums_up(tmp_path: Path) -> None:
    from rscovlm.demo.e2e import DemoSettings
    from rscovlm.demo.run import run_full_demo
    from rscovlm.eval.benchmarks.synthetic import SYNTHETIC_BENCHMARKS

    settings = DemoSettings.smallest()
    console = Console(record=True, width=160, file=io.StringIO())
    result = run_full_demo(seed=0, console=console, settings=settings, workdir=tmp_path / "wd")
    e = result.e2e

    # data: every record read was kept or rejected
    assert e.built["read"] == e.built["kept"] + e.built["rejected"] > 0
    # train: the configured steps ran and the loss fell, on training and held-out samples
    assert len(e.losses) == settings.steps and all(math.isfinite(x) for x in e.losses)
    assert e.loss_tenths()[-1] < 0.5 * e.loss_tenths()[0]
    assert e.loss_after < 0.8 * e.loss_before
    assert set(e.heldout_tasks) == {"detection", "vqa", "classification"}
    # the evaluation suite ran both checkpoints over every held-out synthetic benchmark
    assert set(e.benchmarks) == set(SYNTHETIC_BENCHMARKS) and e.chance == 0.25
    for name, b in e.benchmarks.items():
        assert b.n > 0 and b.n_done == b.n, name  # every sample answered, none lost
        for value in (b.strict, b.official, b.base_strict):
            assert value is None or 0.0 <= value <= 1.0, name
    assert e.benchmarks["synthetic_cls"].n == 4 * settings.held_colours_per_class
    assert e.benchmarks["synthetic_det"].n == settings.held_box_scenes
    assert e.benchmarks["synthetic_cls"].gain_ci95 is not None  # paired per sample
    assert e.benchmarks["synthetic_det"].gain_ci95 is None  # mAP is a set number
    assert 0.0 <= e.det_prior_map_nc <= 1.0
    for label in ("trained", "base"):
        manifest = json.loads((e.runs[label] / "manifest.json").read_text())
        assert set(manifest["benchmarks"]) >= set(SYNTHETIC_BENCHMARKS), label
        assert (e.runs[label] / "results.json").is_file(), label
    # the HTML report compares the two runs and names every benchmark
    html = e.report.read_text(encoding="utf-8")
    assert e.report.suffix == ".html" and str(e.runs["base"]) in html
    for name in SYNTHETIC_BENCHMARKS:
        assert name in html, name
    # the held-out loss of every task, before and after
    assert set(e.task_losses) == set(e.heldout_tasks)
    # the work dir was given, so it is kept with the run's outputs
    assert e.workdir == (tmp_path / "wd").resolve()
    assert (e.workdir / "run" / "final" / "config.json").is_file()
    assert e.report.is_relative_to(e.workdir / "eval")

    text = " ".join(console.export_text().split())
    for piece in (
        "1/4 data",
        "2/4 train",
        "3/4 eval",
        "SIMULATED",
        "rscovlm demo summary (seed 0)",
        "held-out loss",
        "eval run",
        "eval report",
        "mAP_nc",
        "label prior",
        "gain 95% CI",
        f"Report: {e.report}",
        *SYNTHETIC_BENCHMARKS,
    ):
        assert piece in text, piece


def test_a_temporary_work_dir_goes_but_its_evaluation(tmp_path: Path) -> None:
    from rscovlm.demo.e2e import _remove_but_the_evaluation

    for name in ("src/a.png", "run/final/model.safetensors", "eval/report/report.html"):
        (tmp_path / "wd" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "wd" / name).write_text("x")
    (tmp_path / "wd" / "recipe.yaml").write_text("x")
    _remove_but_the_evaluation(tmp_path / "wd", keep_eval=True)
    assert sorted(p.name for p in (tmp_path / "wd").iterdir()) == ["eval"]
    assert (tmp_path / "wd" / "eval" / "report" / "report.html").is_file()
    _remove_but_the_evaluation(tmp_path / "wd", keep_eval=False)  # a failed run: all of it
    assert not (tmp_path / "wd").exists()
