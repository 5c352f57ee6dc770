"""A test-only benchmark cheap enough for 10,000-sample runs, and a CLI entry that registers it.

``runner_synthetic`` reads ``ROOT/synthetic.jsonl`` (``{"qid", "question", "answer"}`` lines),
asks each question text-only and scores exact match. Worker subprocesses (``kill -9`` tests,
``torchrun``) run ``python tests/eval/runner/synthetic.py eval run ...``: the file registers the
benchmark, then hands the arguments to the real command line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from rscovlm.data.tasks import question_messages
from rscovlm.eval.benchmarks.base import BENCHMARKS, Benchmark, EvalSample, register
from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.eval.read_report import ReadReport

NAME = "runner_synthetic"
FILE = "synthetic.jsonl"


class Synthetic(Benchmark):
    name = NAME
    task = "vqa"
    metric = "acc"
    files = FILE

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        for line in (Path(root) / FILE).read_text().splitlines():
            rec = json.loads(line)
            msgs = question_messages(None, [rec["question"]])
            yield EvalSample.build(NAME, rec["qid"], msgs, rec["answer"])

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        ok = float(output.strip() == sample.reference)
        return SampleScore(ok, ok, bool(output.strip()), None if output.strip() else "empty")

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return build_report({"acc": scores}, scores, scale=100.0, n_resamples=50)


def ensure_registered() -> None:
    if NAME not in BENCHMARKS:
        register(NAME, Synthetic)


def write_benchmark(root: Path, n: int) -> Path:
    """``root/synthetic.jsonl`` with ``n`` questions."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"qid": i, "question": f"What is {i} + 1?", "answer": str(i + 1)})
        for i in range(n)
    ]
    (root / FILE).write_text("\n".join(lines) + "\n")
    return root


def write_replay(root: Path, path: Path, wrong_every: int = 7) -> Path:
    """A replay file answering every sample (every ``wrong_every``-th one wrongly)."""
    ensure_registered()
    report = ReadReport(NAME)
    out = []
    for k, s in enumerate(Synthetic().samples(root, report)):
        answer = "wrong" if k % wrong_every == 0 else s.reference
        out.append(json.dumps({"id": s.id, "output": answer}))
    path.write_text("\n".join(out) + "\n")
    return path


def _slow_replay(delay: float) -> None:
    """Make every replay ``generate`` call take ``delay`` seconds more, so a test can kill a
    worker in the middle of its run rather than after it."""
    import time

    from rscovlm.model.backends.replay import ReplayBackend

    generate = ReplayBackend.generate

    def slow(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(delay)
        return generate(self, *args, **kwargs)

    ReplayBackend.generate = slow  # type: ignore[method-assign]


if __name__ == "__main__":
    import os

    ensure_registered()
    if os.environ.get("SYNTHETIC_REPLAY_DELAY"):
        _slow_replay(float(os.environ["SYNTHETIC_REPLAY_DELAY"]))
    from rscovlm.cli import main

    sys.argv[0] = "rscovlm"
    main()
