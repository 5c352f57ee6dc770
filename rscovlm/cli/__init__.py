"""The ``rscovlm`` command line (typer): one module per command group.

Each command is a thin adapter: parse options, call one library function, print a short summary.
The vocabulary the commands share (typed choices, the model option group, ``--out`` folders,
the ``Examples:`` blocks) is defined once in :mod:`rscovlm.cli.options`. Heavy imports happen
inside the commands so ``rscovlm --help`` stays instant, and works, on a core install.
Errors of the project's family (:class:`rscovlm.errors.RscovlmError`) become one line on stderr
and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from rscovlm.cli import (
    config,
    data,
    demo,
    eval,
    inference,
    model,
    report,
    train,
)  # register commands
from rscovlm.cli.app import app, state
from rscovlm.cli.options import quiet_progress_bars
from rscovlm.errors import RscovlmError

__all__ = ["app", "main"]
_COMMAND_MODULES = (config, data, demo, eval, inference, model, report, train)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script; maps project errors to one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    quiet_progress_bars()
    try:
        app(args=args, prog_name="rscovlm")
    except RscovlmError as exc:
        if state["debug"] or "--debug" in args:
            raise
        typer.echo(f"rscovlm: error: {exc}", err=True)
        sys.exit(2)
