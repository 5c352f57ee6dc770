"""The demo's held-out synthetic benchmarks: written by the demo's own generators into a demo-like
work dir, read through the registry, scored by the real scorers (a perfect answer scores 1, a
wrong one less), and through the CLI's ``eval samples`` / ``eval score``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rscovlm.data.sources.synthetic import (
    BOX_CLASSES,
    iter_synthetic_records,
    write_box_scenes,
    write_colour_scenes,
)
from rscovlm.eval.benchmarks import get_benchmark, list_benchmarks
from rscovlm.eval.benchmarks.run import read_benchmark
from rscovlm.eval.benchmarks.synthetic import SYNTHETIC_BENCHMARKS
from rscovlm.formats.prompts import detection_system_prompt

from .conftest import Run, write_jsonl


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir laid out as ``rscovlm demo`` leaves it (its ``held_out`` part)."""
    root = tmp_path_factory.mktemp("demo")
    held = root / "held_out"
    write_box_scenes(held / "boxes", 6, 112, seed=13)
    write_colour_scenes(held / "colours", 2, seed=99)
    list(iter_synthetic_records(held, "synthetic", n=3, size=160, seed=7))
    return root


def test_registered() -> None:
    assert set(SYNTHETIC_BENCHMARKS) <= set(list_benchmarks())


def test_det_reads_hbb_prompt_and_scores_perfect_and_wrong(demo_root: Path) -> None:
    bench = get_benchmark("synthetic_det")
    samples, report = read_benchmark(bench, demo_root)
    assert len(samples) == 6 and report.n_bad == 0
    assert all(len(s.reference) == 1 and s.reference[0]["label"] in BOX_CLASSES for s in samples)
    for s in samples:  # edges on the 28 px token grid, inside the 112 px image, not empty
        quad = s.reference[0]["quad"]
        assert all(v % 28 == 0 and 0 <= v <= 112 for v in quad)
        assert max(quad[0::2]) > min(quad[0::2]) and max(quad[1::2]) > min(quad[1::2])
    system = samples[0].to_json()["messages"][0]["content"][0]["text"]
    assert system == detection_system_prompt("hbb")  # the box kind the demo trains
    perfect = bench.perfect_output(samples[0])
    assert perfect.count("\n") == 1 and len(perfect.split(" ", 1)[0].split(",")) == 4
    good = bench.aggregate(samples, [bench.score(s, bench.perfect_output(s)) for s in samples])
    assert good["strict"]["mAP_nc"] == 1.0 and good["strict"]["F1_strict"] == 1.0
    # a box in the wrong corner of every image: parsed, but no hit
    wrong = [bench.score(s, "0,0,3,3 storage tank\n") for s in samples]
    bad = bench.aggregate(samples, wrong)
    assert bad["strict"]["parsed"] == 1.0 and bad["strict"]["mAP_nc"] == 0.0


def test_det_aerial_perfect(demo_root: Path) -> None:
    bench = get_benchmark("synthetic_det_aerial")
    samples, _ = read_benchmark(bench, demo_root)
    assert len(samples) == 3
    scores = [bench.score(s, bench.perfect_output(s)) for s in samples]
    assert bench.aggregate(samples, scores)["strict"]["mAP_nc"] == 1.0


def test_cls_vqa_grounding_perfect_and_wrong(demo_root: Path) -> None:
    for name, n in (("synthetic_cls", 8), ("synthetic_vqa", None), ("synthetic_grounding", 6)):
        bench = get_benchmark(name)
        samples, report = read_benchmark(bench, demo_root)
        assert report.n_bad == 0 and samples and (n is None or len(samples) == n)
        good = bench.aggregate(samples, [bench.score(s, bench.perfect_output(s)) for s in samples])
        bad = bench.aggregate(samples, [bench.score(s, "zebra") for s in samples])
        key = "acc" if name == "synthetic_vqa" else bench.metric
        full = 100.0 if name == "synthetic_grounding" else 1.0  # REC reports in percent
        assert good["strict"][key] == full and bad["strict"][key] == 0.0, (good, bad)


def test_cli_samples_and_score(demo_root: Path, tmp_path: Path, run_cli: Run) -> None:
    out = run_cli(
        "eval", "samples", "--benchmark", "synthetic_det", "--root", str(demo_root),
        "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert "6 samples" in out
    lines = (tmp_path / "s" / "samples.jsonl").read_text().splitlines()
    bench = get_benchmark("synthetic_det")
    samples, _ = read_benchmark(bench, demo_root)
    by_id = {s.id: s for s in samples}
    preds = [
        {
            "id": json.loads(line)["id"],
            "output": bench.perfect_output(by_id[json.loads(line)["id"]]),
        }
        for line in lines
    ]
    write_jsonl(tmp_path / "pred.jsonl", preds)
    run_cli(
        "eval", "score", "--benchmark", "synthetic_det", "--root", str(demo_root),
        "--pred", str(tmp_path / "pred.jsonl"), "--out", str(tmp_path / "scores"),
    )  # fmt: skip
    scores = json.loads((tmp_path / "scores" / "scores.json").read_text())
    assert scores["predictions"]["n_missing"] == 0
    assert scores["report"]["strict"]["mAP_nc"] == 1.0, scores
