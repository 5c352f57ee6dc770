"""Two workers launched by ``torchrun --nproc_per_node 2`` (CPU, no process group, no collective)
split a run disjointly by the environment's RANK/WORLD_SIZE, and the merge equals one worker's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _torchrun() -> str | None:
    beside = Path(sys.executable).with_name("torchrun")
    return str(beside) if beside.is_file() else shutil.which("torchrun")


@pytest.mark.skipif(_torchrun() is None, reason="torchrun is not installed")
def test_torchrun_two_workers_split_disjointly(synth: Any, kit: Any, tmp_path: Path) -> None:
    root, replay = synth(600)
    single = tmp_path / "single"
    assert kit.run(kit.run_args(root, replay, single)).returncode == 0
    run = tmp_path / "torchrun"
    cmd = [
        _torchrun(), "--standalone", "--nproc_per_node", "2", str(kit.script),
        *kit.run_args(root, replay, run, "--batch-size", "4"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=kit.env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "worker 0/2 (torchrun)" in proc.stdout and "worker 1/2 (torchrun)" in proc.stdout

    files = sorted((run / "predictions").glob("*.jsonl"))
    assert len(files) == 2
    ids = [{line["id"] for line in kit.read_jsonl(f)} for f in files]
    assert ids[0] and ids[1] and not ids[0] & ids[1]  # disjoint, both worked
    assert len(ids[0]) + len(ids[1]) == 600
    assert kit.merged(run) == kit.merged(single)
