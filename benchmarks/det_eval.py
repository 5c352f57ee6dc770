"""``rscovlm eval det``, the whole command, against the real DOTA devkit on the same files.

Workload (seeded): 500 images of 4000x4000 px, 100 ground-truth objects each (50 000, the 15
DOTA-v1.0 classes, ~4 % difficult), 200 000 detections (150 000 jittered copies of ground
truth, some with the wrong class, plus 50 000 random boxes). Written as a user has them: a
DOTA ``labelTxt`` folder, one ``Task1_<class>.txt`` per class, and the image-set file the
devkit wants.

Scores are made unique (and checked): with tied scores the devkit's ranking is whatever its
``np.argsort(-confidence)`` (quicksort, not stable) leaves, which is exactly where its AP is
arbitrary; rscovlm reads a tie as one group. With unique scores both rules are the same
curve, so the per-class AP must agree to rounding.

Reference: ``dotadevkit`` 1.3.0 from PyPI (``dotadevkit.evaluate.task1.voc_eval`` over the
classes, as its ``evaluate`` does, with its C++ polygon IoU), installed by this script in its
own venv (never in the project's): ``--no-deps`` because its requirements pull OpenCV and
matplotlib that Task1 evaluation never imports, ``numpy<1.24`` because it still uses
``np.bool``. Its extension ships the swig-generated wrapper, so building needs g++ only.

Timed, each as a subprocess, interpreter start included (fastest of ``--repeats``):

- the devkit's 15 ``voc_eval`` calls (reading the files included);
- ``rscovlm eval det --no-f1`` (AP alone) and ``rscovlm eval det`` (default: AP + mF1 +
  strict F1), both with ``--out`` so the per-class AP is read back from ``results.json``;
- second line: the in-process evaluator alone (``DetectionEvaluator`` on arrays in memory).

:func:`reference_map` (the protocol as a per-detection loop, the devkit's structure over
rscovlm's IoU) stays here as the oracle ``tests/eval/metrics/test_detection.py`` checks the
vectorised evaluator against.

Run: ``.venv/bin/python benchmarks/det_eval.py [--repeats 3] [--seed 0] [--devkit-venv DIR]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from rscovlm import geometry
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.detection import DetectionEvaluator
from rscovlm.formats.classes import DOTA_V1_0

N_IMAGES, GT_PER_IMAGE = 500, 100
N_MATCHED, N_RANDOM = 150_000, 50_000
CLASSES = list(DOTA_V1_0)
DEVKIT = "dotadevkit==1.3.0"
DEVKIT_DEPS = ("numpy<1.24", "shapely", "setuptools", "wheel")

# The devkit's own Task1 evaluation, class by class, as ``dotadevkit.evaluate.task1.evaluate``
# runs it (that function only prints); the APs go out as JSON.
DEVKIT_DRIVER = """
import json, sys
from dotadevkit.evaluate.task1 import voc_eval
from dotadevkit.misc.dota_utils import dota_classes
det, anno, images = sys.argv[1:4]
aps = {}
for c in dota_classes:
    aps[c] = float(voc_eval(det, anno, images, c, ovthresh=0.5, use_07_metric=True)[2])
