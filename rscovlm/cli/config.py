"""``rscovlm config …``: list the shipped configs, copy one out to edit, validate any config."""

from __future__ import annotations

from enum import Enum

import typer

from rscovlm.cli.app import config_app
from rscovlm.cli.options import examples


class ConfigKind(str, Enum):
    """:data:`rscovlm.configs.KINDS` (a copy, so ``--help`` imports nothing; a test ties them)."""

    recipe = "recipe"
    mixture = "mixture"
    train = "train"
    deepspeed = "deepspeed"
    eval = "eval"


def _register_schemas() -> None:
    """Import the modules that own the config schemas, so every kind can be validated."""
    import rscovlm.data.mixture_config
    import rscovlm.data.recipe
    import rscovlm.train.config  # noqa: F401  (registers train and deepspeed)


def _kind_option(kind: ConfigKind | None) -> str | None:
    return None if kind is None else kind.value


@config_app.command("ls", epilog=examples("rscovlm config ls", "rscovlm config ls train"))
def config_ls(
    kind: ConfigKind | None = typer.Argument(None, help="The kind to list (default: all)."),
) -> None:
    """List the shipped configs by kind, each with the first line of its header."""
    from rscovlm.configs import KINDS, describe, shipped

    _register_schemas()
    kinds = [kind.value] if kind is not None else list(KINDS)
    for name in kinds:
        spec = KINDS[str(name)]
        files = shipped(spec.name)
        typer.echo(f"{spec.name} (configs/{spec.folder}/):")
        width = max((len(n) for n in files), default=0)
        for stem, path in files.items():
            typer.echo(f"  {stem:<{width}}  {describe(path, spec.name)}".rstrip())
        if not files:
            typer.echo("  (none shipped)")


@config_app.command(
    "cp",
    epilog=examples(
        "rscovlm config cp tiny_cpu my_run.yaml",
        "rscovlm config cp rscovlm_official configs/ --kind mixture",
    ),
)
def config_cp(
    name: str = typer.Argument(..., help="A shipped config's name (see `rscovlm config ls`)."),
    dest: str = typer.Argument(..., help="Target file, or a folder to copy it into."),
    kind: ConfigKind | None = typer.Option(
        None, "--kind", help="Its kind, when the name is in two."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing target."),
) -> None:
    """Copy a shipped config out to edit it; it then runs by its path like the shipped one."""
    from pathlib import Path

    from rscovlm.configs import KINDS, infer_kind, shipped
    from rscovlm.errors import InputError
    from rscovlm.files import atomic_write_bytes

    chosen = _kind_option(kind) or infer_kind(name)
    if Path(name).is_file() and kind is None:
        raise InputError(f"{name!r} is a file, not a shipped name; copy it with cp")
    spec = KINDS[chosen]
    files = shipped(chosen)
    stem = Path(name).stem if Path(name).suffix in spec.suffixes else name
    if stem not in files:
        known = ", ".join(files) or "none"
        raise InputError(f"no shipped {spec.label} {name!r} (shipped: {known})")
    source = files[stem]
    target = Path(dest).expanduser()
    if target.is_dir():
        target = target / source.name
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it")
    atomic_write_bytes(target, source.read_bytes())
    typer.echo(f"copied {spec.label} {stem} to {target}")


@config_app.command(
    "validate",
    epilog=examples(
        "rscovlm config validate my_run.yaml",
        "rscovlm config validate rscovlm_official --kind mixture",
    ),
)
def config_validate(
    ref: str = typer.Argument(..., help="A config file or a shipped config's name."),
    kind: ConfigKind | None = typer.Option(None, "--kind", help="Its kind (default: inferred)."),
) -> None:
    """Validate a config against its kind's schema: prints OK, or one line naming the key.

    The kind comes from the file's top-level keys (``sources``: recipe, ``datasets``: mixture,
    ``model``: train, ``zero_optimization``: deepspeed), else its folder."""
    from rscovlm.configs import KINDS, infer_kind, load, resolve

    _register_schemas()
    chosen = _kind_option(kind) or infer_kind(ref)
    load(chosen, ref)
    typer.echo(f"OK: {KINDS[chosen].label} {resolve(chosen, ref)}")
