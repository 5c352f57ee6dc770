"""The report's charts as inline SVG strings: no plotting library, no script, no URL.

A chart is drawn from numbers only; every label that reaches the SVG (class names come from
benchmark files, which are data) goes through :func:`html.escape`, so a chart cannot carry
markup into the page. Values are printed in full in each element's ``<title>`` (the tooltip),
the bars themselves only show proportions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "confusion_svg", "histogram_svg", "pr_svg"]

_FONT = 'font-family="sans-serif" font-size="11"'
_BLUE, _GREY, _RED = "#3b6fb6", "#d0d0d0", "#c0392b"


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">'
        + "".join(body)
        + "</svg>"
    )


def bar_chart(title: str, items: Sequence[tuple[str, float | None]], scale: float = 1.0) -> str:
    """Horizontal bars, one per ``(label, value)``; ``scale`` is the value of a full bar (1 for
    fractions, 100 for percentages). A ``None`` value is an empty row marked ``-``."""
    label_w, bar_w, row_h = 190, 320, 18
    height = 24 + row_h * len(items)
    body = [f'<text x="4" y="14" {_FONT} font-weight="bold">{escape(title)}</text>']
    for k, (label, value) in enumerate(items):
        y = 22 + k * row_h
        short = label if len(label) <= 30 else label[:29] + "…"
        body.append(
            f'<text x="{label_w - 6}" y="{y + 12}" {_FONT} text-anchor="end">{escape(short)}'
            f"<title>{escape(label)}</title></text>"
        )
        body.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="12" fill="#f2f2f2"/>')
        if value is None or not math.isfinite(value):
            body.append(f'<text x="{label_w + 4}" y="{y + 12}" {_FONT}>-</text>')
            continue
        w = max(0.0, min(1.0, value / scale if scale else 0.0)) * bar_w
        body.append(
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{w:.1f}" height="12" '
            f'fill="{_BLUE}"><title>{escape(label)}: {value!r}</title></rect>'
        )
        body.append(f'<text x="{label_w + bar_w + 4}" y="{y + 12}" {_FONT}>{value!r}</text>')
    return _svg(label_w + bar_w + 150, height, body, title)


def confusion_svg(rows: Sequence[str], cols: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """The confusion matrix as a heat map: rows = true class, columns = predicted (the last
    column is the unparsed answers); each cell's count is in its tooltip and, if it fits, on it.
    Shading is by the row's share so small classes read as clearly as big ones."""
    cell = 16 if len(cols) > 20 else 24
    left, top = 150, 130
    body = []
    for j, name in enumerate(cols):
        x = left + j * cell + cell / 2
        body.append(
            f'<text transform="translate({x:.1f},{top - 4}) rotate(-60)" {_FONT}>'
            f"{escape(name[:22])}<title>{escape(name)}</title></text>"
        )
    for i, (name, row) in enumerate(zip(rows, matrix, strict=False)):
        y = top + i * cell
        total = sum(row) or 1
        body.append(
            f'<text x="{left - 4}" y="{y + cell * 0.7:.1f}" {_FONT} text-anchor="end">'
            f"{escape(name[:24])}<title>{escape(name)}</title></text>"
        )
        for j, count in enumerate(row):
            share = count / total
            color = _GREY if count == 0 else (_BLUE if i == j else _RED)
            opacity = 0.15 if count == 0 else 0.25 + 0.75 * share
            body.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{color}" fill-opacity="{opacity:.3f}"><title>true {escape(name)}, '
                f"predicted {escape(cols[j])}: {count}</title></rect>"
            )
            if count and cell >= 24:
                body.append(
                    f'<text x="{left + j * cell + cell / 2:.1f}" y="{y + cell * 0.65:.1f}" '
                    f'{_FONT} font-size="9" text-anchor="middle">{count}</text>'
                )
    width = left + cell * len(cols) + 90  # room for the last rotated column labels
    height = top + cell * len(rows) + 10
    return _svg(width, height, body, "confusion matrix")


def histogram_svg(title: str, values: Sequence[float], bins: int = 10) -> str:
    """A histogram of values in [0, 1] (IoUs), ``bins`` equal bins; 1.0 falls in the last."""
    counts = [0] * bins
    for v in values:
        if math.isfinite(v):
            counts[min(bins - 1, max(0, int(v * bins)))] += 1
    w, h, left, bottom = 420, 180, 40, 30
    peak = max(counts) or 1
    bw = (w - left - 10) / bins
    body = [f'<text x="4" y="14" {_FONT} font-weight="bold">{escape(title)}</text>']
    for k, c in enumerate(counts):
        bh = (h - bottom - 24) * c / peak
        x = left + k * bw
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{h - bottom - bh:.1f}" width="{bw - 2:.1f}" '
            f'height="{bh:.1f}" fill="{_BLUE}"><title>[{k / bins:.1f}, {(k + 1) / bins:.1f}'
            f"{']' if k == bins - 1 else ')'}: {c}</title></rect>"
        )
        body.append(
            f'<text x="{x + bw / 2:.1f}" y="{h - bottom - bh - 2:.1f}" {_FONT} font-size="9" '
            f'text-anchor="middle">{c}</text>'
        )
    for k in range(0, bins + 1, 2):
        body.append(
            f'<text x="{left + k * bw:.1f}" y="{h - bottom + 14}" {_FONT} text-anchor="middle">'
            f"{k / bins:.1f}</text>"
        )
    body.append(f'<text x="{w / 2}" y="{h - 4}" {_FONT} text-anchor="middle">IoU</text>')
    return _svg(w, h, body, title)


def pr_svg(title: str, points: dict[str, tuple[float | None, float | None]]) -> str:
    """Precision (y) against recall (x) per class. A class with one point (unit scores: a
    VLM's boxes carry no confidence) is drawn as its point with the step down to recall 0 —
    the whole PR curve such a prediction set has."""
    size, left, bottom = 300, 40, 36
    plot = size - left - 10

    def xy(r: float, p: float) -> tuple[float, float]:
        return left + r * plot, size - bottom - p * plot

    x0, y0 = xy(0, 0)
    x1, y1 = xy(1, 1)
    body = [
        f'<text x="4" y="14" {_FONT} font-weight="bold">{escape(title)}</text>',
        f'<rect x="{x0}" y="{y1}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>',
        f'<text x="{(x0 + x1) / 2}" y="{size - 6}" {_FONT} text-anchor="middle">recall</text>',
        f'<text transform="translate(12,{(y0 + y1) / 2}) rotate(-90)" {_FONT} '
        'text-anchor="middle">precision</text>',
    ]
    for k, (name, (recall, precision)) in enumerate(sorted(points.items())):
        if recall is None or precision is None:
            continue
        hue = (k * 47) % 360
        px, py = xy(recall, precision)
        color = f"hsl({hue},60%,40%)"
        body.append(
            f'<polyline points="{x0},{py:.1f} {px:.1f},{py:.1f} {px:.1f},{y0}" fill="none" '
            f'stroke="{color}" stroke-opacity="0.5"/>'
        )
        body.append(
            f'<circle class="pr" cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{color}"><title>'
            f"{escape(name)}: recall {recall!r}, precision {precision!r}</title></circle>"
        )
    return _svg(size, size, body, title)
