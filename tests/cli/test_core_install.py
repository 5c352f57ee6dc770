"""A core install (no torch, transformers, tokenizers, peft, accelerate, deepspeed, vllm).

One subprocess hides the model stack behind a ``sys.meta_path`` finder that refuses to import
it, then runs the real command line in-process case after case: every ``--help`` works, the
torch-free commands (``demo --quick``, ``data build``, ``data export``) run, and every command
that needs a model ends in ONE line naming the extra to install, exit code 2, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from PIL import Image

from rscovlm.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HIDDEN = ("torch", "transformers", "tokenizers", "peft", "accelerate", "deepspeed", "vllm")

_RUNNER = r"""
import contextlib, io, json, sys, traceback

HIDDEN = set(json.loads(sys.argv[1]))

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, Hide())
from rscovlm.cli import main

results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
            code = "raised"
    results.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue()})
leaked = sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN)
print(json.dumps({"results": results, "leaked": leaked}))
"""


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            found += _command_paths(sub, (*path, name))
    return found


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case's result on the hidden stack, keyed by its argv joined with spaces."""
    tmp = tmp_path_factory.mktemp("core")
    image = tmp / "scene.png"
    Image.new("RGB", (320, 240), (90, 120, 60)).save(image)
    (tmp / "data").mkdir()
    recipe = {"root": "data", "sources": [{"name": "syn", "adapter": "synthetic",
              "options": {"n": 2, "size": 256}}]}  # fmt: skip
    (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
    helps = [[*p, "--help"] for p in _command_paths(typer.main.get_command(app))]
    model, img = str(tmp / "no_model"), str(image)
    needs_model = [
        ["train", "tiny_cpu", f"log.output_dir={tmp / 'run'}"],
        ["demo", "--workdir", str(tmp / "demo")],
        ["chat", "--model", model, "What is here?"],
        ["zoom", "--model", model, "--image", img, "What colour?"],
        ["detect", "--model", model, "--image", img, "--out", str(tmp / "det")],
        ["serve", "--model", model],
        ["chat", "--backend", "vllm", "--model", model, "What is here?"],
    ]
    works = [
        ["demo", "--quick"],
        ["data", "build", str(tmp / "r.yaml"), "--out", str(tmp / "built"), "--workers", "0"],
        ["data", "export", str(tmp / "built"), "--format", "swift", "--out", str(tmp / "exp")],
        ["train", "tiny_cpu", "--validate"],
    ]
    cases = helps + needs_model + works
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(HIDDEN), json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    by_argv = {" ".join(r["argv"]): r for r in report["results"]}
    return {
        "by_argv": by_argv,
        "leaked": report["leaked"],
        "helps": helps,
        "needs_model": needs_model,
        "works": works,
        "tmp": tmp,
    }


def test_nothing_of_the_stack_was_imported(core: dict[str, Any]) -> None:
    assert core["leaked"] == []


def test_every_help_works(core: dict[str, Any]) -> None:
    for argv in core["helps"]:
        result = core["by_argv"][" ".join(argv)]
        assert result["code"] == 0 and "Usage:" in result["out"], result


def test_model_commands_fail_in_one_line_naming_the_extra(core: dict[str, Any]) -> None:
    for argv in core["needs_model"]:
        result = core["by_argv"][" ".join(argv)]
        lines = result["err"].strip().splitlines()
        extra = "rscovlm[vllm]" if "vllm" in argv else "rscovlm[train]"
        assert result["code"] == 2 and len(lines) == 1, result
        assert lines[0].startswith("rscovlm: error: ") and extra in lines[0], result
    assert not (core["tmp"] / "demo").exists()  # the demo stopped before writing anything
    assert not (core["tmp"] / "run").exists()  # and so did the trainer


def test_core_commands_run(core: dict[str, Any]) -> None:
    for argv in core["works"]:
        result = core["by_argv"][" ".join(argv)]
        assert result["code"] == 0 and "Traceback" not in result["err"], result
    assert "SIMULATED" in core["by_argv"]["demo --quick"]["out"]
    assert (core["tmp"] / "exp" / "swift.jsonl").read_text().strip()
