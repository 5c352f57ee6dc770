"""Every table rscovlm prints keeps every figure whole: ``eval det``, ``data stats`` and
``demo --quick`` at COLUMNS=60, 80 and 200 and piped (no COLUMNS, stdout not a terminal), each
figure compared with the JSON or the returned values."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.console import Console

from rscovlm import geometry
from rscovlm.cli import main
from rscovlm.data.shards import read_manifest
from rscovlm.demo.run import run_demo
from rscovlm.eval.detection_io import GroundTruth
from rscovlm.formats.classes import DOTA_V1_0
from rscovlm.formats.results import write_task1

WIDTHS = ["60", "80", "200", None]  # None: piped, the terminal width unknown
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _run(args: list[str], width: str | None, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> str:  # fmt: skip
    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", width)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr().out
    assert info.value.code == 0, out
    assert "…" not in out and "..." not in out
    return out


def _assert_figures(out: str, expected: list[Any]) -> None:
    """Every expected figure is printed as a whole token, as often as it is expected."""
    found = Counter(NUMBER.findall(out))
    want = Counter(str(v) for v in expected)
    missing = {k: n - found[k] for k, n in want.items() if found[k] < n}
    assert not missing, (missing, out)


@pytest.fixture(scope="module")
def det_files(dota_gt: GroundTruth, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Jittered copies of the real DOTA labels plus duplicates: counts of 2-4 digits."""
    rng = np.random.default_rng(3)
    boxes = dota_gt.boxes
    obb = geometry.quad_to_obb(boxes.quads)
    obb[:, :2] += rng.normal(0, 1.5, (len(obb), 2))
    dup = rng.random(len(obb)) < 0.3
    quads = np.concatenate([geometry.obb_to_quad(obb), boxes.quads[dup]])
    pred = boxes.take(np.concatenate([np.arange(len(boxes)), np.flatnonzero(dup)]))
    pred = type(pred)(pred.image, pred.label, quads, rng.random(len(pred)), pred.difficult)
    root = tmp_path_factory.mktemp("det")
    write_task1(pred.table(dota_gt.images, DOTA_V1_0), root / "pred")
    return root


@pytest.mark.parametrize("width", WIDTHS)
def test_eval_det_tables_keep_every_figure(
    width: str | None, det_files: Path, dota_label_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out_dir = det_files / f"out{width}"
    args = ["eval", "det", "--gt", str(dota_label_dir), "--pred", str(det_files / "pred"),
            "--pred-format", "task1", "--out", str(out_dir)]  # fmt: skip
    out = _run(args, width, monkeypatch, capsys)
    result = json.loads((out_dir / "results.json").read_text())

    def f4(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    expected: list[Any] = [f4(result["mAP"])]
    for name, c in result["per_class"].items():
        assert name in out.split() or f"class: {name}" in out
        expected += [c["n_gt"], c["n_difficult"], c["n_det"], c["tp"], c["fp"]]
        expected += [f4(v) for v in (c["recall"], c["precision"], c["ap"]) if v is not None]
    f1 = result["f1"]
    expected += [f"{f1['mF1']:.4f}", f"{f1['mP']:.4f}", f"{f1['mR']:.4f}", f"{f1['strict_f1']:.4f}"]
    assert max(c["n_det"] for c in result["per_class"].values()) >= 100  # multi-digit counts
    _assert_figures(out, expected)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stats")
    recipe = {"root": "data", "sources": [
        {"name": "synthetic_scenes_with_a_long_source_name", "adapter": "synthetic",
         "options": {"n": 4, "size": 256}},
        {"name": "syn2", "adapter": "synthetic", "options": {"n": 2, "size": 256, "seed": 5}},
    ]}  # fmt: skip
    (root / "data").mkdir()
    (root / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(SystemExit) as info:
        main(["data", "build", str(root / "r.yaml"), "--out", str(root / "built"),
              "--workers", "0"])  # fmt: skip
    assert info.value.code == 0
    return root / "built"


@pytest.mark.parametrize("width", WIDTHS)
def test_data_stats_tables_keep_every_figure(
    width: str | None, built: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = _run(["data", "stats", str(built)], width, monkeypatch, capsys)
    manifest = read_manifest(built)
    expected: list[Any] = [manifest["totals"][k] for k in ("read", "kept", "rejected")]
    for name, entry in manifest["sources"].items():
        assert name in out.split() or name in out
        expected += [entry[k] for k in ("read", "kept", "rejected")]
        for key in ("splits", "tasks", "classes", "reasons"):
            expected += list(entry.get(key, {}).values())
    assert manifest["sources"]["syn2"]["classes"]  # the class table is there
    _assert_figures(out, expected)


@pytest.mark.parametrize("width", WIDTHS)
def test_demo_quick_table_keeps_every_figure(
    width: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_demo(seed=0, console=Console(file=io.StringIO()))
    out = _run(["demo", "--quick"], width, monkeypatch, capsys)
    values = (r.det_map, r.det_map_unit, r.det_map_nc, r.det_mf1, r.det_strict_f1,
              r.vlm_map_nc, r.vlm_mf1, r.vlm_strict_f1)  # fmt: skip
    expected = [f"{v:.3f}" for v in values]
    assert f"(tau*={r.det_tau:.2f})" in out
    _assert_figures(out, expected)
