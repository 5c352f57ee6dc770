"""``rscovlm config ls|cp|validate``, and the commands every shipped config's header shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import rscovlm.data.mixture_config
import rscovlm.data.recipe
import rscovlm.train.config  # noqa: F401  (the kinds the command line validates)
from rscovlm import configs
from rscovlm.cli import main

ALL_SHIPPED = [(kind, name) for kind in configs.KINDS for name in configs.shipped(kind)]
WITH_HEADER = [(k, n) for k, n in ALL_SHIPPED if configs.shipped(k)[n].suffix == ".yaml"]
# Commands that read what an earlier command of the same header built (nothing is built here).
AFTER_A_BUILD = (("data", "stats"),)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _rscovlm_args(command: str) -> list[str]:
    """The arguments after ``rscovlm`` of a header command, placeholders filled in."""
    words = shlex.split(re.sub(r"<[^>]*>", "PLACEHOLDER", command), comments=True)
    if words[0] == "torchrun":
        words = words[words.index("-m") + 1 :]
    assert words[0] == "rscovlm", command
    return words[1:]


@pytest.mark.parametrize(("kind", "name"), ALL_SHIPPED)
def test_every_shipped_config_validates(
    kind: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = configs.shipped(kind)[name]
    label = configs.KINDS[kind].label
    assert _run(["config", "validate", name, "--kind", kind], capsys) == (
        0,
        f"OK: {label} {path}\n",
        "",
    )
    # By path, without --kind: the kind is inferred from the file.
    assert _run(["config", "validate", str(path)], capsys)[1] == f"OK: {label} {path}\n"


@pytest.mark.parametrize(("kind", "name"), WITH_HEADER)
def test_header_commands_run(
    kind: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = configs.header_commands(configs.shipped(kind)[name])
    assert commands, f"the header of {kind} {name} shows no command"
    monkeypatch.chdir(tmp_path)
    ran = 0
    for command in commands:
        args = _rscovlm_args(command)
        if tuple(args[:2]) in AFTER_A_BUILD:
            continue
        if args[0] == "train":
            args += ["--validate", "--schema-only"]  # the 7B checkpoints are not on this machine
        elif args[:2] == ["data", "build"]:
            args.append("--validate")
        else:
            assert args[0] == "config", f"no way to check {command!r} without running it"
        code, out, err = _run(args, capsys)
        assert (code, err) == (0, ""), f"{command}: {err}"
        assert out.strip().endswith("valid") or out.startswith(("OK: ", "copied "))
        ran += 1
    assert ran


def test_ls_lists_every_kind_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["config", "ls"], capsys)
    assert code == 0
    for kind, name in ALL_SHIPPED:
        description = configs.describe(configs.shipped(kind)[name], kind)
        assert re.search(rf"^  {name} +{re.escape(description)}$", out, re.M), name
    assert "deepspeed (configs/deepspeed/):" in out and "ZeRO stage 3" in out
    code, out, _ = _run(["config", "ls", "train"], capsys)
    assert code == 0 and "tiny_cpu" in out and "synthetic_demo" not in out
    code, _, err = _run(["config", "ls", "trian"], capsys)
    assert code == 2 and "'trian' is not one of 'recipe', 'mixture'" in err


def test_cp_copies_refuses_to_overwrite_and_the_copy_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = configs.shipped("train")["tiny_cpu"]
    code, out, _ = _run(["config", "cp", "tiny_cpu", "my.yaml"], capsys)
    assert code == 0 and out.strip() == "copied train config tiny_cpu to my.yaml"
    assert Path("my.yaml").read_bytes() == shipped.read_bytes()
    Path("my.yaml").write_text("edited", encoding="utf-8")
    code, _, err = _run(["config", "cp", "tiny_cpu", "my.yaml"], capsys)
    assert code == 2 and err == "rscovlm: error: my.yaml exists; pass --force to overwrite it\n"
    assert Path("my.yaml").read_text(encoding="utf-8") == "edited"
    assert _run(["config", "cp", "tiny_cpu", "my.yaml", "--force"], capsys)[0] == 0
    assert _run(["train", "my.yaml", "train.max_steps=2", "--validate"], capsys)[1] == (
        "my.yaml: valid\n"
    )
    Path("copies").mkdir()
    code, out, _ = _run(["config", "cp", "rscovlm_official", "copies", "--kind", "mixture"], capsys)
    assert code == 0 and Path("copies/rscovlm_official.yaml").is_file()
    code, _, err = _run(["config", "cp", "rscovlm_official", "x.yaml"], capsys)
    assert code == 2 and "give --kind" in err and not Path("x.yaml").exists()
    code, _, err = _run(["config", "cp", "tiny_gpu", "x.yaml", "--kind", "train"], capsys)
    assert code == 2 and "no shipped train config 'tiny_gpu' (shipped: rscovlm_det" in err


TRAIN = "model: {path: 'tiny:qwen2_5_vl'}\ndata: {mixture: {datasets: [a]}}\nlog: {output_dir: r}\n"
RECIPE = "sources: [{name: a, adapter: dota, clases: x}]\n"


@pytest.mark.parametrize(
    ("text", "ref", "message"),
    [
        (TRAIN + "optim: {lrr: 1}", "cfg.yaml", r"cfg\.yaml: optim\.lrr: unknown key; did you "),
        (TRAIN + "train: {max_steps: x}", "cfg.yaml", r"cfg\.yaml: train\.max_steps: .*'x'\)$"),
        (RECIPE, "cfg.yaml", r"recipe .*cfg\.yaml: sources\.0\.clases: .*'classes'\?$"),
        ("- model\n", "cfg.yaml", r"cfg\.yaml: \(top level\): expected a mapping of keys"),
        (None, "absent.yaml", r"'absent\.yaml' is neither a file nor the name of a shipped"),
        (None, "tiny_gpu", r"'tiny_gpu' is neither a file nor the name of a shipped config$"),
    ],
)
def test_validate_errors_are_one_line_and_exit_2(
    text: str | None,
    ref: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    if text is not None:
        Path(ref).write_text(text, encoding="utf-8")
    code, out, err = _run(["config", "validate", ref], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_validate_with_a_kind_names_the_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["config", "validate", "nope.yaml", "--kind", "train"], capsys)
    assert code == 2
    assert err.strip() == (
        "rscovlm: error: train config 'nope.yaml' is neither a file nor a shipped name "
        "(shipped: rscovlm_det, rscovlm_official, tiny_cpu)"
    )
