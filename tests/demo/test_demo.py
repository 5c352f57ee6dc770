"""``rscovlm demo`` end to end at its smallest settings: data, co-training, evaluation, the
protocol table and the summary, in one run (the protocol table alone is tested in
``tests/eval/test_cli_eval.py``)."""

from __future__ import annotations

import io
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
    # accuracy reported against chance on every held-out colour scene
    assert e.n_accuracy == 4 * settings.held_colours_per_class and e.chance == 0.25
    assert 0.0 <= e.accuracy_before <= 1.0 and 0.0 <= e.accuracy_after <= 1.0
    # detection went through the pipeline and was scored; the counts add up
    c = e.det_counts
    assert e.det_images == settings.held_box_scenes == c["n_patches"] == c["n_outputs"]
    assert e.det_objects > 0
    assert (
        c["n_objects"] == c["n_kept"] + c["n_suppressed"] + c["n_unknown_label"] + c["n_degenerate"]
    )
    assert e.det_read == c["n_kept"] and e.det_scored == e.det_read
    assert 0.0 <= e.det_map_nc <= 1.0 and 0.0 <= e.det_mf1 <= 1.0
    assert 0.0 <= e.det_prior_map_nc <= 1.0
    # the held-out loss of every task, before and after
    assert set(e.task_losses) == set(e.heldout_tasks)
    # the work dir was given, so it is kept with the run's outputs
    assert e.workdir == (tmp_path / "wd").resolve()
    assert (e.workdir / "run" / "final" / "config.json").is_file()
    assert (e.workdir / "detect" / "predictions.jsonl").is_file()

    text = " ".join(console.export_text().split())
    for piece in (
        "1/4 data",
        "2/4 train",
        "3/4 eval",
        "SIMULATED",
        "rscovlm demo summary (seed 0)",
        "held-out loss",
        "scene accuracy",
        "mAP_nc",
        "label prior",
        "held-out loss",
    ):
        assert piece in text, piece
