"""Seeded simulation for the demo: a DOTA-style ground truth and two simulated models.

Nothing here is a real model or real data. The scene generator draws oriented objects of the 15
DOTA-v1.0 classes with plausible sizes, in clusters (parking rows, harbours, tank farms), with
a few difficult objects. The two "models" corrupt the ground truth the way real ones do:

- the **detector** finds most objects with small localisation jitter and a high score, adds
  duplicates and class confusions with lower scores, and a long tail of low-score false
  positives (what a detector keeps above its 0.05 output threshold);
- the **VLM** finds fewer objects with coarser boxes (its integer coordinates in the resized
  image add quantisation), repeats a few lines, confuses some classes, invents a few boxes, and
  gives no score at all.

All randomness comes from one :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rscovlm import geometry
from rscovlm.formats.classes import DOTA_V1_0

__all__ = ["IMAGE_SIZE", "Scene", "make_scenes", "simulate"]

IMAGE_SIZE = 1024
# (long side px, aspect short/long, relative frequency, cluster spread px)
_CLASS_SPECS: dict[str, tuple[float, float, float, float]] = {
    "plane": (55, 0.9, 6, 150),
    "baseball-diamond": (90, 1.0, 1, 200),
    "bridge": (150, 0.18, 1, 200),
    "ground-track-field": (200, 0.55, 0.6, 200),
    "small-vehicle": (13, 0.5, 30, 60),
    "large-vehicle": (26, 0.35, 14, 70),
    "ship": (42, 0.3, 18, 90),
    "tennis-court": (36, 0.5, 4, 60),
    "basketball-court": (34, 0.55, 1.5, 60),
    "storage-tank": (26, 1.0, 10, 70),
    "soccer-ball-field": (120, 0.62, 0.8, 200),
    "roundabout": (80, 1.0, 0.8, 200),
    "harbor": (110, 0.28, 4, 120),
    "swimming-pool": (28, 0.55, 3, 80),
    "helicopter": (30, 0.8, 0.6, 80),
}
_CONFUSED = {
    "small-vehicle": "large-vehicle",
    "large-vehicle": "small-vehicle",
    "tennis-court": "basketball-court",
    "basketball-court": "tennis-court",
    "ship": "harbor",
    "harbor": "ship",
    "plane": "helicopter",
    "helicopter": "plane",
    "soccer-ball-field": "ground-track-field",
    "ground-track-field": "soccer-ball-field",
}


@dataclass
class Scene:
    """One synthetic image: oriented boxes ``(N, 5)``, DOTA-v1.0 class indices, difficult flags."""

    name: str
    obbs: NDArray[np.float64]
    labels: NDArray[np.int64]
    difficult: NDArray[np.bool_]


def _scene(name: str, rng: np.random.Generator) -> Scene:
    names = list(_CLASS_SPECS)
    freq = np.array([s[2] for s in _CLASS_SPECS.values()])
    rows = []
    for _ in range(rng.integers(2, 6)):  # clusters: one class, one orientation, one area
        c = int(rng.choice(len(names), p=freq / freq.sum()))
        long, aspect, _, spread = _CLASS_SPECS[names[c]]
        n = int(rng.integers(1, 4 if long > 60 else 25))
        centre = rng.uniform(0.1, 0.9, 2) * IMAGE_SIZE
        angle = rng.uniform(-90, 90)
        size = long * rng.lognormal(0, 0.15, n)
        for k in range(n):
            cx, cy = np.clip(centre + rng.normal(0, spread, 2), 0, IMAGE_SIZE)
            a = angle + rng.normal(0, 6)
            w, h = size[k], size[k] * aspect * rng.uniform(0.85, 1.15)
            rows.append((cx, cy, w, h, a, DOTA_V1_0.index(names[c])))
    arr = np.asarray(rows, dtype=np.float64)
    quads = geometry.obb_to_quad(arr[:, :5])
    kept = np.sort(geometry.rotated_nms(quads, rng.random(len(arr)), 0.05))  # no heavy overlaps
    arr = arr[kept]
    difficult = rng.random(len(arr)) < 0.04
    return Scene(name, arr[:, :5], arr[:, 5].astype(np.int64), difficult)


def make_scenes(n: int, prefix: str, rng: np.random.Generator) -> list[Scene]:
    """``n`` synthetic images named ``<prefix>0000``, ``<prefix>0001``, ..."""
    return [_scene(f"{prefix}{i:04d}", rng) for i in range(n)]


def _jitter(obbs: NDArray[np.float64], scale: float, rng: np.random.Generator) -> NDArray:
    out = obbs.copy()
    size = np.sqrt(obbs[:, 2] * obbs[:, 3])[:, None]
    out[:, :2] += rng.normal(0, scale * 0.09, (len(out), 2)) * size
    out[:, 2:4] *= rng.lognormal(0, scale * 0.09, (len(out), 2))
    out[:, 4] += rng.normal(0, scale * 3.0, len(out))
    return out


def _confuse(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    classes = list(DOTA_V1_0)
    return np.array([classes.index(_CONFUSED.get(classes[c], classes[c])) for c in labels])


def _random_boxes(n: int, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    names = list(_CLASS_SPECS)
    labels = rng.integers(0, len(names), n)
    long = np.array([_CLASS_SPECS[names[c]][0] for c in labels]) * rng.lognormal(0, 0.3, n)
    aspect = np.array([_CLASS_SPECS[names[c]][1] for c in labels])
    obbs = np.stack(
        [*rng.uniform(0, IMAGE_SIZE, (2, n)), long, long * aspect, rng.uniform(-90, 90, n)], 1
    )
    order = [DOTA_V1_0.index(names[c]) for c in labels]
    return obbs, np.asarray(order, dtype=np.int64)


def simulate(
    scene: Scene, model: str, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Predictions of the simulated ``"detector"`` or ``"vlm"`` on one scene.

    Returns:
        ``(obbs (N, 5), class indices into DOTA_V1_0, scores)``; the VLM's scores are all 1.
    """
    vlm = model == "vlm"
    labels = scene.labels
    n = len(labels)
    small = scene.obbs[:, 2] < 30
    p_find = np.where(small, 0.7, 0.85) if vlm else np.where(small, 0.82, 0.93)
    found = rng.random(n) < p_find
    obbs = _jitter(scene.obbs[found], 1.25 if vlm else 1.0, rng)
    labs = labels[found]
    scores = np.clip(rng.beta(5, 1.6, len(obbs)), 0.06, 1.0)
    swap = rng.random(len(labs)) < (0.08 if vlm else 0.06)
    labs = np.where(swap, _confuse(labs), labs)
    scores = np.where(swap, rng.beta(2, 4, len(labs)) + 0.05, scores)
    dup = rng.random(len(obbs)) < (0.05 if vlm else 0.12)
    d_obbs, d_labs = _jitter(obbs[dup], 1.5, rng), labs[dup]
    d_scores = scores[dup] * rng.uniform(0.15, 0.6, int(dup.sum()))
    n_fp = rng.poisson(0.1 * n if vlm else 1.2 * n + 3)
    f_obbs, f_labs = _random_boxes(n_fp, rng)
    f_scores = np.clip(rng.beta(1.2, 7, n_fp), 0.05, 1.0)
    all_obbs = np.concatenate([obbs, d_obbs, f_obbs])
    all_labs = np.concatenate([labs, d_labs, f_labs])
    all_scores = np.concatenate([scores, d_scores, f_scores])
    if vlm:
        all_scores = np.ones(len(all_obbs))
    return all_obbs, all_labs, all_scores
