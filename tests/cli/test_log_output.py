"""Output for logs: when stdout is not a terminal, no line is hard-wrapped, none ends in spaces,
and the hub's/transformers' progress bars are switched off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_piped_demo_quick_is_one_record_per_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "", "TERM": "dumb"}
    env.pop("COLUMNS")
    done = subprocess.run(
        [sys.executable, "-m", "rscovlm", "demo", "--quick"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert not [x for x in lines if x != x.rstrip()], "trailing spaces"
    # the opening sentence is one line, not cut at 80 columns
    assert lines[0].startswith("rscovlm demo (seed 0)") and len(lines[0]) > 150
    assert lines[0].endswith("(rscovlm/eval/demo_sim.py).")
    assert "\n\n\n" not in done.stdout


def test_progress_bars_are_off_when_stderr_is_not_a_terminal() -> None:
    code = (
        "import os, rscovlm.cli as c; c.quiet_progress_bars(); "
        "print(os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**env, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.stdout.strip() == "1"


def test_a_long_generation_says_it_is_still_working(capsys) -> None:
    import time

    from rscovlm.cli.options import still_working

    with still_working("chat", every=0.05):
        time.sleep(0.3)
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("chat: still working (") for line in err)
    with still_working("chat", every=60):
        pass
    assert capsys.readouterr().err == ""  # a quick answer prints nothing extra
