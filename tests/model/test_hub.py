"""``--model`` from a hub id in the local Hugging Face cache, and the explicit download's errors.

The cache is a real huggingface_hub cache layout in a temp dir (refs/main -> a snapshot holding
the tiny checkpoint), read by the real client with ``local_files_only``; nothing touches the
network (the download is exercised only on its offline error path).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscovlm.cli import app, main
from rscovlm.errors import InputError
from rscovlm.model.hub import RELEASED_MODELS, download_model, resolve_model

pytest.importorskip("huggingface_hub")

COMMIT = "0" * 40


def _cache_with(tmp_path: Path, repo_id: str, checkpoint: Path) -> Path:
    """A HF hub cache holding ``checkpoint`` as the main snapshot of ``repo_id``."""
    cache = tmp_path / "hub"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(checkpoint, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def _use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Point the hub client at ``cache``, offline (it reads both settings at import)."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_cached_hub_id_resolves_offline_and_runs(
    tiny_qwen25_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id = "Qingyun/RSCoVLM-7B-2512"
    cache = _cache_with(tmp_path, repo_id, tiny_qwen25_dir)
    _use_cache(monkeypatch, cache)
    assert resolve_model(repo_id) == cache / f"models--{repo_id.replace('/', '--')}" / (
        "snapshots/" + COMMIT
    )
    assert resolve_model(tiny_qwen25_dir) == tiny_qwen25_dir  # a directory is itself
    result = CliRunner().invoke(
        app, ["chat", "--model", repo_id, "hi", "--max-new-tokens", "2"], prog_name="rscovlm"
    )
    assert result.exit_code == 0, result.output


def test_uncached_id_and_bad_path_say_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_cache(monkeypatch, tmp_path / "empty")
    with pytest.raises(InputError, match="rscovlm model download Qingyun/RSCoVLM-det-7B-2512"):
        resolve_model("Qingyun/RSCoVLM-det-7B-2512")
    missing = tmp_path / "missing" / "model"
    assert resolve_model(str(missing)) == missing  # the loader says what is wrong with it
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "--model", str(tmp_path / "nope" / "x"), "hi"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_download_offline_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read at import: set it as HF does
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        download_model("Qingyun/RSCoVLM-7B-2512", tmp_path / "m")
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "download", "Qingyun/RSCoVLM-7B-2512", "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rscovlm: error: cannot download") and err.count("\n") == 1
    assert not (tmp_path / "m").exists()
    with pytest.raises(InputError, match="not a hub id"):
        download_model("../../etc")


def test_model_tiny_builds_what_chat_runs(
    tmp_path: Path, tokenizer_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rscovlm.model.manifest import checkpoint_band
    from rscovlm.model.tiny import build_tiny_model

    monkeypatch.setenv("RSCOVLM_CACHE_DIR", str(tokenizer_cache))
    out = tmp_path / "tiny"
    result = CliRunner().invoke(app, ["model", "tiny", "--out", str(out)], prog_name="rscovlm")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and (out / "config.json").is_file()
    # the one builder: the CLI's model is the fixtures' model (same recipe -> reused, not rebuilt)
    mtime = (out / "config.json").stat().st_mtime_ns
    assert build_tiny_model("qwen2_5_vl", out, seed=0) == out
    assert (out / "config.json").stat().st_mtime_ns == mtime
    assert checkpoint_band(out).max_pixels > 0
    chat = CliRunner().invoke(
        app, ["chat", "--model", str(out), "hi", "--max-new-tokens", "2"], prog_name="rscovlm"
    )
    assert chat.exit_code == 0, chat.output
    assert "generating: at most 2 new tokens" in chat.output  # the cap, said when it starts
    listed = CliRunner().invoke(app, ["model", "ls"], prog_name="rscovlm").output
    assert all(repo_id in listed for repo_id in RELEASED_MODELS)


def test_model_help_examples_name_real_ids() -> None:
    text = " ".join(CliRunner().invoke(app, ["chat", "-h"], prog_name="rscovlm").output.split())
    assert "RSCoVLM-7B-2512" in text and "hub id in the local HF cache" in text
    assert "16,384" in text  # the default token cap is shown
