"""The benchmarks of the evaluation suite: a closed registry of readers of each benchmark's
RELEASED files, with their scorers and aggregates (see :mod:`rscovlm.eval.benchmarks.base`).

Importing this package registers every family module.
"""

# the family modules: each registers its benchmarks on import
from rscovlm.eval.benchmarks import (
    captions,  # noqa: F401
    segmentation,  # noqa: F401
    teochat,  # noqa: F401
    uhr,  # noqa: F401
    vqa,  # noqa: F401
)
from rscovlm.eval.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    EvalSample,
    get_benchmark,
    list_benchmarks,
    register,
    sample_id,
)

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "EvalSample",
    "get_benchmark",
    "list_benchmarks",
    "register",
    "sample_id",
]
