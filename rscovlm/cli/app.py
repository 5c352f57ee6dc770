"""The Typer apps every command module registers on, and the process-wide ``--debug`` flag.

Kept apart from the command modules so each of them imports only this (no module of the
command line imports another's commands).
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

from rscovlm import __version__

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
config_app = typer.Typer(
    help="List, copy out and validate the shipped configs.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")

state = {"debug": False}


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
    state["debug"] = debug


@app.command()
def version() -> None:
    """Print the installed rscovlm version."""
    typer.echo(__version__)


def choice(option: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` if allowed, else a one-line :class:`InputError` naming the option."""
    from rscovlm.errors import InputError

    if value not in allowed:
        raise InputError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value
