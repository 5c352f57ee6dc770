"""The command line's frame: help, version, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rscovlm import __version__
from rscovlm.cli import app, main
from rscovlm.errors import InputError


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == __version__


def test_help_lists_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rscovlm", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "version" in result.stdout


def test_project_errors_become_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    @app.command("_fail_for_test", hidden=True)
    def _fail() -> None:
        raise InputError("bad thing in file.txt line 3")

    with pytest.raises(SystemExit) as exit_info:
        main(["_fail_for_test"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "rscovlm: error: bad thing in file.txt line 3"
    assert "Traceback" not in err