print(json.dumps(aps))
"""


def make_workload(seed: int) -> tuple[DetBoxes, DetBoxes]:
    """The seeded ground truth and detections (scores unique)."""
    rng = np.random.default_rng(seed)
    n_classes = len(CLASSES)

    def obbs(n: int) -> np.ndarray:
        long = rng.uniform(12, 90, n)
        short = long * rng.uniform(0.3, 1, n)
        return np.stack([*rng.uniform(0, 4000, (2, n)), long, short, rng.uniform(-90, 90, n)], 1)

    n_gt = N_IMAGES * GT_PER_IMAGE
    g_obb = obbs(n_gt)
    g_img = np.repeat(np.arange(N_IMAGES), GT_PER_IMAGE)
    g_lab = rng.integers(0, n_classes, n_gt)
    gt = DetBoxes.create(
        g_img, g_lab, geometry.obb_to_quad(g_obb), difficult=rng.random(n_gt) < 0.04
    )
    src = rng.integers(0, n_gt, N_MATCHED)
    size = np.sqrt(g_obb[src, 2] * g_obb[src, 3])[:, None]
    p_obb = g_obb[src].copy()
    p_obb[:, :2] += rng.normal(0, 0.12, (N_MATCHED, 2)) * size
    p_obb[:, 2:4] *= rng.lognormal(0, 0.12, (N_MATCHED, 2))
    p_obb[:, 4] += rng.normal(0, 4, N_MATCHED)
    p_lab = np.where(
        rng.random(N_MATCHED) < 0.05, rng.integers(0, n_classes, N_MATCHED), g_lab[src]
    )
    n_pred = N_MATCHED + N_RANDOM
    scores = (rng.permutation(n_pred) + rng.random(n_pred) * 0.5 + 0.25) / n_pred
    pred = DetBoxes.create(
        np.concatenate([g_img[src], rng.integers(0, N_IMAGES, N_RANDOM)]),
        np.concatenate([p_lab, rng.integers(0, n_classes, N_RANDOM)]),
        geometry.obb_to_quad(np.concatenate([p_obb, obbs(N_RANDOM)])),
        scores=scores,
    )
    return gt, pred


def _voc07(rec: list[float], prec: list[float]) -> float:
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        above = [p for r, p in zip(rec, prec, strict=True) if r >= t]
        ap += (max(above) if above else 0.0) / 11.0
    return ap


def reference_map(gt: DetBoxes, pred: DetBoxes, n_classes: int, iou_thr: float = 0.5) -> float:
    """mAP (DOTA rule: IoU > t, VOC07, difficult ignored, ties in input order), loop style."""
    aps = []
    for c in range(n_classes):
        by_image: dict[int, list[int]] = defaultdict(list)
        for i in np.flatnonzero(gt.label == c).tolist():
            by_image[int(gt.image[i])].append(i)
        n_pos = int(np.sum((gt.label == c) & ~gt.difficult))
        dets = np.flatnonzero(pred.label == c)
        dets = dets[np.argsort(-pred.scores[dets], kind="stable")]
        taken: set[int] = set()
        tp, fp = [], []
        for d in dets.tolist():
            cands = by_image.get(int(pred.image[d]), [])
            t = f = 0
            if cands:
                ious = geometry.quad_iou_matrix(pred.quads[d : d + 1], gt.quads[cands])[0]
                j = int(np.argmax(ious))
                if ious[j] > iou_thr:
                    if not gt.difficult[cands[j]]:
                        t, f = (0, 1) if cands[j] in taken else (1, 0)
                        taken.add(cands[j])
                else:
                    f = 1
            else:
                f = 1
            tp.append(t)
            fp.append(f)
        if n_pos == 0:
            continue
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        rec = (ctp / n_pos).tolist()
        prec = (ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)).tolist()
        aps.append(_voc07(rec, prec))
    return float(np.mean(aps))


def write_files(gt: DetBoxes, pred: DetBoxes, root: Path) -> tuple[Path, Path, Path]:
    """``labelTxt/``, ``Task1/`` and the image-set file; numbers as shortest round-trip text,
    so both tools read the same floats."""
    labels, task1 = root / "labelTxt", root / "Task1"
    labels.mkdir(parents=True)
    task1.mkdir()
    names = [f"P{i:04d}" for i in range(N_IMAGES)]
    coords = gt.quads.reshape(-1, 8).tolist()
    per_image: list[list[str]] = [[] for _ in names]
    for i, c, q, d in zip(
        gt.image.tolist(), gt.label.tolist(), coords, gt.difficult.tolist(), strict=True
    ):
        per_image[i].append(" ".join(map(repr, q)) + f" {CLASSES[c]} {int(d)}\n")
    for name, lines in zip(names, per_image, strict=True):
        (labels / f"{name}.txt").write_text("".join(lines))
    pcoords = pred.quads.reshape(-1, 8).tolist()
    per_class: list[list[str]] = [[] for _ in CLASSES]
    for i, c, s, q in zip(
        pred.image.tolist(), pred.label.tolist(), pred.scores.tolist(), pcoords, strict=True
    ):
        per_class[c].append(f"{names[i]} {s!r} " + " ".join(map(repr, q)) + "\n")
    for name, lines in zip(CLASSES, per_class, strict=True):
        (task1 / f"Task1_{name}.txt").write_text("".join(lines))
    imageset = root / "images.txt"
    imageset.write_text("".join(f"{n}\n" for n in names))
    return labels, task1, imageset


def devkit_python(venv: Path) -> Path:
    """The devkit venv's interpreter, creating the venv (and building the devkit) if needed."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "from dotadevkit.evaluate import task1"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"building the DOTA devkit ({DEVKIT}) in {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *DEVKIT_DEPS], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", DEVKIT], check=True)
    subprocess.run(probe, check=True)
    return python


