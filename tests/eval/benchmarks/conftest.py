"""Benchmark fixtures written in each benchmark's RELEASED layout, in tmp, from the real
samples in ../shared/data/real where they exist (read, never copied into the project)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rscovlm.cli import main

Run = Callable[..., str]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """``rscovlm.cli.main(args)`` expecting exit ``code``: stdout on success, else stderr."""

    def run(*args: str, code: int = 0) -> str:
        exit_code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            exit_code = int(exc.code or 0)
        assert exit_code == code, capsys.readouterr()
        captured = capsys.readouterr()
        return captured.out if code == 0 else captured.err

    return run


@pytest.fixture(scope="session")
def dior_rsvg_val(real_data: Path) -> list[int]:
    """The first 40 indices of the official DIOR-RSVG val split."""
    return [int(v) for v in (real_data / "dior_rsvg/val.txt").read_text().split()[:40]]


@pytest.fixture(scope="session")
def class_lists(real_data: Path) -> dict[str, Any]:
    return json.loads((real_data / "scene_cls/class_lists.json").read_text())


@pytest.fixture(scope="session")
def earthdial(real_data: Path) -> Callable[[str], list[dict]]:
    def rows(name: str) -> list[dict]:
        path = real_data / f"model_outputs/earthdial_{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    return rows


def scene_csv(real_data: Path, name: str) -> list[dict[str, str]]:
    with (real_data / f"scene_cls/VT-RSBS_{name}.csv").open() as fh:
        return list(csv.DictReader(fh))
