"""Rotated IoU matrix: ``rscovlm.geometry.quad_iou_matrix`` against a per-pair shapely loop.

Both run in the same process on the same random rotated boxes (a 1024 x 1024 image, long sides
8-120 px, short sides 4-60 px, uniform angles, seeded). The baseline is the straightforward
code one writes first: a Python loop over all pairs computing
``Polygon(a).intersection(Polygon(b)).area`` and the union from the two areas. Its polygons are
built before the clock starts, which favours the baseline. To keep the run short the loop is
timed on the first ``--rows`` rows against all M columns and scaled by N / rows (the rows are
independent and identically distributed, so the per-row cost carries over); the printout says
so. ``--rows`` equal to ``--n`` times the whole loop instead. Values are checked to agree to
1e-9 on the measured rows.

Usage: ``python benchmarks/iou.py [--n 2000] [--rows 100] [--seed 0] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from shapely.geometry import Polygon

from rscovlm.geometry import _repair, obb_to_quad, quad_iou_matrix


def random_quads(rng: np.random.Generator, n: int, size: float = 1024.0) -> np.ndarray:
    """``n`` random rotated boxes inside a ``size`` x ``size`` image, as quads ``(n, 4, 2)``."""
    obb = np.column_stack(
        [
            rng.uniform(0, size, n),
            rng.uniform(0, size, n),
            rng.uniform(8, 120, n),
            rng.uniform(4, 60, n),
            rng.uniform(-90, 90, n),
        ]
    )
    return obb_to_quad(obb)


def loop_iou(rows: list[Polygon], cols: list[Polygon]) -> np.ndarray:
    """The baseline: one shapely intersection per pair, in Python."""
    out = np.zeros((len(rows), len(cols)))
    for r, a in enumerate(rows):
        for c, b in enumerate(cols):
            inter = a.intersection(b).area
            out[r, c] = inter / (a.area + b.area - inter)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="boxes on each side (N = M)")
    parser.add_argument("--rows", type=int, default=500, help="rows timed for the loop (N: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many matrix runs")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    a, b = random_quads(rng, args.n), random_quads(rng, args.n)
    rows = min(args.rows, args.n)

    quad_iou_matrix(a[:10], b[:10])  # warm-up (imports, first STRtree)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        matrix = quad_iou_matrix(a, b)
        times.append(time.perf_counter() - start)
    t_vec = min(times)

    polys_a, polys_b = [Polygon(q) for q in a[:rows]], [Polygon(q) for q in b]
    start = time.perf_counter()
    reference = loop_iou(polys_a, polys_b)
    t_loop_measured = time.perf_counter() - start
    t_loop = t_loop_measured * args.n / rows

    err = float(np.abs(matrix[:rows] - reference).max())
    overlapping = int((matrix > 0).sum())
    print(
        f"boxes: {args.n} x {args.n} random rotated boxes in a 1024x1024 image (seed {args.seed})"
    )
    print(f"overlapping pairs: {overlapping} of {args.n * args.n} ({overlapping / args.n**2:.3%})")
    convex = int(_repair(a).convex.sum() + _repair(b).convex.sum())  # the rest go to shapely
    print(f"path: {convex} of {2 * args.n} quads strictly convex -> numpy clipping, rest shapely")
    print(f"quad_iou_matrix (numpy convex, else shapely): {t_vec:.3f} s (best of {args.repeat})")
    if rows < args.n:
        print(
            f"per-pair shapely loop: {t_loop_measured:.2f} s measured on {rows} x {args.n} pairs, "
            f"extrapolated x{args.n / rows:g} to {t_loop:.1f} s for the full matrix"
        )
    else:
        print(f"per-pair shapely loop: {t_loop:.2f} s measured on the full matrix")
    print(f"max |difference| on the measured rows: {err:.1e}")
    print(f"speed-up: {t_loop / t_vec:.1f}x (per-pair loop / quad_iou_matrix)")
    if err > 1e-9:
        raise SystemExit("results disagree")


if __name__ == "__main__":
    main()
