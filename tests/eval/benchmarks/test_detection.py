"""Detection as a benchmark: the real DOTA labels and images (read in place), patches planned by
data/split, merged back by data/patches, scored by the mAP_nc / mF1 protocol."""

from __future__ import annotations

from pathlib import Path

from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import read_benchmark
from rscovlm.formats.classes import get_classes
from rscovlm.formats.prompts import detection_system_prompt, detection_user_prompt


def test_dota_patches_prompts_and_bad_records(real_data: Path) -> None:
    bench = get_benchmark("dota_test512")
    samples, report = read_benchmark(bench, real_data / "dota")
    # 7 label files, 2 images: the 5 without an image have no size to plan patches with
    assert report.n_bad == 5 and "image size unknown" in report.bad_examples[0]
    assert {s.meta["image_id"] for s in samples} == {"P0706", "P1888"}
    assert len({s.id for s in samples}) == len(samples) > 2
    again, _ = read_benchmark(bench, real_data / "dota")
    assert [s.id for s in again] == [s.id for s in samples]
    msgs = samples[0].to_json()["messages"]
    assert msgs[0] == {
        "role": "system",
        "content": [{"type": "text", "text": detection_system_prompt("quad")}],
    }
    user = msgs[1]["content"][1]["text"]
    assert user == detection_user_prompt(get_classes("dota1.0"), eval_mode=True)
    assert user.startswith("find the ") and user.endswith(".")
    part = samples[1].image_parts()[0]
    assert part.window is not None and part.orig_size == (512, 512)


def test_dota_perfect_and_garbage(real_data: Path) -> None:
    bench = get_benchmark("dota_test512")
    samples, _ = read_benchmark(bench, real_data / "dota")
    perfect = [bench.score(s, bench.perfect_output(s)) for s in samples]
    report = bench.aggregate(samples, perfect)
    assert report["strict"]["parsed"] == 1.0
    # objects cut by every patch are lost: high, not perfect (the protocol's own limit)
    assert 0.7 < report["official"]["mAP_nc"] <= 1.0
    n_gt = report["detection"]["n_gt"]
    assert 0 < report["detection"]["n_pred_merged"] <= n_gt
    garbage = [bench.score(s, "1,2,3 nothing\n\x00") for s in samples]
    bad = bench.aggregate(samples, garbage)
    assert bad["strict"]["parsed"] == 0.0 and bad["official"]["mAP_nc"] == 0.0
    assert bad["counts"]["n_failed"] == len(samples)


def test_dior_r_one_image_perfect(real_data: Path) -> None:
    bench = get_benchmark("dior_r_test")
    samples, report = read_benchmark(bench, real_data / "dior")
    assert len(samples) == 1 and report.n_bad == 0
    scores = [bench.score(s, bench.perfect_output(s)) for s in samples]
    assert bench.aggregate(samples, scores)["strict"]["mAP_nc"] == 1.0
