"""The C fast path of the bulk readers reads exactly what the line-by-line readers read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.sources.dota import read_dota_columns, read_dota_folder
from rscovlm.formats import columns_fast
from rscovlm.formats.results.task1 import parse_task1_line, read_task1

pytest.importorskip("pyarrow")

GOOD = "P0001 0.5 0 0 10 0 10 10 0 10\nP0002 0.25 1.5 2 3e1 2 30 40 1.5 40\n"

#: Each breaks the fast path in its own way; the slow reader must name the line.
DIRTY = {
    "blank line": GOOD + "\nP0003 0.1 0 0 1 0 1 1 0 1\n",
    "trailing blank": GOOD + "\n",
    "short line": GOOD + "P0003 0.1 0 0\n",
    "double space": GOOD + "P0003  0.1 0 0 1 0 1 1 0 1\n",
    "leading space": " " + GOOD,
    "trailing space": GOOD + "P0003 0.1 0 0 1 0 1 1 0 1 \n",
    "tab": GOOD + "P0003\t0.1 0 0 1 0 1 1 0 1\n",
    "not a number": GOOD + "P0003 x 0 0 1 0 1 1 0 1\n",
    "nan": GOOD + "P0003 nan 0 0 1 0 1 1 0 1\n",
    "inf": GOOD + "P0003 0.1 inf 0 1 0 1 1 0 1\n",
    "empty field null": GOOD + "P0003 NA 0 0 1 0 1 1 0 1\n",
    "unicode space id": GOOD + "P0003\u00a0x 0.1 0 0 1 0 1 1 0 1\n",
    "crlf": GOOD.replace("\n", "\r\n"),
    "cr only": GOOD.replace("\n", "\r"),
    "bad utf8": GOOD,  # bytes patched below
    "quote": GOOD + 'P"3 0.1 0 0 1 0 1 1 0 1\n',
}


def _slow(path: Path) -> tuple[list, list]:
    """What the per-line parser makes of the file: (line, parsed) and (line, reason)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    good, bad = [], []
    for k, line in enumerate(text.splitlines(), start=1):
        parsed = parse_task1_line(line)
        if isinstance(parsed, str):
            bad.append((k, parsed))
        elif parsed is not None:
            good.append((k, parsed[0], parsed[1], parsed[2]))
    return good, bad


@pytest.mark.parametrize("case", sorted(DIRTY))
def test_task1_reader_agrees_with_the_line_parser(case: str, tmp_path: Path) -> None:
    path = tmp_path / "Task1_plane.txt"
    data = DIRTY[case].encode()
    if case == "bad utf8":
        data = data.replace(b"P0002", b"P\xff002")
    path.write_bytes(data)
    cols = read_task1(path)
    good, bad = _slow(path)
    assert list(cols.bad) == bad
    assert cols.position.tolist() == [g[0] for g in good]
    assert [cols.names[i] for i in cols.image] == [g[1] for g in good]
    assert cols.scores.tolist() == [g[2] for g in good]
    assert cols.quads.reshape(-1, 8).tolist() == [g[3] for g in good]
    assert cols.labels == ("plane",) or not good


def test_fast_table_refuses_what_it_cannot_read_exactly() -> None:
    for case, text in DIRTY.items():
        if case in ("crlf", "cr only", "bad utf8", "quote"):
            continue  # read, and read as str.split does (the test above)
        assert columns_fast.read_fast_table(text.encode(), "sfffffffff") is None, case
    floats, ((ids, image),) = columns_fast.read_fast_table(GOOD.encode(), "sfffffffff")
    assert ids == ["P0001", "P0002"] and image.tolist() == [0, 1]
    assert floats[3].tolist() == [10.0, 30.0]


def test_fast_floats_are_pythons_floats() -> None:
    """Correctly rounded parsing: the same doubles as ``float`` on awkward decimal texts."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1e4, 2000), rng.random(2000) * 1e-7])
    texts = [repr(v) for v in values.tolist()] + ["0.1", "2.675", "1e-320", "123456789012345678901"]
    data = "".join(f"{t}\n" for t in texts).encode()
    (col,), _ = columns_fast.read_fast_table(data, "f")
    assert col.tolist() == [float(t) for t in texts]


def _label_folder(tmp_path: Path, extra: str = "") -> list[Path]:
    root = tmp_path / "labelTxt"
    root.mkdir()
    (root / "A.txt").write_text(
        "imagesource:GoogleEarth\ngsd:0.5\n0 0 10 0 10 10 0 10 plane 0\n"
        "1 1 5 1 5 5 1 5 small-vehicle 1\n"
    )
    (root / "B.txt").write_text("imagesource:GoogleEarth\ngsd:bad\n")
    (root / "C.txt").write_text("2 2 8 2 8 8 2 8 ship 0\n3 3 9 3 9 9 3 9 plane 0" + extra)
    return sorted(root.glob("*.txt"))


def test_label_folder_fast_path_matches_the_per_file_reader(
    tmp_path: Path, dota_label_dir: Path
) -> None:
    for files in (_label_folder(tmp_path), sorted(dota_label_dir.glob("*.txt"))):
        folder = read_dota_folder(files)
        assert folder is not None
        per_file = [read_dota_columns(f) for f in files]
        assert folder.image.tolist() == [k for k, c in enumerate(per_file) for _ in range(len(c))]
        assert [folder.class_names[i] for i in folder.label] == [
            n for c in per_file for n in c.class_names
        ]
        assert np.array_equal(folder.quads, np.concatenate([c.quads for c in per_file]))
        assert folder.difficult.tolist() == [d for c in per_file for d in c.difficult.tolist()]
        assert [(k, n, why) for k, n, _, why in folder.header_bad] == [
            (k, n, why) for k, c in enumerate(per_file) for n, _, why in c.bad_lines
        ]


@pytest.mark.parametrize(
    "extra", ["\n\n", "\n4 4 5 4 5 5 4 5 plane\n", "\n4 4 5 4 5 5 4 5 plane 2\n", "\ngsd:1\n"]
)
def test_label_folder_with_an_odd_line_goes_file_by_file(tmp_path: Path, extra: str) -> None:
    assert read_dota_folder(_label_folder(tmp_path, extra)) is None
