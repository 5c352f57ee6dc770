"""Every command's ``--help`` ends with whole, copyable examples that its own parser accepts.

The examples are read from the rendered help (what a user copies), not from the source, and
each line is parsed by the command it names, through the real option declarations: a line that
click rewrapped or merged with the next one, a stale option name or an invalid choice fails.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rscovlm import __version__
from rscovlm.cli import app
from rscovlm.cli.app import COMMAND_ORDER
from rscovlm.cli.options import examples


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every visible command of the tree, groups included, with its path below the root."""
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            found += _walk(sub, (*path, name))
    return found


def _help(root: typer.Typer, path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(root, [*path, "--help"], prog_name="rscovlm")
    assert result.exit_code == 0, result.output
    return result.output


def _example_lines(help_text: str) -> list[str]:
    """The lines of the help's last paragraph when it is the ``Examples:`` block, else ``[]``.

    Text on the header line itself counts as a line: that is where a rewrapped block starts.
    """
    last = help_text.rstrip().split("\n\n")[-1].strip().splitlines()
    if not last or not last[0].strip().startswith("Examples:"):
        return []
    first = last[0].strip().removeprefix("Examples:").strip()
    return [line.strip() for line in [first, *last[1:]] if line.strip()]


def _parse_problem(root: Any, path: tuple[str, ...], line: str) -> str | None:
    """Why ``line`` is not a whole command line of the command at ``path`` (None: it is)."""
    tokens = shlex.split(line, comments=True)
    if "rscovlm" not in tokens:
        return f"not an rscovlm command line: {line!r}"
    args = tokens[tokens.index("rscovlm") + 1 :]
    if tuple(args[: len(path)]) != path:
        return f"example of another command: {line!r}"
    command, name = root, "rscovlm"
    while hasattr(command, "commands"):  # a group: descend to the subcommand named next
        if not args or args[0] not in command.commands:
            return f"no subcommand in {line!r}"
        name, command, args = f"{name} {args[0]}", command.commands[args[0]], args[1:]
    try:
        command.make_context(name, list(args))  # the command's own parser, no callback run
    except Exception as exc:  # click's usage errors: the line does not parse
        return f"{line!r}: {type(exc).__name__}: {exc}"
    return None


ROOT = typer.main.get_command(app)
COMMANDS = _walk(ROOT)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "root")
def test_help_ends_with_examples_that_parse(path: tuple[str, ...]) -> None:
    lines = _example_lines(_help(app, path))
    assert lines, f"`rscovlm {' '.join(path)} --help` has no Examples: block"
    problems = [p for line in lines if (p := _parse_problem(ROOT, path, line))]
    assert not problems, problems


def test_every_command_is_walked() -> None:
    leaves = {" ".join(p) for p, c in COMMANDS if not hasattr(c, "commands")}
    expected = {"chat", "zoom", "detect", "serve", "train", "demo", "version", "eval det"}
    expected |= {"eval merge", "data build", "data stats", "data export", "data zoom-build"}
    assert expected <= leaves


def test_a_rewrapped_example_is_caught() -> None:
    """The check is not vacuous: click rewraps a plain paragraph, merging the examples into one
    line that does not parse; the same lines through :func:`examples` stay whole and do."""
    planted = typer.Typer(rich_markup_mode=None)
    lines = ("rscovlm a --out first/", "rscovlm a --out second/")

    @planted.command("a", epilog="Examples:\n" + "\n".join(f"  {line}" for line in lines))
    def _a(out: str = typer.Option(..., "--out")) -> None:
        """Do a."""

    @planted.command("b", epilog=examples(*(line.replace(" a ", " b ") for line in lines)))
    def _b(out: str = typer.Option(..., "--out")) -> None:
        """Do b."""

    root = typer.main.get_command(planted)
    merged = _example_lines(_help(planted, ("a",)))
    assert len(merged) == 1 and _parse_problem(root, ("a",), merged[0]) is not None
    kept = _example_lines(_help(planted, ("b",)))
    assert len(kept) == 2 and all(_parse_problem(root, ("b",), line) is None for line in kept)


def test_root_lists_commands_in_order_and_has_version_and_h() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["-h"], prog_name="rscovlm")
    assert result.exit_code == 0
    listed = []
    in_commands = False
    for line in result.output.splitlines():
        if line.strip() == "Commands:":
            in_commands = True
        elif in_commands and line.startswith("  ") and not line.startswith("   "):
            listed.append(line.split()[0])
        elif in_commands and not line.strip():
            break
    assert listed == [name for name in COMMAND_ORDER if name in listed]
    assert listed[:4] == ["data", "train", "model", "chat"] and listed[-2:] == ["demo", "version"]
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == __version__
    assert runner.invoke(app, ["detect", "-h"]).exit_code == 0


@pytest.mark.parametrize(
    ("argv", "listed"),
    [
        (["detect", "--help"], "--backend <hf|vllm|openai|replay>"),
        (["data", "export", "--help"], "--box <quad|hbb|obb>"),
        (["chat", "--help"], "--family <qwen2_vl|qwen2_5_vl|qwen3_vl>"),
        (["data", "export", "--help"], "--family <qwen2_vl|qwen2_5_vl|qwen3_vl>"),
        (["eval", "det", "--help"], "--family <qwen2_vl|qwen2_5_vl|qwen3_vl>"),
        (["eval", "det", "--help"], "--metric <voc07|voc12>"),
        (["eval", "merge", "--help"], "--out DIR"),
    ],
)
def test_help_lists_the_choices(argv: list[str], listed: str) -> None:
    assert listed in CliRunner().invoke(app, argv).output


def test_every_command_takes_dash_h_and_the_root_takes_version() -> None:
    runner = CliRunner()
    root = typer.main.get_command(app)
    paths = [path for path, _ in _walk(root)]
    assert ("model", "tiny") in paths and ("model", "download") in paths
    for path in paths:
        short = runner.invoke(app, [*path, "-h"], prog_name="rscovlm")
        assert short.exit_code == 0 and short.output.startswith("Usage: rscovlm"), path
        assert short.output == _help(app, path), path  # -h is --help, not another page
    done = runner.invoke(app, ["--version"], prog_name="rscovlm")
    assert done.exit_code == 0 and done.output == f"{__version__}\n"


def test_the_help_shows_the_backends_default_token_cap() -> None:
    from rscovlm.cli.options import DEFAULT_MAX_NEW_TOKENS
    from rscovlm.model.backends.base import MAX_NEW_TOKENS_CAP

    assert DEFAULT_MAX_NEW_TOKENS == MAX_NEW_TOKENS_CAP
    text = " ".join(CliRunner().invoke(app, ["zoom", "-h"], prog_name="rscovlm").output.split())
    assert f"default: {MAX_NEW_TOKENS_CAP:,}" in text
