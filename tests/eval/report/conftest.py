"""Run folders for the report tests, built by the real ``rscovlm eval score`` on REAL model
outputs (EarthDial AID classification, EarthDial GeoChat referring; ../shared/data/real, read
in place) and on the real DOTA images and labels (answers made from their ground truth, with
objects dropped and patches garbled, since no real detection outputs are shipped)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rscovlm.cli import main
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import read_benchmark

INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _earthdial(real_data: Path, name: str) -> list[dict]:
    path = real_data / f"model_outputs/earthdial_{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _score(name: str, root: Path, preds: list[dict], run: Path) -> None:
    pred = write_jsonl(run / "predictions" / f"{name}.jsonl", preds)
    args = ["eval", "score", "--benchmark", name, "--root", str(root), "--pred", str(pred)]
    code = 0
    try:
        main([*args, "--out", str(run / "scores" / name)])
    except SystemExit as exc:  # pragma: no cover - a failing score is a fixture bug
        code = int(exc.code or 0)
    assert code == 0, f"eval score {name} failed"


def _roots(real_data: Path, tmp: Path) -> dict[str, Path]:
    """Benchmark roots in each benchmark's released layout (GT from the real files)."""
    classes = json.loads((real_data / "scene_cls/class_lists.json").read_text())["AID"]["classes"]
    aid = _earthdial(real_data, "aid_classification")[:600]
    gt = [
        {
            "image_id": f"{r['annotation']}/{r['annotation'].lower()}_{i}.jpg",
            "classes": ",".join(sorted(classes)) + ".",
            "ground_truth": r["annotation"],
        }
        for i, r in enumerate(aid)
    ]
    (tmp / "cls").mkdir(parents=True)
    (tmp / "cls/cls_aid_test.json").write_text(json.dumps(gt))
    geo = _earthdial(real_data, "geochat_referring_300")[:120]
    lines = [
        {
            "question_id": i,
            "image_id": f"{i}.jpg",
            "question": r["question"],
            "ground_truth": r["gt_bbox"],
            "size_group": r["size_group"],
            "type": r["task_type"],
            "obj_ids": list(range(r["gt_bbox"].count("[["))) or [0],
        }
        for i, r in enumerate(geo)
    ]
    write_jsonl(tmp / "geo/referring.jsonl", lines)
    return {
        "cls_aid": tmp / "cls",
        "geochat_referring": tmp / "geo",
        "dota_test512": real_data / "dota",
    }


def _predictions(real_data: Path, roots: dict[str, Path], variant: int) -> dict[str, list[dict]]:
    """Predictions per benchmark: the real EarthDial answers (run A) or a perturbed copy
    (run B: a few AID answers made right, some GeoChat answers emptied)."""
    out: dict[str, list[dict]] = {}
    aid = _earthdial(real_data, "aid_classification")
    samples, _ = read_benchmark(get_benchmark("cls_aid"), roots["cls_aid"])
    preds = [{"id": s.id, "output": r["answer"]} for s, r in zip(samples, aid, strict=False)]
    if variant:
        for k, p in enumerate(preds):
            if k % 5 == 0:
                p["output"] = samples[k].reference
    preds[3]["output"] = INJECTION  # untrusted output: must be inert in the page
    out["cls_aid"] = preds
    geo = _earthdial(real_data, "geochat_referring_300")
    samples, _ = read_benchmark(get_benchmark("geochat_referring"), roots["geochat_referring"])
    preds = [{"id": s.id, "output": r["answer"]} for s, r in zip(samples, geo, strict=False)]
    if variant:
        for k, p in enumerate(preds):
            if k % 4 == 0:
                p["output"] = ""
    out["geochat_referring"] = preds
    bench = get_benchmark("dota_test512")
    samples, _ = read_benchmark(bench, roots["dota_test512"])
    preds = []
    for k, s in enumerate(samples):
        lines = bench.perfect_output(s).splitlines()
        text = "\n".join(line for j, line in enumerate(lines) if j % 3 != variant)
        preds.append({"id": s.id, "output": "garbled ]][[" if k % 7 == 3 else text})
    out["dota_test512"] = preds
    return out


@pytest.fixture(scope="session")
def report_runs(
    real_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], tuple[Path, Path]]:
    """``(run A, run B)``: three benchmarks each, A with a manifest, B without."""
    tmp = tmp_path_factory.mktemp("report_runs")
    roots = _roots(real_data, tmp / "roots")
    for variant, name in ((0, "run_a"), (1, "run_b")):
        run = tmp / name
        for bench, preds in _predictions(real_data, roots, variant).items():
            _score(bench, roots[bench], preds, run)
    manifest = {
        "rscovlm_version": "0.0.test",
        "model": {"family": "qwen2_5_vl", "weights_sha256": "ab" * 32},
        "generation": {"temperature": 0.0, "max_new_tokens": 256},
        "band": {"min_pixels": 3136, "max_pixels": 1003520},
    }
    (tmp / "run_a/manifest.json").write_text(json.dumps(manifest))

    def runs() -> tuple[Path, Path]:
        return tmp / "run_a", tmp / "run_b"

    return runs
