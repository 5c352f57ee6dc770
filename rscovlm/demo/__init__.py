"""``rscovlm demo``: orchestration only, over the public APIs of every floor below.

It lives on its own floor because it runs everything — data build, co-training, inference,
evaluation — and nothing else may depend on it.
"""

from rscovlm.demo.run import DemoResult, FullDemoResult, run_demo, run_full_demo

__all__ = ["DemoResult", "FullDemoResult", "run_demo", "run_full_demo"]
