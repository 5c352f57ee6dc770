"""Shared pieces of the runner tests: the synthetic benchmark (registered in this process and
runnable in worker subprocesses), its replay file, and a way to run worker subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "synthetic.py"
REPO = HERE.parents[2]

_spec = importlib.util.spec_from_file_location("runner_synthetic_helper", SCRIPT)
assert _spec is not None and _spec.loader is not None
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)
synthetic.ensure_registered()


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker subprocess: this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def worker_cmd(args: Sequence[str]) -> list[str]:
    """``python synthetic.py <rscovlm args>``: the real CLI with the synthetic benchmark."""
    return [sys.executable, str(SCRIPT), *args]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], tuple[Path, Path]]:
    """``synth(n)`` -> (benchmark root, replay file) of an ``n``-question synthetic benchmark."""
    cache: dict[int, tuple[Path, Path]] = {}

    def get(n: int) -> tuple[Path, Path]:
        if n not in cache:
            base = tmp_path_factory.mktemp(f"synth{n}")
            root = synthetic.write_benchmark(base / "bench", n)
            cache[n] = (root, synthetic.write_replay(root, base / "replay.jsonl"))
        return cache[n]

    return get


def run_args(root: Path, replay: Path, out: Path, *extra: str) -> list[str]:
    return [
        "eval", "run", synthetic.NAME, "--root", str(root), "--backend", "replay",
        "--model", str(replay), "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def merged(run: Path) -> dict[tuple[str, str], str]:
    """``{(bench, id): output}`` of a run's workers' files (through the runner's own scan)."""
    from rscovlm.eval.runner.store import scan_run

    return {k: v["output"] for k, v in scan_run(run).done.items()}


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_subprocess(args: Sequence[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        worker_cmd(args), env=worker_env(**env), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def kit() -> Any:
    """The helpers above, for the test modules (conftest cannot be imported under importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        synthetic=synthetic,
        script=SCRIPT,
        repo=REPO,
        env=worker_env,
        cmd=worker_cmd,
        run_args=run_args,
        merged=merged,
        read_jsonl=read_jsonl,
        run=run_subprocess,
    )
