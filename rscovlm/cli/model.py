"""``rscovlm model …``: get a model to run — the offline tiny one, or a released checkpoint.

Nothing else in rscovlm downloads: ``--model`` takes a directory or a hub id already in the
local Hugging Face cache, and ``model download`` is the one explicit, user-asked fetch.
"""

from __future__ import annotations

import typer

from rscovlm.cli.app import model_app
from rscovlm.cli.options import Family, examples, out_option


@model_app.command(
    "tiny",
    epilog=examples(
        "rscovlm model tiny --out tiny_model",
        "rscovlm model tiny --out tiny_qwen3 --family qwen3_vl --seed 1",
    ),
)
def model_tiny(
    out: str = out_option("Checkpoint folder (created; a finished one is reused)."),
    family: Family = typer.Option(Family.qwen2_5_vl, "--family", help="Architecture family."),
    seed: int = typer.Option(0, "--seed", help="Weight initialisation seed."),
) -> None:
    """Build the tiny random model offline (real Qwen vocabulary, random weights).

    It answers nonsense but runs every command that takes --model (chat, zoom, detect, serve)
    and trains in seconds on a CPU: the same model the tests and `train`'s tiny:<family> use.
    """
    from rscovlm.model.tiny import build_tiny_model

    path = build_tiny_model(family.value, out, seed=seed)
    typer.echo(f"wrote {path} ({family.value}, seed {seed}); try: rscovlm chat --model {path} hi")


@model_app.command(
    "download",
    epilog=examples(
        "rscovlm model download Qingyun/RSCoVLM-7B-2512",
        "rscovlm model download Qingyun/RSCoVLM-det-7B-2512 --out models/det-7b",
    ),
)
def model_download(
    repo_id: str = typer.Argument(..., metavar="ID", help="Hub id (owner/name)."),
    out: str | None = typer.Option(
        None, "--out", metavar="DIR", help="Folder (default: the Hugging Face cache)."
    ),
) -> None:
    """Fetch a checkpoint from the Hugging Face hub (needs internet; resumes if interrupted).

    Without --out it lands in the HF cache, and from then on --model ID works offline.
    """
    from rscovlm.model.hub import download_model

    path = download_model(repo_id, out)
    typer.echo(f"downloaded {repo_id} to {path}")


@model_app.command("ls", epilog=examples("rscovlm model ls"))
def model_ls() -> None:
    """List the released RSCoVLM checkpoints (hub ids) and what each is for."""
    from rscovlm.model.hub import RELEASED_MODELS

    for repo_id, what in RELEASED_MODELS.items():
        typer.echo(f"{repo_id}  {what}")
