"""The README's command blocks run as written, from an empty working directory, and write
nothing inside the package (issue 16: a README example once generated 6.4 MB into it).

Every command line of every ```bash block is either run (in-process through the real entry
point, from a fresh temporary working directory, one block's lines in order so later lines use
earlier outputs) or matched by :data:`SKIP`, which says why it cannot run here; a line that is
neither fails, so a new README command has to be classified. Stale SKIP entries fail too.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

import pytest

import rscovlm
from rscovlm.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
PACKAGE = Path(rscovlm.__file__).resolve().parent

SKIP: dict[str, str] = {
    "make ": "builds a venv; `make demo` is `rscovlm demo` (tests/demo), `make test` is this suite",
    "pip ": "installs packages (network)",
    "rscovlm eval ": "needs your ground truth and predictions (tests/eval runs it on real data)",
    "rscovlm model download": "network; its offline error path is in tests/model/test_hub.py",
    "rscovlm model tiny --out tiny_model --family": "a second tiny model (tests/model: families)",
    "rscovlm chat --model Qingyun/": "needs the released 7B checkpoint in the HF cache",
    "rscovlm detect --backend vllm": "needs GPUs and vLLM",
    'ls "$PWD"/scenes/': "part of the multi-GPU vLLM recipe",
    "for i in": "part of the multi-GPU vLLM recipe",
    "CUDA_VISIBLE_DEVICES": "part of the multi-GPU vLLM recipe",
    "done; wait": "part of the multi-GPU vLLM recipe",
    "rscovlm train tiny_cpu train.": "trains for minutes on the CPU; tests/cli/test_train.py "
    "runs the same new run / refusal / --resume / --overwrite sequence on the tiny model",
    "torchrun ": "needs GPUs and the released checkpoint (tests/eval/runner runs torchrun on CPU)",
    "srun ": "needs a SLURM cluster",
}
"""Line prefix -> why that README line is not run here (a line runs unless a prefix matches)."""


def _blocks(text: str) -> list[list[str]]:
    """The command lines of each ```bash block: continuations joined, comments and blank lines
    dropped."""
    blocks = []
    for body in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        joined = body.replace("\\\n", " ")
        lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


def _skip_reason(line: str) -> str | None:
    return next((reason for prefix, reason in SKIP.items() if line.startswith(prefix)), None)


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (bytecode caches aside) with its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_every_readme_line_is_run_or_skipped_with_a_reason() -> None:
    lines = [line for block in _blocks(README.read_text(encoding="utf-8")) for line in block]
    assert len(lines) > 10
    unclassified = [x for x in lines if not x.startswith("rscovlm ") and _skip_reason(x) is None]
    assert not unclassified, f"README lines neither run nor skipped: {unclassified}"
    used = {p for p in SKIP if any(_skip_reason(x) == SKIP[p] for x in lines)}
    assert used == set(SKIP), f"stale SKIP entries: {set(SKIP) - used}"


def test_readme_commands_run_from_an_empty_directory_and_leave_the_package_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tokenizer_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("torch")
    monkeypatch.setenv("RSCOVLM_CACHE_DIR", str(tokenizer_cache))
    before = _tree(PACKAGE)
    ran = []
    for k, block in enumerate(_blocks(README.read_text(encoding="utf-8"))):
        work = tmp_path / f"block{k}"
        work.mkdir()
        monkeypatch.chdir(work)
        for line in block:
            if _skip_reason(line) is not None:
                continue
            with pytest.raises(SystemExit) as exit_info:
                main(shlex.split(line)[1:])
            out = capsys.readouterr()
            assert exit_info.value.code in (0, None), f"{line}\n{out.out}\n{out.err}"
            ran.append(line)
    assert _tree(PACKAGE) == before, "a README command wrote inside the package"
    names = {shlex.split(line)[1] for line in ran}
    assert {"demo", "config", "data", "model", "chat"} <= names, ran
