"""The worker's rich bar on a terminal: throughput and ETA from one clock, redrawn after
batches. A rich Console with ``force_terminal=True`` writes into a buffer exactly what a TTY
would get; the clock is driven by the test, so the numbers are exact."""

from __future__ import annotations

import io
import re

from rich.console import Console

from rscovlm.eval.runner.progress import Progress


class Clock:
    """Seconds the test sets."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _screen(buffer: io.StringIO) -> str:
    """The text a terminal shows (control sequences dropped)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())


def test_rich_bar_shows_throughput_and_eta_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    clock = Clock()
    with Progress(100, "worker 1/4", console=console, clock=clock) as bar:
        assert "0/100" in _screen(buffer) and "ETA -:--:--" in _screen(buffer)  # no rate yet
        clock.now += 8.0
        bar.advance(20)  # 2.5 samples/s; 80 left: 32 s
        shown = _screen(buffer)
        assert "worker 1/4" in shown and "20/100" in shown
        assert "2.50 samples/s" in shown and "ETA 0:00:32" in shown
        clock.now += 0.01
        bar.advance(1)  # within the redraw interval: not drawn yet
        assert "21/100" not in _screen(buffer)
        clock.now += 71.99
        bar.advance(79, errors=3)  # the last batch is always drawn
    shown = _screen(buffer)
    assert "100/100" in shown and "1.25 samples/s" in shown and "3 errors" in shown
    assert "ETA 0:00:00" in shown
    assert "\x1b[" in buffer.getvalue()  # drawn as a live bar (cursor control), not lines


def test_no_bar_off_a_terminal_console() -> None:
    """A console that is not a terminal gets no bar (the plain lines go to the stream)."""
    buffer, stream = io.StringIO(), io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    with Progress(4, "worker 0/1", console=console, stream=stream, every=0.0) as bar:
        bar.advance(4)
    assert buffer.getvalue() == "" and "4/4 samples" in stream.getvalue()
