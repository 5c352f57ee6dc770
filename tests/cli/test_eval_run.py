"""``rscovlm eval run`` → ``eval status`` → ``eval score RUN`` end to end with the tiny Qwen2.5-VL
(hf backend, CPU) on real RSVQA-LR questions and real Sentinel-2 tiles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rscovlm.cli import main

pytestmark = pytest.mark.integration


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture
def lr_without_images(real_data: Path, tmp_path: Path) -> Path:
    """RSVQA-LR's real files with the image folder empty: every sample's image is unreadable."""
    root = tmp_path / "lr_no_images"
    (root / "Images_LR").mkdir(parents=True)
    for f in (real_data / "rsvqa" / "LR").glob("*.json"):
        (root / f.name).symlink_to(f)
    return root


def test_tiny_hf_run_status_score(
    tiny_qwen25_dir: Path,
    real_data: Path,
    lr_without_images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    common = ["--model", str(tiny_qwen25_dir), "--out", str(run), "--limit", "6",
              "--max-new-tokens", "4", "--batch-size", "4", "--no-progress"]  # fmt: skip
    # 1. images missing: every sample is an error line, nothing is scored as text
    code, out, err = _cli(["eval", "run", "rsvqa_lr", "--root", str(lr_without_images), *common],
                          capsys)  # fmt: skip
    assert code == 0, err
    assert "0 done now, 6 errors" in out
    plan = (
        "rerun (the same eval run command, any number of workers): 6 to run "
        "(0 missing, 6 errors to retry)"
    )
    assert plan in out.splitlines()
    code, out, _ = _cli(["eval", "status", str(run)], capsys)
    assert code == 0 and "rsvqa_lr" in out and "236.tif" in out
    row = next(x for x in out.splitlines() if x.startswith("rsvqa_lr"))
    assert row.split()[1:] == ["6", "0", "6", "0", "0"]
    assert plan in out.splitlines()  # what a rerun would do, before it is run
    assert f"next: rscovlm eval report {run} --html --out {run / 'report'}" in out.splitlines()

    # 2. the images back (another root, the same samples): exactly the errors are redone
    lr = real_data / "rsvqa" / "LR"
    code, out, err = _cli(["eval", "run", "rsvqa_lr", "--root", f"rsvqa_lr={lr}", *common], capsys)
    assert code == 0, err
    assert "0 already done, 6 done now, 0 errors" in out and "1 images decoded" in out
    code, out, _ = _cli(["eval", "status", str(run)], capsys)
    row = next(x for x in out.splitlines() if x.startswith("rsvqa_lr"))
    assert row.split()[1:] == ["6", "6", "0", "0", "0"]
    assert "rerun: 0 to run (every sample has a prediction)" in out.splitlines()

    # one worker of two: the other's shards are what a rerun (or that worker) still runs
    half = tmp_path / "half"
    args = ["eval", "run", "rsvqa_lr", "--root", str(lr), *common[:2], "--out", str(half),
            "--limit", "6", "--max-new-tokens", "4", "--no-progress", "--shard", "0/2"]  # fmt: skip
    code, out, err = _cli(args, capsys)
    assert code == 0, err
    n_done = int(re.search(r"(\d+) done now", out).group(1))  # type: ignore[union-attr]
    assert 0 < n_done < 6  # the id hashes split these six samples across both workers
    assert f"{6 - n_done} to run ({6 - n_done} missing, 0 errors to retry)" in out
    assert "other workers may still be running" in out

    # 3. score: the contract layout for the report
    code, out, err = _cli(["eval", "score", str(run)], capsys)
    assert code == 0, err
    results = json.loads((run / "results.json").read_text())
    bench = results["benchmarks"]["rsvqa_lr"]
    assert bench["coverage"]["n_done"] == 6 and bench["metric"] == "OA"
    assert bench["counts"]["n_in"] == 6
    scores = json.loads((run / "scores" / "rsvqa_lr" / "scores.json").read_text())
    assert scores["n_samples"] == 6 and scores["predictions"]["n_used"] == 6
    assert len((run / "scores" / "rsvqa_lr" / "sample_scores.jsonl").read_text().splitlines()) == 6
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["model"]["files"]["model.safetensors"]
    assert manifest["params"]["max_new_tokens"] == 4 and manifest["backend"] == "hf"
    assert results["fingerprint"]["model"] == manifest["model"]

    # 4. the runner's outputs are exactly a bare generate over the same conversations
    from rscovlm.eval.benchmarks import get_benchmark
    from rscovlm.eval.benchmarks.run import read_benchmark
    from rscovlm.eval.runner.batching import Job, prepare
    from rscovlm.model.backends.base import GenerationParams
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.encoding import load_conversation_images

    backend = HFBackend(tiny_qwen25_dir)
    samples, _ = read_benchmark(get_benchmark("rsvqa_lr"), lr)
    convs = [prepare(Job("rsvqa_lr", s, lr), backend.band).conversation for s in samples[:6]]
    images = [load_conversation_images(c, lr) for c in convs]  # type: ignore[arg-type]
    gens = backend.generate(convs, GenerationParams(max_new_tokens=4), images)  # type: ignore[arg-type]
    preds: dict[str, Any] = {
        x["id"]: x for x in map(json.loads, (run / "scores" / "rsvqa_lr" / "predictions.jsonl")
                                .read_text().splitlines())
    }  # fmt: skip
    assert [preds[s.id]["output"] for s in samples[:6]] == [g.text for g in gens]
    first = preds[samples[0].id]
    assert first["orig_size"] == [256, 256] and first["usage"]["image_tokens"] > 0


def test_batch_size_reaches_the_hf_backend(
    tiny_qwen25_dir: Path,
    real_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--batch-size 10`` is one ``model.generate`` over 10 rows, not the backend's default
    split of 8 + 2 (the real tiny model runs; the spy only counts the rows of each call)."""
    from rscovlm.model.backends.hf import HFBackend

    rows: list[int] = []
    original = HFBackend.__init__

    def spied_init(self: HFBackend, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        generate = self.lm.model.generate

        def counted(**inputs: Any) -> Any:
            rows.append(int(inputs["input_ids"].shape[0]))
            return generate(**inputs)

        self.lm.model.generate = counted

    monkeypatch.setattr(HFBackend, "__init__", spied_init)
    lr = real_data / "rsvqa" / "LR"
    code, out, err = _cli(
        ["eval", "run", "rsvqa_lr", "--root", str(lr), "--model", str(tiny_qwen25_dir),
         "--out", str(tmp_path / "run"), "--limit", "10", "--batch-size", "10",
         "--max-new-tokens", "2", "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "10 done now, 0 errors" in out
    assert rows == [10]
