"""A run folder is someone else's file tree: a planted pickle is refused and runs nothing, a kill
during a checkpoint save costs nothing (the newest COMPLETE checkpoint resumes, none is pruned by
mistake), and ``log.jsonl`` holds every step once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rscovlm.errors import InputError  # noqa: E402
from rscovlm.train._safe_load import load_plain  # noqa: E402
from rscovlm.train.checkpoint import latest_checkpoint, prune_checkpoints  # noqa: E402

WORKER = Path(__file__).with_name("_kill_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


class _Planted:
    """Unpickling this would create ``marker``: the proof that code from a run folder ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (self.marker,))  # type: ignore[return-value]


def _train(ckpt: Path, out: Path, steps: int, kill_at: int = 0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(WORKER), str(ckpt), str(out), str(steps), str(kill_at)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def _steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]


def _complete(path: Path, step: int) -> Path:
    path.mkdir(parents=True)
    (path / "state.json").write_text(json.dumps({"step": step}))
    return path


def test_prune_counts_only_complete_checkpoints(tmp_path: Path) -> None:
    ckpts = tmp_path / "checkpoints"
    _complete(ckpts / "step_1", 1)
    (ckpts / "step_2").mkdir()  # a kill during its save: no state.json
    (ckpts / "step_3").mkdir()
    (ckpts / "step_3" / "state.json").write_text('{"step": 2}')  # vouches for another step
    prune_checkpoints(tmp_path, keep=1)
    assert (ckpts / "step_1").is_dir()  # before: the two newest folders were kept, step_1 went
    assert latest_checkpoint(tmp_path) == ckpts / "step_1"
    _complete(ckpts / "step_4", 4)
    prune_checkpoints(tmp_path, keep=1)
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_4"]


def test_planted_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for planted in (tmp_path / "zip.pt", tmp_path / "raw.pt"):
        if planted.name == "zip.pt":
            torch.save({"model": {}, "x": _Planted(marker)}, planted)  # torch's zip format
        else:
            import pickle

            planted.write_bytes(pickle.dumps(_Planted(marker)))  # a bare pickle
        with pytest.raises(InputError, match="refusing to load"):
            load_plain(planted)
    assert not marker.exists()


@pytest.mark.integration
def test_resume_refuses_a_planted_checkpoint(tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = _train(tiny_qwen25_dir, out, 1)
    assert done.returncode == 0, done.stderr[-2000:]
    marker = tmp_path / "pwned"
    step = out / "checkpoints" / "step_1"
    for name in ("rank0.pt", "train_state.pt"):
        original = (step / name).read_bytes()
        torch.save({"rng": _Planted(marker), "stream": {}, "model": {}}, step / name)
        again = _train(tiny_qwen25_dir, out, 2)
        assert again.returncode != 0 and not marker.exists()
        assert "InputError" in again.stderr and "refusing to load" in again.stderr
        assert "step_2" not in os.listdir(out / "checkpoints")  # nothing trained past it
        (step / name).write_bytes(original)


@pytest.mark.integration
def test_kill_during_save_resumes_from_the_last_complete_checkpoint(
    tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    killed = _train(tiny_qwen25_dir, out, 4, kill_at=2)
    assert killed.returncode == -9
    assert _steps(out) == [1, 2]  # step 2 was logged, its checkpoint torn
    assert latest_checkpoint(out) == out / "checkpoints" / "step_1"
    resumed = _train(tiny_qwen25_dir, out, 4)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _steps(out) == [1, 2, 3, 4]  # before: 1, 2, 2, 3, 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_4"]
    assert latest_checkpoint(out) == out / "checkpoints" / "step_4"
