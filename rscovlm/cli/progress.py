"""Progress of long commands: a rich bar on a terminal, plain lines with rate and ETA otherwise.

A job piped to a log file or run by a scheduler used to show nothing for minutes (41 s of
silence on 225 patches): rich's bar is invisible when stderr is not a terminal. Off a terminal,
:func:`progress_reporter` prints one line per update at most every ``interval`` seconds (and
always the first and the last), e.g. ``P0001: patches 16/225 (7%), 1.9/s, ETA 1m50s``; the
format stays the same line after line, so ``grep | awk`` can follow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

__all__ = ["format_duration", "progress_reporter"]

Update = Callable[[int, int], None]
"""``update(done, total)``: what the pipelines' ``progress=`` callbacks are given."""


def format_duration(seconds: float) -> str:
    """``59s``, ``1m50s``, ``2h03m``: short, and the same width class line after line.

    Examples:
        >>> format_duration(59.4), format_duration(110), format_duration(7380)
        ('59s', '1m50s', '2h03m')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class _Lines:
    """Plain progress lines (what :func:`progress_reporter` gives off a terminal)."""

    def __init__(self, console: Console, label: str, unit: str, interval: float) -> None:
        self.console, self.label, self.unit, self.interval = console, label, unit, interval
        self.start = time.monotonic()
        self.last: float | None = None
        self.last_done = -1

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        final = done >= total
        due = self.last is None or now - self.last >= self.interval
        if done == self.last_done or not (final or due):
            return
        self.last, self.last_done = now, done
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        line = f"{self.label}: {self.unit} {done}/{total} ({100 * done // max(total, 1)}%)"
        line += f", {rate:.2f}/s"
        if final:
            line += f", done in {format_duration(elapsed)}"
        elif rate > 0:
            line += f", ETA {format_duration((total - done) / rate)}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress_reporter(
    console: Console, label: str, unit: str = "patches", *, interval: float = 10.0
) -> Iterator[Update]:
    """An ``update(done, total)`` callback for the duration of the block.

    On a terminal: a transient rich bar with count, rate and time remaining. Otherwise: plain
    lines (see the module docstring), at most one per ``interval`` seconds plus the last.
    """
    if not console.is_terminal:
        yield _Lines(console, label, unit, interval)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{label} {unit}", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
