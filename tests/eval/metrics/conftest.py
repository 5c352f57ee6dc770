"""Fixtures of the scorer tests: the real EarthDial outputs and a seeded fuzz corpus."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

N_FUZZ = 20_000


@pytest.fixture(scope="session")
def model_outputs(real_data: Path) -> Path:
    """The real EarthDial outputs next to their ground truth (read-only)."""
    return real_data / "model_outputs"


@pytest.fixture(scope="session")
def earthdial(model_outputs: Path):
    """``earthdial(name)``: the rows of ``earthdial_{name}.jsonl``."""

    def read(name: str) -> list[dict]:
        with (model_outputs / f"earthdial_{name}.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    return read


def _fuzz_one(rng: random.Random) -> str:
    kind = rng.randrange(14)
    if kind == 0:
        return ""
    if kind == 1:  # random unicode, lone surrogates and controls included
        return "".join(chr(rng.randrange(0, 0x10FFFF)) for _ in range(rng.randrange(1, 40)))
    if kind == 2:  # huge numbers
        big = str(rng.randrange(1, 10)) + "".join(rng.choice("0123456789") for _ in range(399))
        return rng.choice(
            [big, f"{big},{big},{big},{big} car", f"[{big}, 0, 1, 1]", f"-{big}", f"0.{big}"]
        )
    if kind == 3:
        return rng.choice(["nan", "inf", "-inf", "NaN,NaN,1,2 car", "[inf, 0, 1e309, 2]", "1e400"])
    if kind == 4:  # deep brackets
        depth = rng.randrange(1, 3000)
        return "[" * depth + "1,2,3,4" + "]" * rng.randrange(0, depth + 1)
    if kind == 5:  # plain boxes, odd values
        nums = [
            str(rng.choice([0, 1, -3, 7, 99, 100, 1000, 10**6]))
            for _ in range(rng.choice([3, 4, 5, 8, 9]))
        ]
        return ",".join(nums) + rng.choice([" car", "", "\n", " the big one\nsecond line"])
    if kind == 6:  # json-ish
        return rng.choice(
            [
                '```json\n[{"bbox_2d": [1, 2, 3]}]\n```',
                '```json\n[{"bbox_2d": "x"}]\n```',
                '```json\n{"a": [',
                '[{"bbox_2d": [0.1, 0.2, 0.3, 0.4], "label": "x"}]',
                "```json\n[]\n```",
                '{"bbox_2d": [1, 2, 3, 4]}',
            ]
        )
    if kind == 7:  # letters and phrases
        return rng.choice(["A", "(B)", "c.", "E)", "The answer is", "A or B", "ABCDE", "(((", "F"])
    if kind == 8:  # GeoChat 5-tuples, with degenerate values
        vals = [rng.choice([0, 1, 50, 100, -5, 360, 10**9]) for _ in range(5)]
        return "".join(f"[{vals}]" for _ in range(rng.randrange(1, 4)))
    if kind == 9:  # RLE-ish
        return "<seg>" + ";".join(f"{rng.randrange(3)}*{rng.randrange(10**8)}" for _ in range(3))
    if kind == 10:  # numbers and words
        return rng.choice(["twenty-one", "zero", "0", "0.0", "3 cars and 4", ".5", "-0", "１２"])
    if kind == 11:  # think / tool call wrappers
        return (
            "<think>"
            + "x" * rng.randrange(100)
            + "</think>"
            + rng.choice(["", "yes", "<tool_call>"])
        )
    if kind == 12:  # long junk
        return "|||" * rng.randrange(1, 2000)
    return " ".join(
        rng.choice(["yes", "no", "not", "red", ",", "and", "Port", "12"]) for _ in range(5)
    )


@pytest.fixture(scope="session")
def fuzz_outputs() -> list[str]:
    """20,000 seeded odd model outputs (the same on every machine)."""
    rng = random.Random(20251121)
    return [_fuzz_one(rng) for _ in range(N_FUZZ)]
