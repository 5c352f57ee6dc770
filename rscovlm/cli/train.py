"""``rscovlm train``: co-train a model from a config."""

from __future__ import annotations

import typer

from rscovlm.cli.app import LOCAL_RANK, app
from rscovlm.cli.options import examples


@app.command(
    epilog=examples(
        "rscovlm train tiny_cpu train.max_steps=20",
        "rscovlm train my_run.yaml optim.lr=1e-5 log.output_dir=runs/a",
        "rscovlm train tiny_cpu train.max_steps=120 --resume",
        "rscovlm train tiny_cpu --overwrite",
        "rscovlm train rscovlm_official --validate --schema-only",
        "torchrun --nproc_per_node 8 -m rscovlm train rscovlm_official",
        "deepspeed --num_gpus 8 --module rscovlm train rscovlm_official",
    )
)
def train(
    config: str = typer.Argument(..., help="A training YAML, or a shipped name (tiny_cpu, ...)."),
    overrides: list[str] = typer.Argument(None, help="Dotted key=value overrides."),
    validate_only: bool = typer.Option(
        False, "--validate", help="Check the config and the paths a run opens, then stop."
    ),
    schema_only: bool = typer.Option(
        False, "--schema-only", help="With --validate: skip the paths (check away from the data)."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run folder's checkpoint although the config changed (said on screen).",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Start at step 0; the folder's old run is moved aside to <output_dir>.old-<n>.",
    ),
    local_rank: int | None = LOCAL_RANK,
) -> None:
    """Co-train a model on a data mixture (one process; launch with torchrun for several).

    Checkpoints go to the config's log.output_dir. A rerun resumes the newest one when the
    config is the same in everything that changes training; otherwise it stops and names the
    fields that differ (--resume continues anyway, --overwrite starts afresh).
    """
    from rscovlm.train.config import check_run_paths, load_train_config

    if resume and overwrite:
        from rscovlm.errors import InputError

        raise InputError("give --resume or --overwrite, not both")
    cfg = load_train_config(config, list(overrides or []))
    if validate_only and not schema_only:
        check_run_paths(cfg)
    if validate_only:
        typer.echo(f"{config}: valid")
        return
    from rscovlm.train.trainer import run

    result = run(cfg, resume=resume, overwrite=overwrite)
    typer.echo(
        f"trained {len(result.losses)} steps (now at step {result.steps}); "
        f"checkpoints in {result.output_dir}"
    )
