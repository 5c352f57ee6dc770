"""``rscovlm demo``: the end-to-end demo."""

from __future__ import annotations

import typer

from rscovlm.cli.app import app
from rscovlm.cli.options import examples, make_console


@app.command(
    epilog=examples(
        "rscovlm demo",
        "rscovlm demo --quick",
        "rscovlm demo --workdir demo_run --steps 50 --seed 1",
    )
)
def demo(
    seed: int = typer.Option(0, "--seed", help="Seed of the data, the model and the simulation."),
    quick: bool = typer.Option(
        False, "--quick", help="Skip data, training and evaluation: the protocol table only."
    ),
    steps: int = typer.Option(300, "--steps", help="Training steps of 8 samples.", min=1),
    workdir: str | None = typer.Option(
        None,
        "--workdir",
        help="Work dir for data, run and evaluation (default: a temp dir, removed but for eval/).",
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary work dir."),
) -> None:
    """Co-train and evaluate a tiny model end to end, offline on the CPU (~2 min on 2 idle cores).

    \b
    1. data:  seeded synthetic aerial scenes and colour scenes, built with `data build`;
    2. train: the tiny Qwen2.5-VL (real vocabulary) co-trained on classification + VQA +
              detection with configs/train/tiny_cpu.yaml; the loss falls;
    3. eval:  held-out loss before/after, then the evaluation suite (`eval run`, `eval
              score`, `eval report --html`) on held-out synthetic benchmarks: scene
              classification, VQA, grounding, detection (mAP_nc, mF1), trained vs base;
    4. the fair detection protocol on SIMULATED predictions (a scored detector vs a
              score-less VLM): mAP, mAP with scores forced to 1, mAP_nc at tau*, mF1.
    Ends with a summary and the HTML report's path. The same seed gives the same numbers.
    --quick runs step 4 alone, in a few seconds, and needs no torch.
    """

    if quick:
        from rscovlm.demo.run import run_demo

        run_demo(seed=seed, console=make_console())
        return
    from dataclasses import replace

    from rscovlm.demo.e2e import DemoSettings
    from rscovlm.demo.run import run_full_demo

    settings = replace(DemoSettings(), steps=steps)
    run_full_demo(seed, make_console(), settings=settings, workdir=workdir, keep=keep)
