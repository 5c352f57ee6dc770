"""The benchmarks of the evaluation suite: a closed registry of readers of each benchmark's
RELEASED files, with their scorers and aggregates (see :mod:`rscovlm.eval.benchmarks.base`).

Importing this package registers every family module.
"""

# the family modules: each registers its benchmarks on import
from rscovlm.eval.benchmarks import (  # noqa: F401
    captions,
    classification,
    detection,
    grounding,
    segmentation,
    synthetic,
    teochat,
    uhr,
    vqa,
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
