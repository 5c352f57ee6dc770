"""``rscovlm.tables``: whatever the width, every cell is printed whole."""

from __future__ import annotations

import re

import pytest

from rscovlm.tables import SECTION, format_table

COLUMNS = ["class", "GT", "diff", "det", "TP", "FP", "recall", "prec", "AP"]
ROWS = [
    ["ground-track-field", 123456, 7, 2345678, 120000, 2225678, "0.9719", "0.0512", "0.8312"],
    ["small-vehicle", 26, 0, 26, 26, 0, "1.0000", "1.0000", "1.0000"],
    SECTION,
    ["mAP", "", "", "", "", "", "", "", "0.9156"],
]


def _cells(rows: list) -> list[str]:
    return [str(c) for r in rows if r is not None for c in r if str(c)]


@pytest.mark.parametrize("width", [20, 40, 60, 80, 120, 200])
def test_every_cell_survives_every_width(width: int) -> None:
    text = format_table("mAP (voc07, IoU > 0.5, dota matching, ties=group)", COLUMNS, ROWS,
                        width=width)  # fmt: skip
    tokens = text.split()
    for cell in _cells(ROWS):
        assert cell in tokens, (cell, width, text)
    assert "…" not in text
    longest_word = max(len(c) for c in _cells(ROWS))
    assert all(len(line) <= max(width, longest_word + 12) for line in text.splitlines())


def test_layouts_grid_then_wrapped_then_long() -> None:
    wide = format_table(None, COLUMNS, ROWS, width=200).splitlines()
    assert len(wide) == 6 and wide[2].split()[0] == "ground-track-field"  # one line per row
    text = [["a", "many words that have to wrap at spaces 0.123456 12345"]]
    wrapped = format_table(None, ["stage", "result"], text, width=30).splitlines()
    assert all(len(line) <= 30 for line in wrapped) and len(wrapped) > 3
    assert "0.123456" in " ".join(wrapped).split()
    long = format_table(None, COLUMNS, ROWS, width=40)
    assert "class: ground-track-field" in long
    assert re.search(r"^\s+AP\s+0\.8312$", long, re.M)


def test_alignment_and_bad_rows() -> None:
    text = format_table(None, ["name", "n"], [["a", 5], ["bb", 123]], width=80)
    assert text.splitlines()[2:] == ["a       5", "bb    123"]
    left = format_table(None, ["name", "n"], [["a", 5]], align=["left", "left"], width=80)
    assert left.splitlines()[2] == "a     5"
    assert format_table(None, ["x"], [[None]]).splitlines()[2] == "-"
    with pytest.raises(ValueError, match="cells"):
        format_table(None, ["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="alignments"):
        format_table(None, ["a", "b"], [["1", "2"]], align=["left"])
