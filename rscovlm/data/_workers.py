"""Worker processes of the loader: run a job on mixture items out of process, results in order.

:class:`Workers` starts ``n`` processes, each with its own task queue, sharing one result
queue. :func:`in_order` keeps at most ``depth`` items in flight and hands the results back in
submission order, so the stream is the same whatever the number of workers. A job that raises
(a bug, not bad data: the job turns bad data into a skip itself) comes back as a
:class:`Failure` with its traceback and stops the stream with ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Failure", "Workers", "in_order"]


@dataclass(frozen=True)
class Failure:
    """A job raised in a worker; ``traceback`` is its formatted traceback."""

    traceback: str


def _worker_loop(job: Callable[[Any], Any], tasks: Any, results: Any, stop: Any) -> None:
    """A worker process: fetch ``(seq, item)`` tasks until ``None`` or the stop event."""
    while True:
        task = tasks.get()
        if task is None or stop.is_set():
            return
        seq, item = task
        try:
            result = job(item)
        except Exception:  # a bug, not bad data: hand the traceback to the parent
            result = Failure(traceback.format_exc())
        results.put((seq, result))


class Workers:
    """Worker processes with one task queue each and a shared result queue.

    Written out instead of ``multiprocessing.Pool`` so that closing a half-consumed stream
    never waits on ``Pool.terminate`` while a worker is still writing a large sample.
    """

    def __init__(self, context: str, n: int, job: Callable[[Any], Any]) -> None:
        ctx = multiprocessing.get_context(context)
        self.tasks = [ctx.Queue() for _ in range(n)]
        self.results = ctx.Queue()
        self.stop = ctx.Event()
        self.procs = [
            ctx.Process(target=_worker_loop, args=(job, q, self.results, self.stop), daemon=True)
            for q in self.tasks
        ]
        for proc in self.procs:
            proc.start()

    def submit(self, seq: int, item: Any) -> None:
        self.tasks[seq % len(self.tasks)].put((seq, item))

    def get(self) -> tuple[int, Any]:
        while True:
            try:
                return self.results.get(timeout=5.0)
            except queue.Empty:
                dead = [p.pid for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"loader worker(s) {dead} died") from None

    def close(self) -> None:
        self.stop.set()
        for q in self.tasks:
            q.put(None)
        deadline = time.monotonic() + 5.0
        # Drain results so no worker blocks flushing a sample nobody will read.
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self.results.get(timeout=0.05)
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for q in [*self.tasks, self.results]:
            q.cancel_join_thread()
            q.close()


def in_order(workers: Workers, items: Iterator[Any], depth: int) -> Iterator[Any]:
    """The job's result for each of ``items``, in order, with at most ``depth`` in flight.

    Raises:
        RuntimeError: A job failed in a worker (its traceback in the message), or a worker died.
    """
    done: dict[int, Any] = {}
    submitted = handed = 0
    exhausted = False
    while True:
        while not exhausted and submitted - handed < depth:
            item = next(items, None)
            if item is None:
                exhausted = True
            else:
                workers.submit(submitted, item)
                submitted += 1
        if handed == submitted:
            return
        while handed not in done:
            seq, result = workers.get()
            done[seq] = result
        result = done.pop(handed)
        if isinstance(result, Failure):
            raise RuntimeError(f"loader worker failed:\n{result.traceback}")
        handed += 1
        yield result
