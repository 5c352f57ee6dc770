"""Records round-trip through JSON lines; shards are written atomically; image helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.data.record import QA, Box, ImageRef, Instance, Record, Turn
from rscovlm.data.shards import iter_records, read_jsonl, write_jsonl
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.imaging import image_size, open_image_checked, read_window, verify_image


def _record() -> Record:
    return Record(
        id="P1",
        source="dota",
        task="detection",
        images=[ImageRef(path="a/b.png", width=10, height=20, timestamp="2020-01-01")],
        objects=[Instance(class_name="plane", box=Box.from_quad([0, 0, 4, 0, 4, 3, 0, 3]))],
        qa=[QA(question="q?", answer="a", category="count", evidence=[Box.from_hbb([1, 2, 3, 4])])],
        conversation=[
            Turn(role="user", text="<image> <box:0>", boxes=[Box.from_hbb([0, 0, 1, 1])])
        ],
        meta={"gsd": 0.5},
    )


def test_record_round_trip_and_helpers() -> None:
    rec = _record()
    again = Record.from_json(rec.to_json())
    assert again == rec and again.uid == "dota/P1"
    assert rec.objects[0].box.hbb == [0, 0, 4, 3] and rec.objects[0].box.oriented
    assert np.array_equal(Box.from_hbb([1, 2, 3, 4]).quad_array()[2], [3, 4])
    assert len(rec.boxes()) == 3 and ("qa[0].question", "q?") in rec.texts()
    with pytest.raises(ValueError, match="quad must be four"):
        Box(hbb=[0, 0, 1, 1], quad=[[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="unknown"):
        Record.model_validate({**rec.model_dump(), "unknown": 1})


def test_shards_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "shards" / "s-00000.jsonl"
    assert write_jsonl(out.with_name("s-00001.jsonl"), [_record()]) == 1
    assert [r.uid for r in iter_records(tmp_path, source="s")] == ["dota/P1"]
    assert write_jsonl(out, [_record(), {"plain": 1}]) == 2
    rows = list(read_jsonl(out))
    assert rows[0]["id"] == "P1" and rows[1] == {"plain": 1}

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(out, "new")
    assert json.loads(out.read_text().splitlines()[0])["id"] == "P1"
    assert sorted(p.name for p in out.parent.iterdir()) == ["s-00000.jsonl", "s-00001.jsonl"]
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        list(read_jsonl(tmp_path / "bad.jsonl"))


def test_image_helpers(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(np.arange(60 * 40 * 3, dtype=np.uint8).reshape(40, 60, 3)).save(path)
    assert image_size(path) == (60, 40) and verify_image(path) == (60, 40)
    assert open_image_checked(path).size == (60, 40)
    with pytest.raises(InputError, match="over the limit"):
        open_image_checked(path, max_pixels=100)
    window = read_window(path, 50, 30, 20, 20)
    assert window.shape == (20, 20, 3) and window[15:, :, :].max() == 0
    assert np.array_equal(window[:10, :10], np.asarray(Image.open(path))[30:40, 50:60])
    with pytest.raises(InputError, match="not found"):
        image_size(tmp_path / "none.png")
    (tmp_path / "t.png").write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot decode"):
        verify_image(tmp_path / "t.png")
