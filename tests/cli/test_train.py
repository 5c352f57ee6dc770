"""`rscovlm train`: shipped configs validate by name; bad configs exit 2 with one line; the
deepspeed launcher's `--local_rank` is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscovlm.cli import main


@pytest.mark.parametrize(
    ("name", "flags"),
    [("tiny_cpu", []), ("rscovlm_official", ["--schema-only"]), ("rscovlm_det", ["--schema-only"])],
)
def test_shipped_configs_validate_by_name(
    name: str, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # the 7B configs name a checkpoint that is not on this machine: only their schema is checked
    with pytest.raises(SystemExit) as exit_info:
        main(["train", name, "--validate", *flags])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"{name}: valid"


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["nope.yaml"], "'nope.yaml' is neither a file"), (["tiny_cpu", "optim.lr=abc"], "optim.lr")],
)
def test_bad_config_is_one_line_and_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *args, "--validate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["train", "tiny_cpu", "--local_rank=0", "--validate"],
        ["train", "tiny_cpu", "train.max_steps=2", "--local-rank", "1", "--validate"],
        [
            "--local_rank=1",
            "train",
            "tiny_cpu",
            "--validate",
        ],  # where the deepspeed launcher puts it
    ],
)
def test_local_rank_of_the_deepspeed_launcher_is_accepted(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == "tiny_cpu: valid"


def _train(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), out, err


@pytest.mark.integration
def test_run_folder_on_the_command_line(
    tiny_qwen25_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Start-up summary and dropped samples on screen; a changed lr refused with one line;
    --resume extends the run; --overwrite starts afresh with the old run moved aside."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: tiny\nroot: .\nsources:\n  - name: synthetic\n    adapter: synthetic\n"
        "    path: synthetic\n    classes: dota1.0\n    options: {n: 6, size: 256, seed: 0}\n",
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    base = [
        "tiny_cpu",
        f"model.path={tiny_qwen25_dir}",
        f"data.build_recipe={recipe}",
        f"data.built={tmp_path / 'data'}",
        f"log.output_dir={run_dir}",
        "log.progress=false",
        "train.per_device_batch_size=2",
        "train.global_batch_size=2",
        "train.max_length=200",  # the detection scenes (~520 tokens) do not fit
    ]
    code, out, err = _train([*base, "train.max_steps=2"], capsys)
    assert code == 0, err
    lines = err.splitlines()
    for line in (
        "data: 1 source, 34 samples per epoch",
        "  synthetic: 34 records, 34 samples per epoch (100.0%)",
        "batch: 2 per device × 1 accumulation × 1 rank = effective batch 2",
        "pixel band: 12,544 … 50,176 pixels (112² … 224²)",
        "max length: 200 tokens (longer samples: drop, never cut)",
        "steps: 2 (train.max_steps)",
        f"starting a new run in {run_dir}: 2 steps",
        "samples left out (not trained on):",
    ):
        assert line in lines, (line, err)
    assert any(line.startswith("model: ") and " trainable (100.0%)" in line for line in lines)
    said = [line for line in lines if line.startswith("dropped a sample of synthetic: over-long")]
    assert len(said) == 1  # said once when it first happens ...
    total = next(line for line in lines if line.startswith("  synthetic: ") and "drawn" in line)
    assert "over-long: longest" in total and "> train.max_length 200" in total  # ... summed here
    assert "trained 2 steps (now at step 2)" in out

    code, out, err = _train([*base, "train.max_steps=2", "optim.lr=5e-4"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "(optim.lr differ)" in err and "--resume" in err and "--overwrite" in err
    code, _, err = _train([*base, "--resume", "--overwrite"], capsys)
    assert code == 2 and "not both" in err

    code, out, err = _train([*base, "train.max_steps=3", "--resume"], capsys)
    assert code == 0, err
    assert "--resume: continuing with a changed config: train.max_steps 2 → 3" in err
    assert f"resuming from step 2 of 3 ({run_dir / 'checkpoints' / 'step_2'})" in err
    assert "trained 1 steps (now at step 3)" in out
    assert (run_dir / "config.1.json").is_file()

    code, out, err = _train([*base, "train.max_steps=1", "--overwrite"], capsys)
    assert code == 0, err
    assert f"was moved to {tmp_path / 'run.old-1'}" in err
    assert "trained 1 steps (now at step 1)" in out
    assert sorted(p.name for p in (tmp_path / "run.old-1").iterdir()) == [
        "checkpoints",
        "config.1.json",
        "config.json",
        "final",
        "log.jsonl",
    ]
