"""The ``rscovlm`` command line.

Each command is a thin adapter: parse options, call one library function, print a short summary.
Heavy imports happen inside the commands so ``rscovlm --help`` stays instant on a core install.
Errors of the project's family (:class:`rscovlm.errors.RscovlmError`) become one line on stderr
and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from rscovlm import __version__
from rscovlm.errors import RscovlmError

app = typer.Typer(
    name="rscovlm",
    help="Co-train and evaluate vision-language models for remote-sensing multi-task learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

eval_app = typer.Typer(help="Evaluate predictions against ground truth.", no_args_is_help=True)
data_app = typer.Typer(help="Build, inspect and export training data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(data_app, name="data")

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
) -> None:
    """rscovlm: data curation, co-training, inference and evaluation of RS VLMs.

    Examples:
      rscovlm demo
      rscovlm eval det --gt labelTxt/ --pred preds.jsonl --pred-format jsonl
    """
    _state["debug"] = debug


@app.command()
def version() -> None:
    """Print the installed rscovlm version."""
    typer.echo(__version__)


# --- eval commands (rscovlm eval ...) -------------------------------------------------------


# --- data commands (rscovlm data ...) -------------------------------------------------------


# --- demo -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script; maps project errors to one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="rscovlm")
    except RscovlmError as exc:
        if _state["debug"] or "--debug" in args:
            raise
        typer.echo(f"rscovlm: error: {exc}", err=True)
        sys.exit(2)
