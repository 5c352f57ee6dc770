"""Progress of one worker: a rich bar with throughput and ETA on a terminal, plain periodic
lines otherwise (a SLURM log or a CI log gets one readable line every ``every`` seconds, never
a stream of carriage returns).

Both show the same two numbers, computed here from one clock: throughput is samples done over
time since the start (an honest average over batches of very different lengths, where rich's
own speed estimate tracks only the last few), and the ETA is what is left at that rate. The bar
is redrawn after a batch at most ``refresh`` times a second, from the worker's thread: no
refresh thread, so a worker that is killed leaves nothing behind, and a test can drive the
clock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Progress"]


def _eta(seconds: float | None) -> str:
    """``H:MM:SS`` (``-:--:--`` while there is no rate yet), as rich prints durations."""
    return "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))


class Progress:
    """Context manager; call :meth:`advance` after every batch.

    Args:
        total: Samples this worker will run.
        label: The bar's (and each line's) name, e.g. ``worker 0/4``.
        enabled: Off: nothing is printed (``--no-progress``).
        every: Seconds between plain lines (not a terminal).
        stream: Where plain lines go (default stderr); a bar, too, when it is a terminal.
        console: The rich console of the bar (default: one on ``stream`` when that is a TTY).
            A bar is drawn when this console is a terminal (``force_terminal=True`` makes one).
        clock: Seconds, monotonic (default :func:`time.perf_counter`).
        refresh: Bar redraws per second at most.
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        enabled: bool = True,
        every: float = 10.0,
        stream: TextIO | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.perf_counter,
        refresh: float = 4.0,
    ) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.every = every
        self.stream = stream or sys.stderr
        self.console = console
        self.clock = clock
        self.refresh = refresh
        self.done = 0
        self.errors = 0
        self._start = self._last = self._drawn = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        self._start = self._last = self._drawn = self.clock()
        if not self.enabled:
            return self
        console = self.console
        if console is None and self.stream.isatty():
            from rich.console import Console

            console = Console(file=self.stream)
        if console is not None and console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "{task.fields[rate]:.2f} samples/s · {task.fields[errors]} errors · "
                    "ETA {task.fields[eta]}"
                ),
                console=console,
                auto_refresh=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                self.label, total=self.total, rate=0.0, errors=0, eta=_eta(None)
            )
        return self

    def rate(self) -> float:
        """Samples per second so far."""
        elapsed = self.clock() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at :meth:`rate`, or ``None`` before the first sample is done."""
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 else None

    def line(self) -> str:
        """One plain progress line."""
        eta = self.eta()
        return (
            f"{self.label}: {self.done}/{self.total} samples, {self.errors} errors, "
            f"{self.rate():.2f} samples/s, ETA {'?' if eta is None else f'{eta:.0f}s'}"
        )

    def advance(self, n: int, errors: int = 0) -> None:
        self.done += n
        self.errors += errors
        if not self.enabled:
            return
        now = self.clock()
        if self._bar is not None:
            draw = now - self._drawn >= 1.0 / self.refresh or self.done >= self.total
            if draw:
                self._drawn = now
            fields = {"rate": self.rate(), "errors": self.errors, "eta": _eta(self.eta())}
            self._bar.update(self._task, advance=n, refresh=draw, **fields)
            return
        if now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.__exit__(*exc)
        elif self.enabled:
            print(self.line(), file=self.stream, flush=True)
