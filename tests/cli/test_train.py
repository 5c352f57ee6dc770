"""`rscovlm train`: shipped configs validate by name; bad configs exit 2 with one line; the
deepspeed launcher's `--local_rank` is accepted."""

from __future__ import annotations

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
