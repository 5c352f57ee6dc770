"""Progress of one worker: a rich bar with throughput and ETA on a terminal, plain periodic
lines otherwise (a SLURM log or a CI log gets one readable line every ``every`` seconds, never
a stream of carriage returns)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


class Progress:
    """Context manager; call :meth:`advance` after every batch."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        enabled: bool = True,
        every: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.every = every
        self.stream = stream or sys.stderr
        self.done = 0
        self.errors = 0
        self._start = time.perf_counter()
        self._last = self._start
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        self._start = self._last = time.perf_counter()
        if self.enabled and self.stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.2f} samples/s · {task.fields[errors]} errors"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, rate=0.0, errors=0)
        return self

    def rate(self) -> float:
        """Samples per second so far."""
        elapsed = time.perf_counter() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """One plain progress line."""
        rate = self.rate()
        left = self.total - self.done
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        return (
            f"{self.label}: {self.done}/{self.total} samples, {self.errors} errors, "
            f"{rate:.2f} samples/s, ETA {eta}"
        )

    def advance(self, n: int, errors: int = 0) -> None:
        self.done += n
        self.errors += errors
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, rate=self.rate(), errors=self.errors)
            return
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif self.enabled:
            print(self.line(), file=self.stream, flush=True)