def _timed(repeats: int, cmd: list[str]) -> tuple[str, float]:
    """``(stdout, fastest wall time)`` of ``repeats`` runs (shared machines are noisy)."""
    best, out = float("inf"), ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - t0)
        out = done.stdout
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devkit-repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--devkit-venv", type=Path, default=Path(tempfile.gettempdir()) / "rscovlm-dotadevkit"
    )
    args = parser.parse_args()
    python = devkit_python(args.devkit_venv)
    gt, pred = make_workload(args.seed)
    assert len(np.unique(pred.scores)) == len(pred), "scores must be unique"
    with tempfile.TemporaryDirectory(prefix="rscovlm-det-bench-") as tmp:
        root = Path(tmp)
        labels, task1, imageset = write_files(gt, pred, root)
        print(
            f"workload: {N_IMAGES} images, {len(gt)} GT, {len(pred)} Task1 detections "
            f"(unique scores), seed {args.seed}; fastest of {args.devkit_repeats} devkit runs "
            f"and {args.repeats} rscovlm runs, each a subprocess (interpreter start included)"
        )
        det_pattern, anno_pattern = str(task1 / "Task1_{:s}.txt"), str(labels / "{:s}.txt")
        dev_cmd = [str(python), "-c", DEVKIT_DRIVER, det_pattern, anno_pattern, str(imageset)]
        dev_out, t_dev = _timed(args.devkit_repeats, dev_cmd)
        dev_ap = json.loads(dev_out.strip().splitlines()[-1])
        base = [sys.executable, "-m", "rscovlm", "eval", "det", "--gt", str(labels)]
        base += ["--pred", str(task1), "--pred-format", "task1", "--classes", "dota1.0"]
        _, t_ap = _timed(args.repeats, [*base, "--no-f1", "--out", str(root / "ap")])
        _, t_all = _timed(args.repeats, [*base, "--out", str(root / "all")])
        ours = json.loads((root / "ap" / "results.json").read_text())["per_class"]
        ours_all = json.loads((root / "all" / "results.json").read_text())
    delta = max(abs(ours[c]["ap"] - dev_ap[c]) for c in CLASSES)
    delta_all = max(abs(ours_all["per_class"][c]["ap"] - dev_ap[c]) for c in CLASSES)
    worst = max(CLASSES, key=lambda c: abs(ours[c]["ap"] - dev_ap[c]))
    dev_map = sum(dev_ap.values()) / len(CLASSES)
    print(f"DOTA devkit (dotadevkit 1.3.0, C++ polygon IoU): {t_dev:.2f} s, mAP {dev_map:.12f}")
    print(f"rscovlm eval det --no-f1: {t_ap:.2f} s -> {t_dev / t_ap:.1f}x the devkit")
    print(f"rscovlm eval det (AP + mF1 + strict F1): {t_all:.2f} s -> {t_dev / t_all:.1f}x")
    print(
        f"largest per-class |dAP| vs the devkit: {delta:.3g} ({worst}); with F1 on: "
        f"{delta_all:.3g}; rscovlm mAP {ours_all['mAP']:.12f}"
    )
    t0 = time.perf_counter()
    evaluator = DetectionEvaluator(gt, pred, CLASSES)
    in_map = evaluator.evaluate().mean_ap
    t_in = time.perf_counter() - t0
    print(f"in-process DetectionEvaluator (arrays in memory): {t_in:.2f} s, mAP {in_map:.12f}")


if __name__ == "__main__":
    main()
