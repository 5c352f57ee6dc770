"""The Typer apps every command module registers on, and the process-wide ``--debug`` flag.

Kept apart from the command modules so each of them imports only this and
:mod:`rscovlm.cli.options` (no module of the command line imports another's commands).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from rscovlm import __version__
from rscovlm.cli.options import examples

COMMAND_ORDER = (
    "data",
    "train",
    "model",
    "chat",
    "zoom",
    "detect",
    "serve",
    "eval",
    "config",
    "demo",
    "version",
)
"""``rscovlm --help`` lists the commands in the order of the work: data, training, running a
model, evaluation, configuration, the demo (commands not named here come last)."""

CONTEXT = {"help_option_names": ["-h", "--help"]}


class _OrderedGroup(TyperGroup):
    """Lists the commands in :data:`COMMAND_ORDER` instead of registration order (which
    follows the import order of the command modules)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: k for k, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


def _typer(**kwargs: Any) -> typer.Typer:
    """A Typer app with the house settings: plain help (no rich boxes), ``-h``, no completion."""
    return typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=CONTEXT,
        **kwargs,
    )


app = _typer(
    name="rscovlm",
    help="Co-train and evaluate vision-language models for remote-sensing multi-task learning.",
    cls=_OrderedGroup,
)
eval_app = _typer(
    help="Evaluate predictions against ground truth.",
    epilog=examples(
        "rscovlm eval det --gt labelTxt/ --pred results/ --pred-format task1",
        "rscovlm eval merge --pred patches/ --pred-format task1 --out merged/ --zip",
    ),
)
data_app = _typer(
    help="Build, inspect and export training data.",
    epilog=examples(
        "rscovlm data build synthetic_demo --out built/demo",
        "rscovlm data stats built/demo",
    ),
)
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
config_app = _typer(
    help="List, copy out and validate the shipped configs.",
    epilog=examples(
        "rscovlm config ls",
        "rscovlm config cp tiny_cpu my_run.yaml",
        "rscovlm config validate my_run.yaml",
    ),
)
app.add_typer(config_app, name="config")
model_app = _typer(
    help="Get a model: build the offline tiny one, or download a released checkpoint.",
    epilog=examples(
        "rscovlm model tiny --out tiny_model",
        "rscovlm model ls",
        "rscovlm model download Qingyun/RSCoVLM-7B-2512",
    ),
)
app.add_typer(model_app, name="model")

state = {"debug": False}

LOCAL_RANK = typer.Option(None, "--local_rank", "--local-rank", hidden=True)
"""The deepspeed launcher runs ``python -m rscovlm --local_rank=<r> train ...`` (its flag right
after the module, before the command); ``rscovlm train ... --local_rank <r>`` is accepted too.
The value is ignored: ``LOCAL_RANK`` in the environment, which every launcher sets, is what the
trainer reads."""


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback(
    epilog=examples(
        "rscovlm demo --quick",
        "rscovlm train tiny_cpu train.max_steps=20",
        "rscovlm eval det --gt labelTxt/ --pred preds.jsonl --pred-format jsonl",
    )
)
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
    local_rank: int | None = LOCAL_RANK,
) -> None:
    """rscovlm: data curation, co-training, inference and evaluation of RS VLMs."""
    state["debug"] = debug


@app.command(epilog=examples("rscovlm version"))
def version() -> None:
    """Print the installed rscovlm version."""
    typer.echo(__version__)
