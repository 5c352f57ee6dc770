"""The ``rscovlm.model`` package re-exports its API without importing a model stack."""

from __future__ import annotations

import subprocess
import sys


def test_api_resolves_without_torch() -> None:
    code = (
        "import sys, rscovlm.model as m\n"
        "missing = [n for n in m.__all__ if not hasattr(m, n)]\n"
        "heavy = {'torch', 'transformers', 'tokenizers', 'tiktoken', 'vllm'} & set(sys.modules)\n"
        "import rscovlm.model.serve as s\n"
        "print(missing, sorted(heavy), type(s).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] [] module"


def test_detection_api_is_exported() -> None:
    import rscovlm.model as m

    for name in ("detect_image", "write_outputs", "ReplayBackend", "ZoomAgent", "make_backend"):
        assert name in m.__all__ and callable(getattr(m, name))
