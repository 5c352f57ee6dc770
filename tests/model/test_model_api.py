"""``rscovlm.model`` and ``rscovlm.pipelines`` re-export their API without importing a model
stack."""

from __future__ import annotations

import subprocess
import sys


def test_api_resolves_without_torch() -> None:
    code = (
        "import sys, rscovlm.model as m, rscovlm.pipelines as p\n"
        "missing = [n for x in (m, p) for n in x.__all__ if not hasattr(x, n)]\n"
        "heavy = {'torch', 'transformers', 'tokenizers', 'tiktoken', 'vllm'} & set(sys.modules)\n"
        "import rscovlm.pipelines.serve as s\n"
        "print(missing, sorted(heavy), type(s).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] [] module"


def test_detection_api_is_exported() -> None:
    import rscovlm.model as m
    import rscovlm.pipelines as p

    for name in ("ReplayBackend", "make_backend", "load_checkpoint"):
        assert name in m.__all__ and callable(getattr(m, name))
    for name in ("detect_image", "write_outputs", "ZoomAgent", "make_server"):
        assert name in p.__all__ and callable(getattr(p, name))
